package sessions_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/moviebag/moviebag/services/auth/internal/opaque"
	"github.com/moviebag/moviebag/services/auth/internal/sessions"
)

// A refresh token is <sid>.<secret>: it parses to its session and the hash
// of its secret.
func TestParseToken(t *testing.T) {
	sid := uuid.NewString()
	secret, h := opaque.New()
	got, err := sessions.ParseToken(sid + "." + secret)
	if err != nil || got != (sessions.Token{SessionID: sid, Hash: h}) {
		t.Fatalf("ParseToken = %+v, %v; want %s and %x", got, err, sid, h)
	}
	if sessions.TokenLen != 80 {
		t.Errorf("TokenLen = %d, want 36 + 1 + 43", sessions.TokenLen)
	}
}

// Anything but the one form is ErrMalformed: no dot or more than one, a
// session id that is not a version 4 UUID in its canonical lowercase
// spelling, a secret opaque.Parse refuses.
func TestParseTokenRefusesOtherForms(t *testing.T) {
	sid := uuid.NewString()
	secret, _ := opaque.New()
	v1 := uuid.Must(uuid.NewUUID()).String()
	for name, bad := range map[string]string{
		"empty":                "",
		"a dot":                ".",
		"no dot":               sid + secret,
		"no dot, right length": sid + "-" + secret,
		"two dots":             sid + "." + secret[:42] + ".",
		"dots side by side":    sid + ".." + secret[1:],
		"dot first":            "." + sid + secret,
		"the secret only":      secret,
		"the sid only":         sid,
		"upper-case sid":       strings.ToUpper(sid) + "." + secret,
		"sid in braces":        "{" + sid[:34] + "}." + secret,
		"sid without hyphens":  strings.ReplaceAll(sid, "-", "") + "0000." + secret,
		"sid not hex":          "g" + sid[1:] + "." + secret,
		"a version 1 sid":      v1 + "." + secret,
		"a nil sid":            uuid.Nil.String() + "." + secret,
		"urn sid":              "urn:uuid:" + sid[9:] + "." + secret,
		"secret too short":     sid + "." + secret[:42],
		"secret too long":      sid + "." + secret + "A",
		"secret padded":        sid + "." + secret[:42] + "=",
		"secret stray bits":    sid + "." + strings.Repeat("A", 42) + "B",
		"secret in base64":     sid + "." + strings.Repeat("+", 43),
		"white space":          " " + sid[1:] + "." + secret,
		"a newline":            sid + "." + secret[:42] + "\n",
		"too long":             strings.Repeat("A", 2048),
	} {
		if got, err := sessions.ParseToken(bad); !errors.Is(err, sessions.ErrMalformed) || got != (sessions.Token{}) {
			t.Errorf("%s: ParseToken(%q) = %+v, %v; want ErrMalformed", name, bad, got, err)
		}
	}
}

// Whatever a client sends as a refresh token, ParseToken neither panics
// nor accepts a second spelling: an accepted string is exactly a canonical
// version 4 UUID, a dot and the base64url of 32 bytes, and parses to that
// session and the hash of those bytes.
func FuzzParseToken(f *testing.F) {
	sid := uuid.NewString()
	secret, _ := opaque.New()
	for _, s := range []string{sid + "." + secret, "", ".", sid + secret, sid + ".." + secret[1:],
		strings.ToUpper(sid) + "." + secret, sid + "." + secret[:42] + "B", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := sessions.ParseToken(s)
		if err != nil {
			if !errors.Is(err, sessions.ErrMalformed) || tok != (sessions.Token{}) {
				t.Fatalf("refused %q with %+v, %v", s, tok, err)
			}
			return
		}
		id, secret, ok := strings.Cut(s, ".")
		u, uerr := uuid.Parse(id)
		if !ok || id != tok.SessionID || uerr != nil || u.String() != id || u.Version() != 4 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("accepted %q with the session %q", s, tok.SessionID)
		}
		b, err := base64.RawURLEncoding.DecodeString(secret)
		if err != nil || len(b) != sessions.TokenBytes || base64.RawURLEncoding.EncodeToString(b) != secret ||
			sha256.Sum256(b) != tok.Hash {
			t.Fatalf("accepted %q, whose secret is not the one spelling of %d bytes", s, sessions.TokenBytes)
		}
	})
}
