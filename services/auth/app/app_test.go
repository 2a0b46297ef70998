package app_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
	"github.com/moviebag/moviebag/services/auth/app"
)

// startAuth runs the service through Run against the real storage of
// `make test`, in a database and Redis key space of its own.
func startAuth(t *testing.T, extra map[string]string) *testkit.Service {
	t.Helper()
	return startAuthWith(t, app.Run, extra)
}

// startAuthWith is startAuth through a Run of the test's choice.
func startAuthWith(t *testing.T, run testkit.RunFunc, extra map[string]string) *testkit.Service {
	t.Helper()
	db := testkit.Database(t)
	env := map[string]string{
		"MONGO_URI": testkit.MongoURI(t), "MONGO_DATABASE": db,
		"REDIS_URL": testkit.RedisURL(t), "REDIS_KEY_PREFIX": db + ":",
		"BCRYPT_COST": "4", "LOGIN_LIMIT_PER_IP": "1000", "SIGNUP_LIMIT_PER_IP": "1000",
		// No shedding of hash work unless a test asks for it: on a busy
		// machine a burst of even cheap hashes can look too slow.
		"BCRYPT_MAX_LATENCY": "1m",
	}
	for k, v := range extra {
		env[k] = v
	}
	return testkit.Start(t, run, env)
}

const creds = `{"email":"Ada@Example.com","password":"secret123"}`

func signup(t *testing.T, s *testkit.Service, body string) string {
	t.Helper()
	r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/signup", body)
	if r.Status != 200 {
		t.Fatalf("signup: %d %s", r.Status, r.Body)
	}
	return testkit.JSON[struct{ ID string }](t, r).ID
}

func login(t *testing.T, s *testkit.Service, body string) string {
	t.Helper()
	return loginPair(t, s, body).Token
}

