package resettoken_test

import (
	"strings"
	"testing"

	"github.com/moviebag/moviebag/services/auth/internal/resettoken"
)

// A new token parses to its own digest, is 43 characters of base64url and
// is never the same twice; its digest is not the token.
func TestNewParses(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, digest := resettoken.New()
		if len(tok) != 43 || strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("token %q is not 43 characters of base64url", tok)
		}
		got, ok := resettoken.Parse(tok)
		if !ok || got != digest {
			t.Fatalf("Parse(%q) = %q, %v; want %q", tok, got, ok, digest)
		}
		if len(digest) != 64 || strings.Contains(string(digest), tok) {
			t.Fatalf("digest %q", digest)
		}
		if seen[tok] {
			t.Fatalf("token %q made twice", tok)
		}
		seen[tok] = true
	}
}

// Anything not of New's form is refused: other lengths, padding, other
// alphabets, non-canonical trailing bits, white space.
func TestParseRefuses(t *testing.T) {
	tok, _ := resettoken.New()
	for _, bad := range []string{
		"", "abc", tok + "A", tok[:42], tok + "=",
		strings.Repeat("A", 42) + "B", // trailing bits not zero: a second spelling of a token
		strings.Repeat("+", 43), strings.Repeat("/", 43), " " + tok[1:], tok[:42] + "\n",
		strings.Repeat("é", 21) + "A",
	} {
		if d, ok := resettoken.Parse(bad); ok {
			t.Errorf("Parse(%q) = %q, want a refusal", bad, d)
		}
	}
}
