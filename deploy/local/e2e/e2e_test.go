// Package e2e_test drives the whole stack (both services behind the
// gateway, real FerretDB and redis-server) over HTTP, as clients do.
package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/moviebag/moviebag/deploy/local/stack"
	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
)

// env is a running stack and the key its auth service signs with.
type env struct {
	*stack.Stack
	key *rsa.PrivateKey
	kid string
}

func startStack(t *testing.T, extra map[string]string) env {
	t.Helper()
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(filepath.Join(dir, "e2e.pem"), pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	db := testkit.Database(t)
	vars := map[string]string{
		"MONGO_DATABASE": db, "REDIS_KEY_PREFIX": db + ":", "JWT_KEYS_DIR": dir,
		"BCRYPT_COST": "4", "LOG_LEVEL": "warn", "LOGIN_LIMIT_PER_EMAIL": "3",
		"SMTP_STARTTLS": "none", // the test mail server, on loopback
	}
	for k, v := range extra {
		vars[k] = v
	}
	logs := &testkit.SyncBuffer{}
	s, err := stack.Start(context.Background(), stack.Options{
		MongoURI: testkit.MongoURI(t), RedisURL: testkit.RedisURL(t), SMTPURL: testkit.SMTPURL(t),
		Env: vars, ServiceLogs: logs,
	})
	if err != nil {
		t.Fatalf("start stack: %v\n%s", err, logs)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stack: %v\n%s", err, logs)
		}
	})
	return env{Stack: s, key: key, kid: "e2e"}
}

func (e env) signup(t *testing.T, email string) string {
	t.Helper()
	r := testkit.CallAPI(t, "POST", e.GatewayURL+"/api/auth/signup", `{"email":"`+email+`","password":"secret123"}`)
	if r.Status != 200 {
		t.Fatalf("signup %s: %d %s", email, r.Status, r.Body)
	}
	return testkit.JSON[struct{ ID string }](t, r).ID
}

func (e env) login(t *testing.T, email string) string {
	t.Helper()
	r := testkit.CallAPI(t, "POST", e.GatewayURL+"/api/auth/login", `{"email":"`+email+`","password":"secret123"}`)
	if r.Status != 200 {
		t.Fatalf("login %s: %d %s", email, r.Status, r.Body)
	}
	return testkit.JSON[struct{ Token string }](t, r).Token
}

