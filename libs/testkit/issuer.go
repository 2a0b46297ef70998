package testkit

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Issuer signs tokens like the auth service and serves its JWKS, so a
// verifying service can be tested on its own.
type Issuer struct {
	Key      *rsa.PrivateKey
	KID      string
	Iss, Aud string
	JWKSURL  string
	srv      *httptest.Server
}

// StopJWKS stops serving the JWKS, as when the auth service is down.
func (i *Issuer) StopJWKS() { i.srv.Close() }

// NewIssuer makes a fresh 2048-bit key and serves its JWKS until the test ends.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	iss := &Issuer{Key: key, KID: "test-" + uuid.NewString()[:8], Iss: "moviebag-auth", Aud: "moviebag"}
	jwk, err := jwkset.NewJWKFromKey(&key.PublicKey, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.AlgRS256, KID: iss.KID, USE: jwkset.UseSig},
	})
	if err != nil {
		t.Fatalf("JWK: %v", err)
	}
	st := jwkset.NewMemoryStorage()
	if err := st.KeyWrite(context.Background(), jwk); err != nil {
		t.Fatalf("JWK: %v", err)
	}
	body, err := st.JSONPublic(context.Background())
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	iss.JWKSURL, iss.srv = srv.URL, srv
	return iss
}

// Claims returns valid claims for subject, for one hour.
func (i *Issuer) Claims(subject string) jwt.RegisteredClaims {
	now := time.Now()
	return jwt.RegisteredClaims{
		Issuer: i.Iss, Subject: subject, Audience: jwt.ClaimStrings{i.Aud},
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now), ID: uuid.NewString(),
	}
}

// Token signs valid claims for subject.
func (i *Issuer) Token(t testing.TB, subject string) string {
	return i.Sign(t, i.Claims(subject))
}

// Sign signs claims with the issuer's key (RS256, its kid).
func (i *Issuer) Sign(t testing.TB, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = i.KID
	s, err := tok.SignedString(i.Key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// MalformedTokens returns tokens signed with key (RS256) that a verifier
// must refuse although their signature is good, by what is wrong with each:
// no kid, an unknown critical header, exp as a string, aud as a number, an
// object or null, sid as a number. Apart from that one defect each carries valid, the claims
// of a token that would be accepted, and kid.
func MalformedTokens(t testing.TB, key *rsa.PrivateKey, kid string, valid jwt.RegisteredClaims) map[string]string {
	t.Helper()
	claims := jwt.MapClaims{
		"iss": valid.Issuer, "sub": valid.Subject, "aud": []string(valid.Audience), "jti": valid.ID,
		"exp": valid.ExpiresAt.Unix(), "iat": valid.IssuedAt.Unix(), "nbf": valid.NotBefore.Unix(),
	}
	with := func(name string, value any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range claims {
			c[k] = v
		}
		c[name] = value
		return c
	}
	sign := func(header map[string]any, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
		tok.Header["kid"] = kid
		for k, v := range header {
			if v == nil {
				delete(tok.Header, k)
				continue
			}
			tok.Header[k] = v
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		return s
	}
	return map[string]string{
		"no kid":              sign(map[string]any{"kid": nil}, claims),
		"unknown crit header": sign(map[string]any{"crit": []string{"x-moviebag-unknown"}, "x-moviebag-unknown": true}, claims),
		"exp as a string":     sign(nil, with("exp", strconv.FormatInt(valid.ExpiresAt.Unix(), 10))),
		"aud as a number":     sign(nil, with("aud", 42)),
		"aud as an object":    sign(nil, with("aud", map[string]any{"aud": valid.Audience[0]})),
		"aud null":            sign(nil, with("aud", nil)),
		"nbf as a string":     sign(nil, with("nbf", strconv.FormatInt(valid.NotBefore.Unix(), 10))),
		"sid as a number":     sign(nil, with("sid", 42)),
	}
}

// MalformedTokens returns testkit.MalformedTokens for subject signed with
// the issuer's key.
func (i *Issuer) MalformedTokens(t testing.TB, subject string) map[string]string {
	t.Helper()
	return MalformedTokens(t, i.Key, i.KID, i.Claims(subject))
}
