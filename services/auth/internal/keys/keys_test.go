package keys_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/moviebag/moviebag/services/auth/internal/keys"
)

func rsaKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pkcs8(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func pkcs1(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func write(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// signer is the part of a key set that signs and publishes.
type signer interface {
	Sign(claims jwt.Claims) (string, error)
	JWKS() []byte
	SignerID() string
	Keyfunc(ctx context.Context) jwt.Keyfunc
}

func claims() jwt.RegisteredClaims {
	return jwt.RegisteredClaims{Subject: "u", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))}
}

// verify parses tok with the set's own Keyfunc.
func verify(s signer, tok string) error {
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"})).Parse(tok, s.Keyfunc(context.Background()))
	return err
}

// published returns the kids of the set's JWKS, failing the test when it
// carries any private key material.
func published(t *testing.T, s signer) []string {
	t.Helper()
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatalf("JWKS %s: %v", s.JWKS(), err)
	}
	var kids []string
	for _, k := range set.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS publishes the private member %q of %v", private, k["kid"])
			}
		}
		if k["alg"] != "RS256" || k["use"] != "sig" || k["kty"] != "RSA" {
			t.Errorf("JWK %v: want kty RSA, alg RS256, use sig", k)
		}
		kid, _ := k["kid"].(string)
		kids = append(kids, kid)
	}
	slices.Sort(kids)
	return kids
}

// Every *.pem of the directory is published under its file name; the
// greatest name signs; tokens of every published key verify, others not.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	older, newer := rsaKey(t, 2048), rsaKey(t, 2048)
	write(t, dir, "2026-01.pem", pkcs1(older))
	write(t, dir, "2026-02.pem", pkcs8(t, newer))
	write(t, dir, "README", []byte("not a key"))
	s, err := keys.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.SignerID() != "2026-02" {
		t.Errorf("signer %q, want the greatest name 2026-02", s.SignerID())
	}
	if kids := published(t, s); !slices.Equal(kids, []string{"2026-01", "2026-02"}) {
		t.Errorf("published kids %v, want 2026-01 and 2026-02", kids)
	}
	// The greatest kid, not the greatest file name: "2026-02.next.pem" < "2026-02.pem".
	write(t, dir, "2026-02.next.pem", pkcs1(rsaKey(t, 2048)))
	if s2, err := keys.Load(dir); err != nil {
		t.Error(err)
	} else if s2.SignerID() != "2026-02.next" {
		t.Errorf("signer of 2026-01, 2026-02 and 2026-02.next: %s, want 2026-02.next", s2.SignerID())
	}
	if err := os.Remove(filepath.Join(dir, "2026-02.next.pem")); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(claims())
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(s, tok); err != nil {
		t.Errorf("own token: %v", err)
	}
	parsed, _, _ := jwt.NewParser().ParseUnverified(tok, &jwt.RegisteredClaims{})
	if parsed.Header["kid"] != "2026-02" {
		t.Errorf("kid %v, want 2026-02", parsed.Header["kid"])
	}

	byKey := func(k *rsa.PrivateKey, kid string) string {
		t.Helper()
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims())
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if err := verify(s, byKey(older, "2026-01")); err != nil {
		t.Errorf("a token of the older, still published key: %v", err)
	}
	if err := verify(s, byKey(rsaKey(t, 2048), "2026-03")); err == nil {
		t.Error("a token of an unknown kid verified")
	}
	if err := verify(s, byKey(rsaKey(t, 2048), "2026-02")); err == nil {
		t.Error("a token of a known kid signed by another key verified")
	}
}

