package app_test

import (
	"testing"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
)

// A name with any Default_Ignorable_Code_Point in it, or with nothing
// visible, is refused on create and on rename: otherwise two movies could
// both show as "Heat".
func TestNamesWithDefaultIgnorablesRefused(t *testing.T) {
	f := startMovies(t)
	asAlice := testkit.Bearer(f.iss.Token(t, alice))
	heat := f.create(t, alice, `{"name":"Heat","casts":["a"],"genres":["b"]}`)
	for _, name := range []string{
		`Heat\u034f`, `Heat\ufe0f`, `Heat\u3164`, `\u115fHeat`, `He\u17b4at`, `Heat\uffa0`, `Heat\u180b`,
		`Heat\udb40\udc20`, // U+E0020, a tag space
		`\u3164`, `\u2800`, `\u0301`, `\u00a0\u0301\u00a0`,
	} {
		t.Run(name, func(t *testing.T) {
			for _, target := range []struct{ method, path, body string }{
				{"POST", "/api/movies", `{"name":"` + name + `","casts":["x"],"genres":["y"]}`},
				{"PUT", "/api/movies/" + heat, `{"name":"` + name + `"}`},
			} {
				env := testkit.Envelope(t, testkit.Do(t, target.method, f.URL+target.path, target.body, asAlice...),
					apierr.SchemaValidationError)
				if len(env.Details) != 1 || env.Details[0].Field != "name" {
					t.Errorf("%s: details %+v, want one naming name", target.method, env.Details)
				}
			}
		})
	}
	if list := testkit.JSON[[]movie](t, testkit.Do(t, "GET", f.URL+"/api/movies", "")); len(list) != 1 {
		t.Errorf("%d movies stored, want 1: %+v", len(list), list)
	}
}
