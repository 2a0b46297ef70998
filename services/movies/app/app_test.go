package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/denylist"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
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
	return startMoviesWith(t, nil)
}

// startMoviesWith is startMovies with extra variables in the environment.
func startMoviesWith(t *testing.T, extra map[string]string) fixture {
	t.Helper()
	iss := testkit.NewIssuer(t)
	db := testkit.Database(t)
	env := map[string]string{
		"MONGO_URI": testkit.MongoURI(t), "MONGO_DATABASE": db,
		"REDIS_URL": testkit.RedisURL(t), "REDIS_KEY_PREFIX": db + ":",
		"JWKS_URL": iss.JWKSURL,
	}
	for k, v := range extra {
		env[k] = v
	}
	return fixture{Service: testkit.Start(t, app.Run, env), iss: iss, prefix: db + ":"}
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
	r := testkit.CallAPI(t, "POST", f.URL+"/api/movies", body, testkit.Bearer(f.iss.Token(t, user))...)
	if r.Status != 200 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	return testkit.JSON[struct{ ID string }](t, r).ID
}

func TestCRUD(t *testing.T) {
	f := startMovies(t)
	id := f.create(t, alice, `{"name":"Heat","casts":["Al Pacino","Robert De Niro"],"genres":["Crime"]}`)

	got := testkit.JSON[movie](t, testkit.CallAPI(t, "GET", f.URL+"/api/movies/"+id, ""))
	if got.ID != id || got.Name != "Heat" || len(got.Casts) != 2 || got.Genres[0] != "Crime" || got.AddedBy != alice {
		t.Fatalf("get: %+v", got)
	}

	tok := testkit.Bearer(f.iss.Token(t, alice))
	r := testkit.CallAPI(t, "PUT", f.URL+"/api/movies/"+id, `{"name":"Heat (1995)"}`, tok...)
	upd := testkit.JSON[movie](t, r)
	if r.Status != 200 || upd.Name != "Heat (1995)" || len(upd.Casts) != 2 || upd.AddedBy != alice {
		t.Fatalf("update: %d %s", r.Status, r.Body)
	}

	list := testkit.JSON[[]movie](t, testkit.CallAPI(t, "GET", f.URL+"/api/movies", ""))
	if len(list) != 1 || list[0].Name != "Heat (1995)" {
		t.Fatalf("list: %+v", list)
	}

	if r := testkit.CallAPI(t, "DELETE", f.URL+"/api/movies/"+id, "", tok...); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	testkit.Envelope(t, testkit.CallAPI(t, "GET", f.URL+"/api/movies/"+id, ""), apierr.MovieNotExistsError)
	if body := testkit.CallAPI(t, "GET", f.URL+"/api/movies", "").Body; string(body) != "[]" {
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
			testkit.Envelope(t, testkit.CallAPI(t, tt.method, f.URL+"/api/movies/"+tt.id, tt.body, asBob...), tt.code)
		})
	}
	// Bob's attempts changed nothing.
	if got := testkit.JSON[movie](t, testkit.CallAPI(t, "GET", f.URL+"/api/movies/"+id, "")); got.Name != "Alien" {
		t.Errorf("movie changed: %+v", got)
	}
}

func TestUniqueNames(t *testing.T) {
	f := startMovies(t)
	f.create(t, alice, `{"name":"Heat","casts":["a"],"genres":["b"]}`)
	other := f.create(t, alice, `{"name":"Ronin","casts":["a"],"genres":["b"]}`)
	tok := testkit.Bearer(f.iss.Token(t, bob))
	testkit.Envelope(t, testkit.CallAPI(t, "POST", f.URL+"/api/movies", `{"name":"Heat","casts":["x"],"genres":["y"]}`, tok...),
		apierr.MovieAlreadyExistsError)
	testkit.Envelope(t, testkit.CallAPI(t, "PUT", f.URL+"/api/movies/"+other, `{"name":"Heat"}`, testkit.Bearer(f.iss.Token(t, alice))...),
		apierr.MovieAlreadyExistsError)
}