// pair is the answer of a login or a refresh.
type pair struct {
	Token        string `json:"token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// loginPair logs in and returns both tokens, checking the answer's form:
// the access token lives JWT_TTL (15 minutes unless set), the refresh token
// is its session's id (the sid claim), a dot and 43 characters of
// base64url, and neither is cached.
func loginPair(t *testing.T, s *testkit.Service, body string) pair {
	t.Helper()
	r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/login", body)
	if r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	return checkPair(t, r)
}

// refreshSecret is the secret of a refresh token: 32 bytes in base64url.
var refreshSecret = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func checkPair(t *testing.T, r testkit.Response) pair {
	t.Helper()
	out := testkit.JSON[pair](t, r)
	if out.Token == "" || out.TokenType != "Bearer" || out.ExpiresIn != 900 {
		t.Fatalf("answer %s", r.Body)
	}
	if id, secret, _ := strings.Cut(out.RefreshToken, "."); id != sid(t, out.Token) || !refreshSecret.MatchString(secret) {
		t.Fatalf("refresh token %q is not the sid %q, a dot and 43 characters of base64url", out.RefreshToken, sid(t, out.Token))
	}
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
		t.Errorf("tokens answered with Cache-Control %q, Pragma %q", r.Header.Get("Cache-Control"), r.Header.Get("Pragma"))
	}
	return out
}

func TestSignupLoginMeLogout(t *testing.T) {
	s := startAuth(t, nil)
	id := signup(t, s, creds)
	if len(id) != 24 {
		t.Fatalf("id %q is not an ObjectID hex", id)
	}
	// Emails are unique whatever their case.
	testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/signup", `{"email":"ada@example.COM","password":"other123"}`),
		apierr.EmailAlreadyExistsError)

	tok := login(t, s, `{"email":"ada@example.com","password":"secret123"}`)
	claims := jwt.RegisteredClaims{}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &claims)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["alg"] != "RS256" || parsed.Header["kid"] == "" {
		t.Errorf("header %v", parsed.Header)
	}
	if claims.Subject != id || claims.Issuer != "moviebag-auth" || len(claims.Audience) != 1 || claims.Audience[0] != "moviebag" ||
		claims.ID == "" || claims.NotBefore == nil || claims.IssuedAt == nil ||
		claims.ExpiresAt.Sub(claims.IssuedAt.Time) != 15*time.Minute {
		t.Errorf("claims %+v", claims)
	}

	me := testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(tok)...)
	got := testkit.JSON[map[string]any](t, me)
	if me.Status != 200 || got["id"] != id || got["email"] != "ada@example.com" {
		t.Fatalf("me: %d %s", me.Status, me.Body)
	}
	if strings.Contains(string(me.Body), "password") {
		t.Errorf("me leaks the password hash: %s", me.Body)
	}

	out := testkit.CallAPI(t, "POST", s.URL+"/api/auth/logout", "", testkit.Bearer(tok)...)
	if out.Status != 204 {
		t.Fatalf("logout: %d %s", out.Status, out.Body)
	}
	testkit.Envelope(t, testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(tok)...), apierr.TokenRevokedError)
	testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/logout", "", testkit.Bearer(tok)...), apierr.TokenRevokedError)
	// A new login still works.
	login(t, s, creds)
}

// A wrong password and an unknown email get the same answer after the same
// work: one bcrypt comparison each, at the configured cost (an unknown email
// is compared against a dummy hash made at that cost), so neither the body
// nor the time tells which emails have accounts.
func TestLoginFailuresLookAlike(t *testing.T) {
	const cost = 5 // not bcrypt's least, so a dummy made cheaper would show
	var (
		mu    sync.Mutex
		costs []int
	)
	s := startAuthWith(t, app.RunWatchingCompares(func(hash []byte) {
		c, err := bcrypt.Cost(hash)
		if err != nil {
			c = -1
		}
		mu.Lock()
		costs = append(costs, c)
		mu.Unlock()
	}), map[string]string{"BCRYPT_COST": strconv.Itoa(cost)})
	signup(t, s, creds)
	attempt := func(body string) (apierr.Envelope, []int) {
		t.Helper()
		mu.Lock()
		before := len(costs)
		mu.Unlock()
		env := testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/login", body), apierr.UnauthorizedError)
		mu.Lock()
		defer mu.Unlock()
		return env, append([]int(nil), costs[before:]...)
	}
	wrong, wrongCosts := attempt(`{"email":"ada@example.com","password":"wrong-one"}`)
	unknown, unknownCosts := attempt(`{"email":"nobody@example.com","password":"wrong-one"}`)
	wrong.RequestID, unknown.RequestID = "", ""
	if !reflect.DeepEqual(wrong, unknown) {
		t.Errorf("wrong password %+v and unknown email %+v differ", wrong, unknown)
	}
	want := []int{cost}
	if !reflect.DeepEqual(wrongCosts, want) || !reflect.DeepEqual(unknownCosts, want) {
		t.Errorf("bcrypt comparisons (their costs): %v for a wrong password, %v for an unknown email; want %v for each",
			wrongCosts, unknownCosts, want)
	}
}

func TestAuthRequired(t *testing.T) {
	s := startAuth(t, nil)
	for _, tt := range []struct {
		name    string
		headers []string
		code    apierr.Code
	}{
		{"no header", nil, apierr.TokenMissingError},
		{"wrong scheme", []string{"Authorization", "Basic YWRhOnNlY3JldA=="}, apierr.TokenInvalidError},
		{"garbage token", testkit.Bearer("abc.def.ghi"), apierr.TokenInvalidError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, route := range []struct{ method, path string }{{"GET", "/api/auth/me"}, {"POST", "/api/auth/logout"}} {
				r := testkit.CallAPI(t, route.method, s.URL+route.path, "", tt.headers...)
				testkit.Envelope(t, r, tt.code)
				if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("no Bearer challenge: %q", r.Header.Get("WWW-Authenticate"))
				}
			}
		})
	}
}

// Bad input of every kind is a precise 4xx, and nothing is written.
func TestSignupBadInput(t *testing.T) {
	s := startAuth(t, nil)
	tests := []struct {
		name   string
		ct     string
		body   string
		code   apierr.Code
		fields []string
	}{
		{"malformed JSON", "application/json", `{"email":`, apierr.InvalidJSONError, nil},
		{"empty body", "application/json", ``, apierr.InvalidJSONError, nil},
		{"array", "application/json", `[]`, apierr.InvalidJSONError, nil},
		{"string", "application/json", `"ada@example.com"`, apierr.InvalidJSONError, nil},
		{"missing email and password", "application/json", `{}`, apierr.SchemaValidationError, []string{"email", "password"}},
		{"missing password", "application/json", `{"email":"ada@example.com"}`, apierr.SchemaValidationError, []string{"password"}},
		{"invalid email", "application/json", `{"email":"ada","password":"secret123"}`, apierr.SchemaValidationError, []string{"email"}},
		{"short password", "application/json", `{"email":"ada@example.com","password":"12345"}`, apierr.SchemaValidationError, []string{"password"}},
		{"unknown field", "application/json", `{"email":"ada@example.com","password":"secret123","role":"admin"}`, apierr.SchemaValidationError, []string{"role"}},
		{"operator object", "application/json", `{"email":{"$gt":""},"password":"secret123"}`, apierr.SchemaValidationError, []string{"email"}},
		{"wrong type", "application/json", `{"email":"ada@example.com","password":123456}`, apierr.SchemaValidationError, []string{"password"}},
		// bcrypt's limit is 72 bytes: 39 characters of two bytes each are over it.
		{"password over 72 bytes", "application/json", `{"email":"ada@example.com","password":"` + strings.Repeat("é", 39) + `"}`, apierr.SchemaValidationError, []string{"password"}},
		{"duplicate key", "application/json", `{"email":"eve@example.com","password":"secret123","email":"ada@example.com"}`, apierr.InvalidJSONError, nil},
		{"wrong content type", "text/plain", creds, apierr.UnsupportedMediaTypeError, nil},
		{"form encoded", "application/x-www-form-urlencoded", "email=ada%40example.com&password=secret123", apierr.UnsupportedMediaTypeError, nil},
		{"huge body", "application/json", `{"email":"` + strings.Repeat("a", 70000) + `@example.com","password":"secret123"}`, apierr.PayloadTooLargeError, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/api/auth/signup", "/api/auth/login"} {
				env := testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+path, tt.body, "Content-Type", tt.ct), tt.code)
				var fields []string
				for _, d := range env.Details {
					fields = append(fields, d.Field)
				}
				if strings.Join(fields, ",") != strings.Join(tt.fields, ",") {
					t.Errorf("%s: detail fields %v, want %v", path, fields, tt.fields)
				}
			}
		})
	}
	// None of it created an account: the address is still free.
	signup(t, s, creds)
}

func TestLoginRateLimits(t *testing.T) {
	t.Run("per email, failures only", func(t *testing.T) {
		s := startAuth(t, map[string]string{"LOGIN_LIMIT_PER_EMAIL": "3"})
		signup(t, s, creds)
		for range 5 { // successes do not count
			login(t, s, creds)
		}
		bad := `{"email":"ada@example.com","password":"wrong-one"}`
		for range 3 {
			testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/login", bad), apierr.UnauthorizedError)
		}
		r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/login", creds) // even the right password now waits
		testkit.Envelope(t, r, apierr.TooManyRequestsError)
		if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 900 {
			t.Errorf("Retry-After = %q", r.Header.Get("Retry-After"))
		}
		// Other accounts are not affected.
		signup(t, s, `{"email":"bob@example.com","password":"secret123"}`)
		login(t, s, `{"email":"bob@example.com","password":"secret123"}`)
	})
	t.Run("per client address", func(t *testing.T) {
		s := startAuth(t, map[string]string{"LOGIN_LIMIT_PER_IP": "4"})
		for range 4 {
			testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/login", `{"email":"x@example.com","password":"whatever"}`),
				apierr.UnauthorizedError)
		}
		r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/login", creds)
		testkit.Envelope(t, r, apierr.TooManyRequestsError)
		if r.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
	})
}

// slowMachine is a REQUEST_TIMEOUT for tests of something else than
// deadlines: a burst of hashes on a busy machine, under the race detector,
// must not meet the deadline (or the hasher's admission, which reads it).
const slowMachine = "30s"

// A burst of concurrent logins is counted before any password is checked:
// of 40 parallel wrong-password logins for one account only the limit's
// worth are answered 401, the rest 429, and likewise per client address.
// Repeated on fresh accounts and addresses so that a check-then-count race
// would show.
func TestLoginRateLimitsConcurrent(t *testing.T) {
	const limit, parallel, rounds = 10, 40, 3
	burst := func(t *testing.T, s *testkit.Service, body string, headers ...string) map[int]int {
		t.Helper()
		var (
			mu       sync.Mutex
			statuses = map[int]int{}
			start    = make(chan struct{})
			wg       sync.WaitGroup
		)
		for range parallel {
			wg.Go(func() {
				<-start
				r, err := testkit.TryAPI("POST", s.URL+"/api/auth/login", body, headers...)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					statuses[-1]++
					return
				}
				statuses[r.Status]++
				if r.Status == 429 && r.Header.Get("Retry-After") == "" {
					statuses[-429]++
				}
			})
		}
		close(start)
		wg.Wait()
		return statuses
	}
	t.Run("per email", func(t *testing.T) {
		s := startAuth(t, map[string]string{"LOGIN_LIMIT_PER_EMAIL": strconv.Itoa(limit), "REQUEST_TIMEOUT": slowMachine})
		for round := range rounds {
			email := fmt.Sprintf("target%d@example.com", round)
			signup(t, s, `{"email":"`+email+`","password":"secret123"}`)
			got := burst(t, s, `{"email":"`+email+`","password":"wrong-guess"}`)
			if got[401] != limit || got[429] != parallel-limit || got[-429] != 0 {
				t.Fatalf("round %d: statuses %v, want %d × 401 and %d × 429 with Retry-After", round, got, limit, parallel-limit)
			}
			r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/login", `{"email":"`+email+`","password":"secret123"}`)
			testkit.Envelope(t, r, apierr.TooManyRequestsError) // even the right password waits
		}
		body := string(testkit.CallAPI(t, "GET", s.AdminURL+"/metrics", "").Body)
		want := fmt.Sprintf(`moviebag_login_attempts_total{result="rate_limited",service="auth"} %d`, rounds*(parallel-limit+1))
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	})
	t.Run("per client address", func(t *testing.T) {
		s := startAuth(t, map[string]string{"LOGIN_LIMIT_PER_IP": strconv.Itoa(limit), "REQUEST_TIMEOUT": slowMachine})
		for round := range rounds {
			// The test client is a trusted (loopback) proxy: X-Forwarded-For names the client.
			ip := fmt.Sprintf("203.0.113.%d", round+1)
			got := burst(t, s, fmt.Sprintf(`{"email":"nobody%d@example.com","password":"whatever"}`, round), "X-Forwarded-For", ip)
			if got[401] != limit || got[429] != parallel-limit || got[-429] != 0 {
				t.Fatalf("round %d: statuses %v, want %d × 401 and %d × 429 with Retry-After", round, got, limit, parallel-limit)
			}
		}
	})
}

func TestJWKS(t *testing.T) {
	s := startAuth(t, nil)
	r := testkit.CallAPI(t, "GET", s.URL+"/.well-known/jwks.json", "")
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	set := testkit.JSON[struct{ Keys []map[string]any }](t, r)
	if len(set.Keys) != 1 {
		t.Fatalf("keys: %s", r.Body)
	}
	k := set.Keys[0]
	for _, field := range []string{"kid", "kty", "alg", "use", "n", "e"} {
		if k[field] == nil || k[field] == "" {
			t.Errorf("JWK lacks %s: %s", field, r.Body)
		}
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := k[private]; ok {
			t.Errorf("JWKS publishes private member %q", private)
		}
	}
	if k["kty"] != "RSA" || k["alg"] != "RS256" || k["use"] != "sig" {
		t.Errorf("JWK %v", k)
	}
}

// Every PEM of JWT_KEYS_DIR is published; the lexically last one signs (at
// once with no sign delay; keys.TestRotatingSignsAfterDelay covers the delay).
func TestKeysDir(t *testing.T) {
	dir := t.TempDir()
	writeKey(t, filepath.Join(dir, "2026-01.pem"), false)
	writeKey(t, filepath.Join(dir, "2026-06.pem"), true)
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startAuth(t, map[string]string{"JWT_KEYS_DIR": dir, "JWT_KEYS_SIGN_DELAY": "0s"})
	set := testkit.JSON[struct{ Keys []struct{ KID string } }](t, testkit.CallAPI(t, "GET", s.URL+"/.well-known/jwks.json", ""))
	if len(set.Keys) != 2 {
		t.Fatalf("published %+v, want both keys", set.Keys)
	}
	signup(t, s, creds)
	parsed, _, err := jwt.NewParser().ParseUnverified(login(t, s, creds), &jwt.RegisteredClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["kid"] != "2026-06" {
		t.Errorf("signed with kid %v, want 2026-06", parsed.Header["kid"])
	}
}

// Both services refuse what auth would never sign, even with a good
// signature: no kid, an unknown crit header, wrongly typed exp or aud.
func TestMalformedTokensRefused(t *testing.T) {
	dir := t.TempDir()
	key := writeKey(t, filepath.Join(dir, "k1.pem"), false)
	s := startAuth(t, map[string]string{"JWT_KEYS_DIR": dir})
	id := signup(t, s, creds)
	now := time.Now()
	valid := jwt.RegisteredClaims{
		Issuer: "moviebag-auth", Subject: id, Audience: jwt.ClaimStrings{"moviebag"}, ID: "jti-" + id,
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
	}
	control := jwt.NewWithClaims(jwt.SigningMethodRS256, valid)
	control.Header["kid"] = "k1"
	signed, err := control.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	if r := testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(signed)...); r.Status != 200 {
		t.Fatalf("the well-formed token the test signs is refused: %d %s", r.Status, r.Body)
	}
	for name, tok := range testkit.MalformedTokens(t, key, "k1", valid) {
		t.Run(name, func(t *testing.T) {
			testkit.Envelope(t, testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(tok)...), apierr.TokenInvalidError)
		})
	}
}

func writeKey(t *testing.T, path string, pkcs8 bool) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	if pkcs8 {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

// Configuration mistakes stop Run with a message naming the variable.
func TestConfigErrors(t *testing.T) {
	badKeys := t.TempDir()
	if err := os.WriteFile(filepath.Join(badKeys, "k.pem"), []byte("-----BEGIN NOTHING-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ key, value, want string }{
		{"BCRYPT_COST", "3", "BCRYPT_COST"},
		{"LOG_LEVEL", "loud", "LOG_LEVEL"},
		{"JWT_TTL", "forever", "JWT_TTL"},
		{"JWT_KEYS_DIR", t.TempDir(), "JWT_KEYS_DIR"},
		{"JWT_KEYS_DIR", badKeys, "JWT_KEYS_DIR"},
		{"TRUSTED_PROXIES", "nonsense", "TRUSTED_PROXIES"},
		{"BODY_LIMIT_BYTES", "0", "BODY_LIMIT_BYTES"},
		{"BODY_LIMIT_BYTES", "33554432", "BODY_LIMIT_BYTES"},
		{"BCRYPT_MAX_LATENCY", "0s", "BCRYPT_MAX_LATENCY"},
		{"JWT_TTL", "0s", "JWT_TTL"},
		{"REFRESH_IDLE_TTL", "0s", "REFRESH_IDLE_TTL"},
		{"REFRESH_MAX_TTL", "1h", "REFRESH_MAX_TTL"}, // shorter than the idle life (168h)
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			env := map[string]string{tt.key: tt.value, "HTTP_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0"}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := app.Run(ctx, func(k string) string { return env[k] }, io.Discard, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run: %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestMetricsExposed(t *testing.T) {
	s := startAuth(t, nil)
	signup(t, s, creds)
	tok := login(t, s, creds)
	if r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/logout", "", testkit.Bearer(tok)...); r.Status != 204 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	testkit.CallAPI(t, "GET", s.URL+"/no/such/path", "")
	body := string(testkit.CallAPI(t, "GET", s.AdminURL+"/metrics", "").Body)
	for _, want := range []string{
		`http_requests_total{method="POST",route="/api/auth/login",service="auth",status="200"} 1`,
		`http_requests_total{method="GET",route="unmatched",service="auth",status="404"} 1`,
		`moviebag_errors_total{code="NotFoundError",service="auth",status="404"} 1`,
		`moviebag_login_attempts_total{result="success",service="auth"} 1`,
		`moviebag_tokens_revoked_total{service="auth"} 1`,
		`moviebag_sessions_ended_total{reason="logout",service="auth"} 1`,
		`http_request_duration_seconds_bucket{method="POST",route="/api/auth/signup",service="auth",le="0.005"}`,
		`moviebag_build_info{`, `go_goroutines`, `process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s\n%s", want, body)
		}
	}
	var health map[string]string
	if err := json.Unmarshal(testkit.CallAPI(t, "GET", s.AdminURL+"/healthz", "").Body, &health); err != nil || health["status"] != "ok" {
		t.Errorf("healthz: %v %v", health, err)
	}
}

