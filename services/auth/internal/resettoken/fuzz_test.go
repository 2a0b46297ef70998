package resettoken_test

import (
	"encoding/base64"
	"testing"

	"github.com/moviebag/moviebag/services/auth/internal/resettoken"
)

// Whatever a client sends as a token, Parse neither panics nor accepts a
// second spelling: an accepted string is exactly the base64url of 32 bytes,
// and two accepted strings with one digest are the same string.
func FuzzParse(f *testing.F) {
	tok, _ := resettoken.New()
	for _, s := range []string{tok, "", "AAAA", tok[:42] + "B", tok + "=", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := resettoken.Parse(s)
		if !ok {
			if d != "" {
				t.Fatalf("refused %q with a digest %q", s, d)
			}
			return
		}
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) != resettoken.Size || base64.RawURLEncoding.EncodeToString(b) != s {
			t.Fatalf("accepted %q, which is not the one spelling of %d bytes", s, resettoken.Size)
		}
		if again, _ := resettoken.Parse(s); again != d {
			t.Fatalf("Parse(%q) is not stable", s)
		}
	})
}