// A race of creates of one name yields exactly one movie, round after
// round: every client holds its token and is released by one barrier, so the
// creates reach the store together (a check-then-insert would let several
// through).
func TestConcurrentCreateRace(t *testing.T) {
	// 20 inserts at once: on a loaded machine the storage may take longer
	// than the 5 s default, which would be a 503 and not the race under test.
	f := startMoviesWith(t, map[string]string{"REQUEST_TIMEOUT": "30s"})
	const n, rounds = 20, 5
	toks := make([]string, n)
	for i := range toks {
		toks[i] = f.iss.Token(t, fmt.Sprintf("6b06f1ebcf512d8be09e%04d", i))
	}
	for round := range rounds {
		// The goroutines only send and collect; every check runs here, in the
		// test's goroutine (t.Fatal anywhere else does not stop the test).
		answers := make([]testkit.Response, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		body := fmt.Sprintf(`{"name":"Race %d","casts":["a"],"genres":["b"]}`, round)
		for i := range n {
			wg.Go(func() {
				<-start
				answers[i], errs[i] = testkit.TryAPI("POST", f.URL+"/api/movies", body, testkit.Bearer(toks[i])...)
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for i, r := range answers {
			switch {
			case errs[i] != nil:
				t.Errorf("round %d: request %d: %v", round, i, errs[i])
			case r.Status == 200:
				ok++
			default:
				if code := testkit.JSON[apierr.Envelope](t, r).Code; code != apierr.MovieAlreadyExistsError {
					t.Errorf("round %d: request %d: %d %s", round, i, r.Status, code)
				}
			}
		}
		if ok != 1 {
			t.Errorf("round %d: %d creates succeeded, want exactly 1", round, ok)
		}
	}
	if list := testkit.JSON[[]movie](t, testkit.CallAPI(t, "GET", f.URL+"/api/movies", "")); len(list) != rounds {
		t.Errorf("%d movies stored, want %d (one a round)", len(list), rounds)
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
		r := testkit.CallAPI(t, "GET", url, "")
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
	if n := len(testkit.JSON[[]movie](t, testkit.CallAPI(t, "GET", f.URL+"/api/movies", ""))); n != 20 {
		t.Errorf("default page has %d movies, want 20", n)
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=abc", "limit=-1", "cursor=xyz", "cursor=6b06f1ebcf512d8be09e8da8zz"} {
		env := testkit.Envelope(t, testkit.CallAPI(t, "GET", f.URL+"/api/movies?"+q, ""), apierr.InvalidParameterError)
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
				env := testkit.Envelope(t, testkit.CallAPI(t, target.method, f.URL+target.path, tt.body, append(tok, "Content-Type", tt.ct)...), tt.code)
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
		env := testkit.Envelope(t, testkit.CallAPI(t, "POST", f.URL+"/api/movies", `{}`, tok...), apierr.SchemaValidationError)
		if len(env.Details) != 3 {
			t.Errorf("details %+v, want one per missing field", env.Details)
		}
	})
	t.Run("update with no fields", func(t *testing.T) {
		testkit.Envelope(t, testkit.CallAPI(t, "PUT", f.URL+"/api/movies/"+id, `{}`, tok...), apierr.SchemaValidationError)
	})
	list := testkit.JSON[[]movie](t, testkit.CallAPI(t, "GET", f.URL+"/api/movies", ""))
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

	// Logged out as the auth service does it: the key, and a message to every
	// replica's mirror. The service must refuse it within a second.
	rdb := redis.NewClient(mustRedisOpts(t))
	defer func() { _ = rdb.Close() }()
	deny := denylist.New(rdb, f.prefix, store.NewFailures(metrics.New(prometheus.NewRegistry(), "test")))
	if err := deny.Revoke(context.Background(), revoked.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	revokedTok := f.iss.Sign(t, revoked)
	testkit.Eventually(t, time.Second, func() error {
		if r := testkit.CallAPI(t, "POST", f.URL+"/api/movies", body, testkit.Bearer(revokedTok)...); r.Status != 401 {
			return fmt.Errorf("a logged-out token still gets %d %s", r.Status, r.Body)
		}
		return nil
	})
	stranger := testkit.NewIssuer(t)

	tests := []struct {
		name    string
		headers []string
		code    apierr.Code
	}{
		{"no token", nil, apierr.TokenMissingError},
		{"wrong scheme", []string{"Authorization", "Token " + f.iss.Token(t, alice)}, apierr.TokenInvalidError},
		{"expired", testkit.Bearer(f.iss.Sign(t, expired)), apierr.TokenExpiredError},
		{"revoked", testkit.Bearer(revokedTok), apierr.TokenRevokedError},
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
			r := testkit.CallAPI(t, "POST", f.URL+"/api/movies", body, tt.headers...)
			testkit.Envelope(t, r, tt.code)
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// The movies service keeps verifying from its cached JWKS while auth is
// down: background refreshes (every second here) fail, the keys stay.
func TestJWKSCacheOutlivesAuth(t *testing.T) {
	f := startMoviesWith(t, map[string]string{"JWKS_REFRESH_INTERVAL": "1s"})
	f.create(t, alice, `{"name":"Before","casts":["a"],"genres":["b"]}`)
	f.iss.StopJWKS()
	// Background refreshes fail while the JWKS is down: wait for two.
	failed := testkit.Series(metrics.JWKSRefreshesName, "result", "failure", "service", app.Service)
	testkit.Eventually(t, 30*time.Second, func() error {
		if n := testkit.Scrape(t, f.AdminURL+"/metrics")[failed]; n < 2 {
			return fmt.Errorf("%s = %v, want at least 2 failed JWKS refreshes", failed, n)
		}
		return nil
	})
	// A token never seen before still verifies with the cached key.
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

// Names are one movie after trimming, NFC normalisation and case folding;
// control and invisible characters are refused; the name is kept as written,
// trimmed.
func TestNameNormalisation(t *testing.T) {
	f := startMovies(t)
	asAlice := testkit.Bearer(f.iss.Token(t, alice))
	asBob := testkit.Bearer(f.iss.Token(t, bob))
	heat := f.create(t, alice, `{"name":"Heat","casts":["a"],"genres":["b"]}`)
	f.create(t, alice, `{"name":"Am\u00e9lie","casts":["a"],"genres":["b"]}`) // é precomposed
	ronin := f.create(t, alice, `{"name":"  Ronin\t","casts":["a"],"genres":["b"]}`)
	if got := testkit.JSON[movie](t, testkit.CallAPI(t, "GET", f.URL+"/api/movies/"+ronin, "")); got.Name != "Ronin" {
		t.Errorf("stored name %q, want it trimmed to Ronin", got.Name)
	}
	for _, name := range []string{`Heat`, ` Heat `, `HEAT`, `heat`, `hEaT\n`, `Ame\u0301lie`, `AMÉLIE`, `RONIN`} {
		body := `{"name":"` + name + `","casts":["x"],"genres":["y"]}`
		t.Run("create "+name, func(t *testing.T) {
			testkit.Envelope(t, testkit.CallAPI(t, "POST", f.URL+"/api/movies", body, asBob...), apierr.MovieAlreadyExistsError)
		})
		t.Run("rename onto "+name, func(t *testing.T) {
			if strings.EqualFold(strings.TrimSpace(name), "ronin") {
				return // ronin's own name
			}
			testkit.Envelope(t, testkit.CallAPI(t, "PUT", f.URL+"/api/movies/"+ronin, `{"name":"`+name+`"}`, asAlice...),
				apierr.MovieAlreadyExistsError)
		})
	}
	for _, name := range []string{`Heat\u200b`, `\u200bHeat`, `He\u0000at`, `Heat\u0007`, `He\u2028at`, `\ufeffHeat`, `He\u202eat`} {
		t.Run("invisible "+name, func(t *testing.T) {
			for _, target := range []struct{ method, path, body string }{
				{"POST", "/api/movies", `{"name":"` + name + `","casts":["x"],"genres":["y"]}`},
				{"PUT", "/api/movies/" + ronin, `{"name":"` + name + `"}`},
			} {
				env := testkit.Envelope(t, testkit.CallAPI(t, target.method, f.URL+target.path, target.body, asAlice...), apierr.SchemaValidationError)
				if len(env.Details) != 1 || env.Details[0].Field != "name" {
					t.Errorf("%s: details %+v, want one naming name", target.method, env.Details)
				}
			}
		})
	}
	// A movie may be renamed to another spelling of its own name.
	r := testkit.CallAPI(t, "PUT", f.URL+"/api/movies/"+heat, `{"name":" HEAT "}`, asAlice...)
	if got := testkit.JSON[movie](t, r); r.Status != 200 || got.Name != "HEAT" {
		t.Errorf("respelling its own name: %d %s", r.Status, r.Body)
	}
	if list := testkit.JSON[[]movie](t, testkit.CallAPI(t, "GET", f.URL+"/api/movies", "")); len(list) != 3 {
		t.Errorf("%d movies stored, want 3: %+v", len(list), list)
	}
}

// Parallel renames of different movies onto one free name: exactly one
// wins, every other gets MovieAlreadyExistsError, never a 500. Repeated
// with differently spelled targets so that the race is near-certain.
func TestConcurrentRenames(t *testing.T) {
	f := startMovies(t)
	const n, rounds = 10, 10
	tok := f.iss.Token(t, alice)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = f.create(t, alice, fmt.Sprintf(`{"name":"Start %d","casts":["a"],"genres":["b"]}`, i))
	}
	for round := range rounds {
		answers := make([]testkit.Response, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			// Every client spells the target its own way: one movie after normalisation.
			name := fmt.Sprintf("Target %d", round)
			if i%2 == 1 {
				name = strings.ToUpper(name)
			}
			wg.Go(func() {
				<-start
				answers[i], errs[i] = testkit.TryAPI("PUT", f.URL+"/api/movies/"+ids[i], `{"name":" `+name+` "}`, testkit.Bearer(tok)...)
			})
		}
		close(start)
		wg.Wait()
		statuses := make([]int, n)
		codes := make([]apierr.Code, n)
		for i, r := range answers {
			if errs[i] != nil {
				t.Fatalf("round %d: rename %d: %v", round, i, errs[i])
			}
			statuses[i] = r.Status
			if r.Status != 200 {
				var env apierr.Envelope
				_ = json.Unmarshal(r.Body, &env)
				codes[i] = env.Code
			}
		}
		won := -1
		for i := range n {
			switch {
			case statuses[i] == 200 && won < 0:
				won = i
			case statuses[i] == 200:
				t.Errorf("round %d: renames %d and %d both succeeded", round, won, i)
			case statuses[i] != 400 || codes[i] != apierr.MovieAlreadyExistsError:
				t.Errorf("round %d: rename %d answered %d %s, want 400 MovieAlreadyExistsError", round, i, statuses[i], codes[i])
			}
		}
		if won < 0 {
			t.Fatalf("round %d: no rename succeeded", round)
		}
		// The winner gets a fresh name back, so the next round starts from n free movies.
		if r := testkit.CallAPI(t, "PUT", f.URL+"/api/movies/"+ids[won], fmt.Sprintf(`{"name":"Start %d"}`, won), testkit.Bearer(tok)...); r.Status != 200 {
			t.Fatalf("reset: %d %s", r.Status, r.Body)
		}
	}
}

// Movies stored before names were compared by key get their key at start:
// two of them equal after normalisation both stay, a new spelling of them is
// refused, and the old unique index on the exact name goes.
func TestNameKeyBackfill(t *testing.T) {
	mdb := testkit.MongoDatabase(t)
	db := mdb.Name()
	ctx := context.Background()
	coll := mdb.Collection("movies")
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "name", Value: 1}}, Options: options.Index().SetUnique(true).SetName("name_unique"),
	}); err != nil {
		t.Fatal(err)
	}
	old := []string{"Heat", "HEAT", "Ronin"}
	ids := make([]bson.ObjectID, len(old))
	for i, name := range old {
		ids[i] = bson.NewObjectID()
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: ids[i]}, {Key: "name", Value: name},
			{Key: "casts", Value: bson.A{"a"}}, {Key: "genres", Value: bson.A{"b"}}, {Key: "added_by", Value: alice}}); err != nil {
			t.Fatal(err)
		}
	}

	iss := testkit.NewIssuer(t)
	s := testkit.Start(t, app.Run, map[string]string{
		"MONGO_URI": testkit.MongoURI(t), "MONGO_DATABASE": db,
		"REDIS_URL": testkit.RedisURL(t), "REDIS_KEY_PREFIX": db + ":", "JWKS_URL": iss.JWKSURL,
	})
	asAlice := testkit.Bearer(iss.Token(t, alice))
	for _, name := range []string{"heat", "RONIN"} {
		testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/movies", `{"name":"`+name+`","casts":["a"],"genres":["b"]}`, asAlice...),
			apierr.MovieAlreadyExistsError)
	}
	for i, id := range ids {
		if got := testkit.JSON[movie](t, testkit.CallAPI(t, "GET", s.URL+"/api/movies/"+id.Hex(), "")); got.Name != old[i] {
			t.Errorf("movie %d after start: %+v", i, got)
		}
	}
	// The later of the two look-alikes can be renamed, and the name it leaves is then free for nobody:
	// the older Heat still holds it.
	if r := testkit.CallAPI(t, "PUT", s.URL+"/api/movies/"+ids[1].Hex(), `{"name":"Heat 2"}`, asAlice...); r.Status != 200 {
		t.Errorf("rename of the later look-alike: %d %s", r.Status, r.Body)
	}
	testkit.Envelope(t, testkit.CallAPI(t, "PUT", s.URL+"/api/movies/"+ids[1].Hex(), `{"name":"HEAT"}`, asAlice...), apierr.MovieAlreadyExistsError)
	specs, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range specs {
		if spec.Name == "name_unique" {
			t.Error("the unique index on the exact name is still there")
		}
	}
}
