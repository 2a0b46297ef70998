package app_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
	"github.com/moviebag/moviebag/services/movies/app"
)

type fixture struct {
	*testkit.Service
	iss    *testkit.Issuer
	prefix string
}

// startMovies runs the service through Run against the real storage of
// `make test`, verifying tokens from a test issuer's JWKS.
func startMovies(t *testing.T) fixture {
	t.Helper()
	iss := testkit.NewIssuer(t)
	db := testkit.Database(t)
	s := testkit.Start(t, app.Run, map[string]string{
		"MONGO_URI": testkit.MongoURI(t), "MONGO_DATABASE": db,
		"REDIS_URL": testkit.RedisURL(t), "REDIS_KEY_PREFIX": db + ":",
		"JWKS_URL": iss.JWKSURL,
	})
	return fixture{Service: s, iss: iss, prefix: db + ":"}
}

const (
	alice = "6b06f1ebcf512d8be09e8da8"
	bob   = "6b06f1ebcf512d8be09e8da9"
)

type movie struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Casts   []string `json:"casts"`
	Genres  []string `json:"genres"`
	AddedBy string   `json:"added_by"`
}

func (f fixture) create(t *testing.T, user, body string) string {
	t.Helper()
	r := testkit.Do(t, "POST", f.URL+"/api/movies", body, testkit.Bearer(f.iss.Token(t, user))...)
	if r.Status != 200 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	return testkit.JSON[struct{ ID string }](t, r).ID
}

func TestCRUD(t *testing.T) {
	f := startMovies(t)
	id := f.create(t, alice, `{"name":"Heat","casts":["Al Pacino","Robert De Niro"],"genres":["Crime"]}`)

	got := testkit.JSON[movie](t, testkit.Do(t, "GET", f.URL+"/api/movies/"+id, ""))
	if got.ID != id || got.Name != "Heat" || len(got.Casts) != 2 || got.Genres[0] != "Crime" || got.AddedBy != alice {
		t.Fatalf("get: %+v", got)
	}

	tok := testkit.Bearer(f.iss.Token(t, alice))
	r := testkit.Do(t, "PUT", f.URL+"/api/movies/"+id, `{"name":"Heat (1995)"}`, tok...)
	upd := testkit.JSON[movie](t, r)
	if r.Status != 200 || upd.Name != "Heat (1995)" || len(upd.Casts) != 2 || upd.AddedBy != alice {
		t.Fatalf("update: %d %s", r.Status, r.Body)
	}

	list := testkit.JSON[[]movie](t, testkit.Do(t, "GET", f.URL+"/api/movies", ""))
	if len(list) != 1 || list[0].Name != "Heat (1995)" {
		t.Fatalf("list: %+v", list)
	}

	if r := testkit.Do(t, "DELETE", f.URL+"/api/movies/"+id, "", tok...); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	testkit.Envelope(t, testkit.Do(t, "GET", f.URL+"/api/movies/"+id, ""), apierr.MovieNotExistsError)
	if body := testkit.Do(t, "GET", f.URL+"/api/movies", "").Body; string(body) != "[]" {
		t.Errorf("empty list is %s, want []", body)
	}
}

func TestOwnershipAndMissingMovies(t *testing.T) {
	f := startMovies(t)
	id := f.create(t, alice, `{"name":"Alien","casts":["Sigourney Weaver"],"genres":["Horror"]}`)
	asBob := testkit.Bearer(f.iss.Token(t, bob))
	missing := "6b06f1ebcf512d8be09e0000"

	tests := []struct {
		name, method, id, body string
		code                   apierr.Code
	}{
		{"update someone else's", "PUT", id, `{"name":"Aliens"}`, apierr.UpdatingMovieError},
		{"delete someone else's", "DELETE", id, "", apierr.DeletingMovieError},
		{"update missing", "PUT", missing, `{"name":"Aliens"}`, apierr.MovieNotExistsError},
		{"delete missing", "DELETE", missing, "", apierr.MovieNotExistsError},
		{"get missing", "GET", missing, "", apierr.MovieNotExistsError},
		{"get malformed id", "GET", "not-an-id", "", apierr.MovieNotExistsError},
		{"update malformed id", "PUT", "123", `{"name":"x"}`, apierr.MovieNotExistsError},
		{"delete malformed id", "DELETE", "zzzzzzzzzzzzzzzzzzzzzzzz", "", apierr.MovieNotExistsError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.Envelope(t, testkit.Do(t, tt.method, f.URL+"/api/movies/"+tt.id, tt.body, asBob...), tt.code)
		})
	}
	// Bob's attempts changed nothing.
	if got := testkit.JSON[movie](t, testkit.Do(t, "GET", f.URL+"/api/movies/"+id, "")); got.Name != "Alien" {
		t.Errorf("movie changed: %+v", got)
	}
}