// sign makes a token with the stack's own signing key, for claims auth
// would never issue (expired ones).
func (e env) sign(t *testing.T, c jwt.RegisteredClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = e.kid
	s, err := tok.SignedString(e.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The seed article's flows, through the gateway.
func TestSeedFlows(t *testing.T) {
	e := startStack(t, nil)
	g := e.GatewayURL
	userID := e.signup(t, "ada@example.com")
	tok := testkit.Bearer(e.login(t, "ada@example.com"))

	r := testkit.CallAPI(t, "POST", g+"/api/movies", `{"name":"The Matrix","casts":["Keanu Reeves"],"genres":["Sci-Fi"]}`, tok...)
	if r.Status != 200 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := testkit.JSON[struct{ ID string }](t, r).ID

	list := testkit.JSON[[]map[string]any](t, testkit.CallAPI(t, "GET", g+"/api/movies", ""))
	if len(list) != 1 || list[0]["id"] != id || list[0]["added_by"] != userID {
		t.Fatalf("list: %v", list)
	}
	r = testkit.CallAPI(t, "PUT", g+"/api/movies/"+id, `{"genres":["Sci-Fi","Action"]}`, tok...)
	if r.Status != 200 || !bytes.Contains(r.Body, []byte(`"Action"`)) {
		t.Fatalf("update: %d %s", r.Status, r.Body)
	}
	got := testkit.JSON[map[string]any](t, testkit.CallAPI(t, "GET", g+"/api/movies/"+id, ""))
	if got["name"] != "The Matrix" || fmt.Sprint(got["genres"]) != "[Sci-Fi Action]" {
		t.Fatalf("get: %v", got)
	}
	if r := testkit.CallAPI(t, "DELETE", g+"/api/movies/"+id, "", tok...); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	me := testkit.JSON[map[string]any](t, testkit.CallAPI(t, "GET", g+"/api/auth/me", "", tok...))
	if me["id"] != userID || me["email"] != "ada@example.com" {
		t.Fatalf("me: %v", me)
	}
	jwks := testkit.CallAPI(t, "GET", g+"/.well-known/jwks.json", "")
	if jwks.Status != 200 || !bytes.Contains(jwks.Body, []byte(`"kid":"e2e"`)) {
		t.Fatalf("jwks: %d %s", jwks.Status, jwks.Body)
	}
}

// Every error a client can cause, through the gateway, is its envelope.
func TestCatalogThroughGateway(t *testing.T) {
	e := startStack(t, nil)
	g := e.GatewayURL
	alice := e.signup(t, "alice@example.com")
	e.signup(t, "bob@example.com")
	asAlice := testkit.Bearer(e.login(t, "alice@example.com"))
	asBob := testkit.Bearer(e.login(t, "bob@example.com"))
	r := testkit.CallAPI(t, "POST", g+"/api/movies", `{"name":"Heat","casts":["a"],"genres":["b"]}`, asAlice...)
	id := testkit.JSON[struct{ ID string }](t, r).ID

	expired := jwt.RegisteredClaims{
		Issuer: "moviebag-auth", Subject: alice, Audience: jwt.ClaimStrings{"moviebag"}, ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(time.Now().Add(-2 * time.Hour)), ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour)),
	}
	revokedTok := e.login(t, "bob@example.com")
	if r := testkit.CallAPI(t, "POST", g+"/api/auth/logout", "", testkit.Bearer(revokedTok)...); r.Status != 204 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}

	tests := []struct {
		name               string
		method, path, body string
		headers            []string
		code               apierr.Code
	}{
		{"SchemaValidationError", "POST", "/api/auth/signup", `{"email":"x@example.com"}`, nil, apierr.SchemaValidationError},
		{"EmailAlreadyExistsError", "POST", "/api/auth/signup", `{"email":"ALICE@example.com","password":"secret123"}`, nil, apierr.EmailAlreadyExistsError},
		{"UnauthorizedError", "POST", "/api/auth/login", `{"email":"alice@example.com","password":"wrong-pw"}`, nil, apierr.UnauthorizedError},
		{"MovieAlreadyExistsError", "POST", "/api/movies", `{"name":"Heat","casts":["a"],"genres":["b"]}`, asBob, apierr.MovieAlreadyExistsError},
		{"UpdatingMovieError", "PUT", "/api/movies/" + id, `{"name":"Mine"}`, asBob, apierr.UpdatingMovieError},
		{"DeletingMovieError", "DELETE", "/api/movies/" + id, "", asBob, apierr.DeletingMovieError},
		{"MovieNotExistsError", "GET", "/api/movies/6b06f1ebcf512d8be09e0000", "", nil, apierr.MovieNotExistsError},
		{"MovieNotExistsError malformed", "GET", "/api/movies/nope", "", nil, apierr.MovieNotExistsError},
		{"InvalidJSONError", "POST", "/api/movies", `{"name":`, asAlice, apierr.InvalidJSONError},
		{"InvalidParameterError", "GET", "/api/movies?limit=1000", "", nil, apierr.InvalidParameterError},
		{"TokenMissingError", "POST", "/api/movies", `{}`, nil, apierr.TokenMissingError},
		{"TokenInvalidError", "POST", "/api/movies", `{}`, testkit.Bearer("x.y.z"), apierr.TokenInvalidError},
		{"TokenExpiredError", "POST", "/api/movies", `{}`, testkit.Bearer(e.sign(t, expired)), apierr.TokenExpiredError},
		{"TokenRevokedError", "POST", "/api/movies", `{}`, testkit.Bearer(revokedTok), apierr.TokenRevokedError},
		{"NotFoundError gateway", "GET", "/nowhere", "", nil, apierr.NotFoundError},
		{"NotFoundError auth", "GET", "/api/auth/nowhere", "", nil, apierr.NotFoundError},
		{"NotFoundError movies", "GET", "/api/movies/a/b", "", nil, apierr.NotFoundError},
		{"MethodNotAllowedError", "PATCH", "/api/movies/" + id, `{}`, asAlice, apierr.MethodNotAllowedError},
		{"PayloadTooLargeError", "POST", "/api/auth/signup", `{"email":"` + strings.Repeat("a", 70000) + `"}`, nil, apierr.PayloadTooLargeError},
		{"UnsupportedMediaTypeError", "POST", "/api/auth/signup", `{}`, []string{"Content-Type", "text/plain"}, apierr.UnsupportedMediaTypeError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testkit.Envelope(t, testkit.CallAPI(t, tt.method, g+tt.path, tt.body, tt.headers...), tt.code)
		})
	}
	t.Run("TooManyRequestsError", func(t *testing.T) {
		bad := `{"email":"alice@example.com","password":"wrong-pw"}`
		var r testkit.Response
		for range 4 {
			r = testkit.CallAPI(t, "POST", g+"/api/auth/login", bad)
		}
		testkit.Envelope(t, r, apierr.TooManyRequestsError)
		if r.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	})
}

// A logout is seen by the movies service within one second.
func TestLogoutRevokesForMovies(t *testing.T) {
	e := startStack(t, nil)
	e.signup(t, "ada@example.com")
	tok := e.login(t, "ada@example.com")
	body := `{"name":"Before logout","casts":["a"],"genres":["b"]}`
	if r := testkit.CallAPI(t, "POST", e.GatewayURL+"/api/movies", body, testkit.Bearer(tok)...); r.Status != 200 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	if r := testkit.CallAPI(t, "POST", e.GatewayURL+"/api/auth/logout", "", testkit.Bearer(tok)...); r.Status != 204 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	var refused testkit.Response
	testkit.Eventually(t, time.Second, func() error {
		refused = testkit.CallAPI(t, "POST", e.GatewayURL+"/api/movies", `{"name":"After logout","casts":["a"],"genres":["b"]}`, testkit.Bearer(tok)...)
		if refused.Status != 401 {
			return fmt.Errorf("movies still accepts the token after logout: %d %s", refused.Status, refused.Body)
		}
		return nil
	})
	testkit.Envelope(t, refused, apierr.TokenRevokedError)
	// Nothing was created with the revoked token.
	list := testkit.JSON[[]map[string]any](t, testkit.CallAPI(t, "GET", e.GatewayURL+"/api/movies", ""))
	if len(list) != 1 {
		t.Errorf("%d movies, want 1", len(list))
	}
}

