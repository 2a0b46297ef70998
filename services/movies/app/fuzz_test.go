package app

import (
	"strings"
	"testing"

	"github.com/moviebag/moviebag/libs/apierr"
)

// FuzzParseMovieID: an id is accepted only as 24 hex digits and then names
// itself; anything else is MovieNotExistsError. Never a panic.
func FuzzParseMovieID(f *testing.F) {
	for _, s := range []string{"6b06f1ebcf512d8be09e8da8", "6B06F1EBCF512D8BE09E8DA8", "zzz", "", "6b06f1ebcf512d8be09e8da8\\x00", "../../etc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseMovieID(s)
		if err != nil {
			if !apierr.Is(err, apierr.MovieNotExistsError) {
				t.Fatalf("parseMovieID(%q) = %v, want MovieNotExistsError", s, err)
			}
			return
		}
		if len(s) != 24 || id.Hex() != strings.ToLower(s) {
			t.Fatalf("parseMovieID(%q) = %s", s, id.Hex())
		}
	})
}