// While MongoDB cannot be reached at start, the process is alive (/healthz)
// but not ready (/readyz), and it stops cleanly when told to.
func TestNotReadyUntilMongoDB(t *testing.T) {
	// The admin address must be known before the service is ready (Run
	// reports its addresses only then), so this test picks it beforehand.
	env := map[string]string{
		"MONGO_URI": "mongodb://" + testkit.FreeAddr(t), "REDIS_URL": testkit.RedisURL(t),
		"DEPENDENCY_DIAL_TIMEOUT": "200ms", "BCRYPT_COST": "4",
		"HTTP_ADDR": "127.0.0.1:0", "ADMIN_ADDR": testkit.FreeAddr(t),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, func(k string) string { return env[k] }, io.Discard, nil) }()
	admin := "http://" + env["ADMIN_ADDR"]
	testkit.Eventually(t, 10*time.Second, func() error {
		r, err := testkit.TryAPI("GET", admin+"/healthz", "")
		if err == nil && r.Status != 200 {
			err = fmt.Errorf("healthz %d", r.Status)
		}
		return err
	})
	if r := testkit.CallAPI(t, "GET", admin+"/readyz", ""); r.Status != 503 {
		t.Errorf("ready without MongoDB: %d", r.Status)
	}
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "users indexes") {
			t.Errorf("Run: %v, want the index step named", err)
		}
	// Stopping takes up to two bounded steps of 5 s (libs/service's
	// stopTimeout: the admin server, the clients); past 30 s it hangs.
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