// The two services answer the same error with the same bytes: one library.
func TestSameErrorSameBytes(t *testing.T) {
	e := startStack(t, nil)
	e.signup(t, "ada@example.com")
	tok := e.login(t, "ada@example.com")
	tests := []struct {
		name         string
		auth, movies []string // method, path, body
		headers      []string
	}{
		{"unknown route", []string{"GET", "/api/auth/nope", ""}, []string{"GET", "/api/movies/x/y", ""}, nil},
		{"wrong method", []string{"DELETE", "/api/auth/login", ""}, []string{"PATCH", "/api/movies", ""}, nil},
		{"missing token", []string{"GET", "/api/auth/me", ""}, []string{"POST", "/api/movies", "{}"}, nil},
		{"invalid token", []string{"GET", "/api/auth/me", ""}, []string{"POST", "/api/movies", "{}"}, []string{"Authorization", "Bearer nope"}},
		{"malformed JSON", []string{"POST", "/api/auth/signup", "{"}, []string{"POST", "/api/movies", "{"}, []string{"Authorization", "Bearer " + tok}},
		{"body too large", []string{"POST", "/api/auth/signup", strings.Repeat(" ", 70000)}, []string{"POST", "/api/movies", strings.Repeat(" ", 70000)}, []string{"Authorization", "Bearer " + tok}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := append([]string{"X-Request-ID", "same-" + uuid.NewString()}, tt.headers...)
			a := testkit.CallAPI(t, tt.auth[0], e.AuthURL+tt.auth[1], tt.auth[2], h...)
			m := testkit.CallAPI(t, tt.movies[0], e.MoviesURL+tt.movies[1], tt.movies[2], h...)
			if a.Status < 400 || !bytes.Equal(a.Body, m.Body) {
				t.Errorf("auth answered %d %s\nmovies answered %d %s", a.Status, a.Body, m.Status, m.Body)
			}
			for _, k := range []string{"Content-Type", "WWW-Authenticate", "X-Request-Id"} {
				if a.Header.Get(k) != m.Header.Get(k) {
					t.Errorf("%s: auth %q, movies %q", k, a.Header.Get(k), m.Header.Get(k))
				}
			}
		})
	}
}

// Concurrent creates of one name through the gateway: exactly one wins.
func TestCreateRaceThroughGateway(t *testing.T) {
	e := startStack(t, nil)
	const users, perUser = 4, 5
	var tokens []string
	for i := range users {
		email := fmt.Sprintf("u%d@example.com", i)
		e.signup(t, email)
		tokens = append(tokens, e.login(t, email))
	}
	// Every client is released by one barrier, round after round, so the
	// creates reach the services together.
	for round := range 3 {
		body := fmt.Sprintf(`{"name":"Contested %d","casts":["a"],"genres":["b"]}`, round)
		answers := make([]testkit.Response, users*perUser)
		errs := make([]error, users*perUser)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range users * perUser {
			wg.Go(func() {
				<-start
				answers[i], errs[i] = testkit.TryAPI("POST", e.GatewayURL+"/api/movies", body, testkit.Bearer(tokens[i%users])...)
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		var other []string
		for i, r := range answers {
			switch {
			case errs[i] != nil:
				t.Errorf("round %d: %v", round, errs[i])
			case r.Status == 200:
				wins++
			case !bytes.Contains(r.Body, []byte(`"code":"MovieAlreadyExistsError"`)):
				other = append(other, fmt.Sprintf("%d %s", r.Status, r.Body))
			}
		}
		if wins != 1 || len(other) > 0 {
			t.Errorf("round %d: %d wins (want 1); other answers: %v", round, wins, other)
		}
	}
}

// With no MONGO_URI / REDIS_URL the stack starts its own storage, as `make run` does.
func TestStackStartsItsOwnStorage(t *testing.T) {
	s, err := stack.Start(context.Background(), stack.Options{
		DataDir: t.TempDir(), RequireRedisServer: true, Env: map[string]string{"BCRYPT_COST": "4", "LOG_LEVEL": "warn"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	}()
	if s.RedisKind != "redis-server" || !strings.HasPrefix(s.MongoURI, "mongodb://127.0.0.1:") {
		t.Errorf("stores: %s %s (%s)", s.MongoURI, s.RedisURL, s.RedisKind)
	}
	r := testkit.CallAPI(t, "POST", s.GatewayURL+"/api/auth/signup", `{"email":"ada@example.com","password":"secret123"}`)
	if r.Status != 200 {
		t.Fatalf("signup: %d %s", r.Status, r.Body)
	}
	if r := testkit.CallAPI(t, "GET", s.GatewayURL+"/api/movies", ""); r.Status != 200 || string(r.Body) != "[]" {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
}