// A directory that cannot be a key set is refused, naming the problem.
func TestLoadRefuses(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		files map[string][]byte
		want  string
	}{
		{"no key files", map[string][]byte{"key.txt": []byte("x")}, "no *.pem key files"},
		{"not PEM", map[string][]byte{"a.pem": []byte("not pem")}, "no PEM block"},
		{"other PEM type", map[string][]byte{"a.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})}, "want RSA PRIVATE KEY"},
		{"not RSA", map[string][]byte{"a.pem": pkcs8(t, ec)}, "want an RSA key"},
		{"too short", map[string][]byte{"a.pem": pkcs1(rsaKey(t, 1024))}, "1024-bit RSA key, want at least 2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tt.files {
				write(t, dir, name, data)
			}
			if _, err := keys.Load(dir); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// Without a directory, one fresh key signs and verifies.
func TestGenerate(t *testing.T) {
	s, err := keys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.SignerID(), "generated-") {
		t.Errorf("signer %q", s.SignerID())
	}
	if kids := published(t, s); !slices.Equal(kids, []string{s.SignerID()}) {
		t.Errorf("published %v, want only %s", kids, s.SignerID())
	}
	tok, err := s.Sign(claims())
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(s, tok); err != nil {
		t.Error(err)
	}
}

// Without a sign delay, a key added to the directory is published and takes
// over signing on the next Reload, while tokens of the old key keep verifying; a directory
// that stops loading leaves the keys in use.
func TestRotatingReload(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "2026-01.pem", pkcs1(rsaKey(t, 2048)))
	r, err := keys.LoadRotating(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	old, err := r.Sign(claims())
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := r.Reload(); err != nil || changed {
		t.Errorf("Reload of an unchanged directory: changed %v, %v", changed, err)
	}

	write(t, dir, "2026-02.pem", pkcs8(t, rsaKey(t, 2048)))
	if changed, err := r.Reload(); err != nil || !changed {
		t.Fatalf("Reload after a key was added: changed %v, %v", changed, err)
	}
	if r.SignerID() != "2026-02" {
		t.Errorf("signer %q after the reload, want 2026-02", r.SignerID())
	}
	if kids := published(t, r); !slices.Equal(kids, []string{"2026-01", "2026-02"}) {
		t.Errorf("published %v", kids)
	}
	if err := verify(r, old); err != nil {
		t.Errorf("a token of the old key after the reload: %v", err)
	}

	write(t, dir, "2026-03.pem", []byte("half-written"))
	if _, err := r.Reload(); err == nil {
		t.Error("Reload of a broken directory succeeded")
	}
	if r.SignerID() != "2026-02" {
		t.Errorf("signer %q after a failed reload, want 2026-02 kept", r.SignerID())
	}
	tok, err := r.Sign(claims())
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(r, tok); err != nil {
		t.Errorf("signing after a failed reload: %v", err)
	}
}

// A key added to the directory is published at once but signs only after the
// sign delay, so that every replica publishes it before any token names it;
// at start, with several keys and none published long enough, the least (the
// oldest) signs; a lone key signs at once.
func TestRotatingSignsAfterDelay(t *testing.T) {
	const delay = 2 * time.Minute
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	reload := func(r *keys.Rotating) {
		t.Helper()
		if _, err := r.Reload(); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	write(t, dir, "2026-01.pem", pkcs1(rsaKey(t, 2048)))
	r, err := keys.LoadRotatingClock(dir, delay, clock)
	if err != nil {
		t.Fatal(err)
	}
	if r.SignerID() != "2026-01" {
		t.Fatalf("signer %q of a lone key, want 2026-01 at once", r.SignerID())
	}

	write(t, dir, "2026-02.pem", pkcs1(rsaKey(t, 2048)))
	reload(r)
	if kids := published(t, r); !slices.Equal(kids, []string{"2026-01", "2026-02"}) {
		t.Errorf("published %v right after the key was added, want both", kids)
	}
	if r.SignerID() != "2026-01" {
		t.Errorf("signer %q right after a key was added, want 2026-01 until the delay has passed", r.SignerID())
	}
	now = now.Add(delay - time.Second)
	reload(r)
	if r.SignerID() != "2026-01" {
		t.Errorf("signer %q a second before the delay, want 2026-01", r.SignerID())
	}
	now = now.Add(time.Second)
	reload(r)
	if r.SignerID() != "2026-02" {
		t.Errorf("signer %q once the key was published for the delay, want 2026-02", r.SignerID())
	}

	// A replica starting mid-rotation publishes both and signs with the old one.
	fresh, err := keys.LoadRotatingClock(dir, delay, clock)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.SignerID() != "2026-01" {
		t.Errorf("signer %q of a replica started with two keys, want 2026-01 until the delay has passed", fresh.SignerID())
	}

	// The old key removed before the new one is ready: the new one is all there is.
	if err := os.Remove(filepath.Join(dir, "2026-01.pem")); err != nil {
		t.Fatal(err)
	}
	reload(fresh)
	if fresh.SignerID() != "2026-02" {
		t.Errorf("signer %q once the old key was removed, want 2026-02", fresh.SignerID())
	}
}
