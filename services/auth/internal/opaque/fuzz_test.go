package opaque_test

import (
	"encoding/base64"
	"testing"

	"github.com/moviebag/moviebag/services/auth/internal/opaque"
)

// Whatever a client sends as a token (a reset token, or a refresh token's
// secret), Parse neither panics nor accepts a second spelling: an accepted
// string is exactly the base64url of 32 bytes.
func FuzzParse(f *testing.F) {
	tok, _ := opaque.New()
	for _, s := range []string{tok, "", "AAAA", tok[:42] + "B", tok + "=", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := opaque.Parse(s)
		if !ok {
			if h != (opaque.Hash{}) {
				t.Fatalf("refused %q with a hash %x", s, h)
			}
			return
		}
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) != opaque.Size || base64.RawURLEncoding.EncodeToString(b) != s {
			t.Fatalf("accepted %q, which is not the one spelling of %d bytes", s, opaque.Size)
		}
	})
}