func TestUniqueNames(t *testing.T) {
	f := startMovies(t)
	f.create(t, alice, `{"name":"Heat","casts":["a"],"genres":["b"]}`)
	other := f.create(t, alice, `{"name":"Ronin","casts":["a"],"genres":["b"]}`)
	tok := testkit.Bearer(f.iss.Token(t, bob))
	testkit.Envelope(t, testkit.Do(t, "POST", f.URL+"/api/movies", `{"name":"Heat","casts":["x"],"genres":["y"]}`, tok...),
		apierr.MovieAlreadyExistsError)
	testkit.Envelope(t, testkit.Do(t, "PUT", f.URL+"/api/movies/"+other, `{"name":"Heat"}`, testkit.Bearer(f.iss.Token(t, alice))...),
		apierr.MovieAlreadyExistsError)
}

// A race of creates of one name yields exactly one movie.
func TestConcurrentCreateRace(t *testing.T) {
	f := startMovies(t)
	const n = 20
	var wg sync.WaitGroup
	statuses := make([]int, n)
	codes := make([]apierr.Code, n)
	for i := range n {
		tok := f.iss.Token(t, fmt.Sprintf("6b06f1ebcf512d8be09e%04d", i))
		wg.Go(func() {
			req, _ := http.NewRequest("POST", f.URL+"/api/movies", strings.NewReader(`{"name":"Race","casts":["a"],"genres":["b"]}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer func() { _ = resp.Body.Close() }()
			statuses[i] = resp.StatusCode
			if resp.StatusCode != 200 {
				var r testkit.Response
				r.Status, r.Header = resp.StatusCode, resp.Header
				r.Body = readAll(resp)
				codes[i] = testkit.JSON[apierr.Envelope](t, r).Code
			}
		})
	}
	wg.Wait()
	ok := 0
	for i := range n {
		switch {
		case statuses[i] == 200:
			ok++
		case codes[i] != apierr.MovieAlreadyExistsError:
			t.Errorf("request %d: %d %s", i, statuses[i], codes[i])
		}
	}
	if ok != 1 {
		t.Errorf("%d creates succeeded, want exactly 1", ok)
	}
	if list := testkit.JSON[[]movie](t, testkit.Do(t, "GET", f.URL+"/api/movies", "")); len(list) != 1 {
		t.Errorf("%d movies stored, want 1", len(list))
	}
}

var nextLink = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

func TestPagination(t *testing.T) {
	f := startMovies(t)
	for i := range 45 {
		f.create(t, alice, fmt.Sprintf(`{"name":"Movie %02d","casts":["a"],"genres":["b"]}`, i))
	}
	seen := map[string]bool{}
	var sizes []int
	url := f.URL + "/api/movies?limit=20"
	for url != "" {
		r := testkit.Do(t, "GET", url, "")
		page := testkit.JSON[[]movie](t, r)
		sizes = append(sizes, len(page))
		for _, m := range page {
			if seen[m.ID] {
				t.Fatalf("movie %s on two pages", m.ID)
			}
			seen[m.ID] = true
		}
		url = ""
		if link := r.Header.Get("Link"); link != "" {
			m := nextLink.FindStringSubmatch(link)
			if m == nil || !strings.HasPrefix(m[1], "/api/movies?") {
				t.Fatalf("Link %q", link)
			}
			url = f.URL + m[1]
		}
	}
	if fmt.Sprint(sizes) != "[20 20 5]" || len(seen) != 45 {
		t.Errorf("pages %v, %d movies; want [20 20 5] and 45", sizes, len(seen))
	}
	if n := len(testkit.JSON[[]movie](t, testkit.Do(t, "GET", f.URL+"/api/movies", ""))); n != 20 {
		t.Errorf("default page has %d movies, want 20", n)
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=abc", "limit=-1", "cursor=xyz", "cursor=6b06f1ebcf512d8be09e8da8zz"} {
		env := testkit.Envelope(t, testkit.Do(t, "GET", f.URL+"/api/movies?"+q, ""), apierr.InvalidParameterError)
		if len(env.Details) != 1 || !strings.HasPrefix(q, env.Details[0].Field+"=") {
			t.Errorf("%s: details %+v", q, env.Details)
		}
	}
}

// Bad input of every kind is a precise 4xx, and nothing is written.
func TestBadInput(t *testing.T) {
	f := startMovies(t)
	id := f.create(t, alice, `{"name":"Heat","casts":["a"],"genres":["b"]}`)
	tok := testkit.Bearer(f.iss.Token(t, alice))
	tests := []struct {
		name   string
		ct     string
		body   string
		code   apierr.Code
		fields string // comma-separated detail fields
	}{
		{"malformed JSON", "application/json", `{"name":`, apierr.InvalidJSONError, ""},
		{"empty body", "application/json", ``, apierr.InvalidJSONError, ""},
		{"array", "application/json", `[{"name":"x"}]`, apierr.InvalidJSONError, ""},
		{"string", "application/json", `"x"`, apierr.InvalidJSONError, ""},
		{"operator object as name", "application/json", `{"name":{"$gt":""},"casts":["a"],"genres":["b"]}`, apierr.SchemaValidationError, "name"},
		{"wrong types", "application/json", `{"name":1,"casts":"a","genres":[2]}`, apierr.SchemaValidationError, "casts,genres,name"},
		{"added_by from the body", "application/json", `{"name":"X","casts":["a"],"genres":["b"],"added_by":"` + bob + `"}`, apierr.SchemaValidationError, "added_by"},
		{"blank cast", "application/json", `{"name":"X","casts":[" "],"genres":["b"]}`, apierr.SchemaValidationError, "casts[0]"},
		{"null name", "application/json", `{"name":null,"casts":["a"],"genres":["b"]}`, apierr.SchemaValidationError, "name"},
		{"duplicate key", "application/json", `{"name":"X","casts":["a"],"genres":["b"],"name":"Y"}`, apierr.InvalidJSONError, ""},
		{"wrong content type", "text/plain", `{"name":"X","casts":["a"],"genres":["b"]}`, apierr.UnsupportedMediaTypeError, ""},
		{"huge body", "application/json", `{"name":"` + strings.Repeat("x", 70000) + `","casts":["a"],"genres":["b"]}`, apierr.PayloadTooLargeError, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, target := range []struct{ method, path string }{{"POST", "/api/movies"}, {"PUT", "/api/movies/" + id}} {
				env := testkit.Envelope(t, testkit.Do(t, target.method, f.URL+target.path, tt.body, append(tok, "Content-Type", tt.ct)...), tt.code)
				var fields []string
				for _, d := range env.Details {
					fields = append(fields, d.Field)
				}
				if strings.Join(fields, ",") != tt.fields {
					t.Errorf("%s: detail fields %v, want %s", target.method, fields, tt.fields)
				}
			}
		})
	}
	t.Run("create missing fields", func(t *testing.T) {
		env := testkit.Envelope(t, testkit.Do(t, "POST", f.URL+"/api/movies", `{}`, tok...), apierr.SchemaValidationError)
		if len(env.Details) != 3 {
			t.Errorf("details %+v, want one per missing field", env.Details)
		}
	})
	t.Run("update with no fields", func(t *testing.T) {
		testkit.Envelope(t, testkit.Do(t, "PUT", f.URL+"/api/movies/"+id, `{}`, tok...), apierr.SchemaValidationError)
	})
	list := testkit.JSON[[]movie](t, testkit.Do(t, "GET", f.URL+"/api/movies", ""))
	if len(list) != 1 || list[0].Name != "Heat" || list[0].Casts[0] != "a" {
		t.Errorf("bad input wrote something: %+v", list)
	}
}

func TestTokens(t *testing.T) {
	f := startMovies(t)
	body := `{"name":"X","casts":["a"],"genres":["b"]}`
	expired := f.iss.Claims(alice)
	expired.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
	revoked := f.iss.Claims(alice)

	rdb := redis.NewClient(mustRedisOpts(t))
	defer func() { _ = rdb.Close() }()
	if err := rdb.Set(context.Background(), f.prefix+"denylist:"+revoked.ID, 1, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	stranger := testkit.NewIssuer(t)

	tests := []struct {
		name    string
		headers []string
		code    apierr.Code
	}{
		{"no token", nil, apierr.TokenMissingError},
		{"wrong scheme", []string{"Authorization", "Token " + f.iss.Token(t, alice)}, apierr.TokenInvalidError},
		{"expired", testkit.Bearer(f.iss.Sign(t, expired)), apierr.TokenExpiredError},
		{"revoked", testkit.Bearer(f.iss.Sign(t, revoked)), apierr.TokenRevokedError},
		{"unknown key", testkit.Bearer(stranger.Token(t, alice)), apierr.TokenInvalidError},
	}
	// Well signed by the published key, but each with one defect in its header or claim types.
	for name, tok := range f.iss.MalformedTokens(t, alice) {
		tests = append(tests, struct {
			name    string
			headers []string
			code    apierr.Code
		}{name, testkit.Bearer(tok), apierr.TokenInvalidError})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testkit.Do(t, "POST", f.URL+"/api/movies", body, tt.headers...)
			testkit.Envelope(t, r, tt.code)
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// The movies service keeps verifying from its cached JWKS while auth is down.
func TestJWKSCacheOutlivesAuth(t *testing.T) {
	f := startMovies(t)
	f.create(t, alice, `{"name":"Before","casts":["a"],"genres":["b"]}`)
	f.iss.StopJWKS()
	f.create(t, alice, `{"name":"After","casts":["a"],"genres":["b"]}`)
}

func mustRedisOpts(t *testing.T) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(testkit.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func readAll(resp *http.Response) []byte {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return []byte(b.String())
		}
	}
}
