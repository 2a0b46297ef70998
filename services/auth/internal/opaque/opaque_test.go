package opaque_test

import (
	"strings"
	"testing"

	"github.com/moviebag/moviebag/services/auth/internal/opaque"
)

// A new token parses to its own hash, is 43 characters of base64url and
// is never the same twice; its hash is not the token.
func TestNewParses(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, h := opaque.New()
		if len(tok) != 43 || strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("token %q is not 43 characters of base64url", tok)
		}
		got, ok := opaque.Parse(tok)
		if !ok || got != h {
			t.Fatalf("Parse(%q) = %x, %v; want %x", tok, got, ok, h)
		}
		if len(h.Hex()) != 64 || strings.Contains(h.Hex(), tok) {
			t.Fatalf("hash %s", h.Hex())
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
	tok, _ := opaque.New()
	for _, bad := range []string{
		"", "abc", tok + "A", tok[:42], tok + "=",
		strings.Repeat("A", 42) + "B", // trailing bits not zero: a second spelling of a token
		strings.Repeat("+", 43), strings.Repeat("/", 43), " " + tok[1:], tok[:42] + "\n",
		strings.Repeat("é", 21) + "A",
	} {
		if h, ok := opaque.Parse(bad); ok {
			t.Errorf("Parse(%q) = %x, want a refusal", bad, h)
		}
	}
}
