package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
)

func refresh(t *testing.T, s *testkit.Service, refreshToken string) testkit.Response {
	t.Helper()
	return testkit.CallAPI(t, "POST", s.URL+"/api/auth/refresh", `{"refresh_token":"`+refreshToken+`"}`)
}

func mustRefresh(t *testing.T, s *testkit.Service, refreshToken string) pair {
	t.Helper()
	r := refresh(t, s, refreshToken)
	if r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	return checkPair(t, r)
}

// sid is the session an access token names.
func sid(t *testing.T, tok string) string {
	t.Helper()
	var claims struct {
		jwt.RegisteredClaims
		SID string `json:"sid"`
	}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.SID
}

func me(t *testing.T, s *testkit.Service, tok string) testkit.Response {
	t.Helper()
	return testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(tok)...)
}

// A refresh spends its refresh token and gives a new pair of the same
// session. The spent token presented again ends the whole session: its
// newest refresh token is refused too, and so is every later presentation,
// and every access token of the session; the user's other sessions go on.
func TestRefreshRotatesAndReuseEndsTheSession(t *testing.T) {
	s := startAuth(t, nil)
	signup(t, s, creds)
	first := loginPair(t, s, creds)
	other := loginPair(t, s, creds)
	if sid(t, first.Token) == "" || sid(t, first.Token) == sid(t, other.Token) {
		t.Fatalf("sessions %q and %q", sid(t, first.Token), sid(t, other.Token))
	}

	second := mustRefresh(t, s, first.RefreshToken)
	if second.RefreshToken == first.RefreshToken || second.Token == first.Token || sid(t, second.Token) != sid(t, first.Token) {
		t.Fatalf("refresh gave %+v after %+v", second, first)
	}
	if r := me(t, s, second.Token); r.Status != 200 {
		t.Fatalf("the refreshed access token: %d %s", r.Status, r.Body)
	}
	third := mustRefresh(t, s, second.RefreshToken)

	r := refresh(t, s, first.RefreshToken) // spent two rotations ago
	testkit.Envelope(t, r, apierr.RefreshTokenInvalidError)
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 without a challenge: %q", r.Header.Get("WWW-Authenticate"))
	}
	for _, tok := range []string{third.RefreshToken, second.RefreshToken, first.RefreshToken} {
		testkit.Envelope(t, refresh(t, s, tok), apierr.RefreshTokenInvalidError)
	}
	for _, tok := range []string{first.Token, second.Token, third.Token} { // every access token of the session
		testkit.Envelope(t, me(t, s, tok), apierr.TokenRevokedError)
	}
	mustRefresh(t, s, other.RefreshToken)
	if r := me(t, s, other.Token); r.Status != 200 {
		t.Errorf("another session's access token: %d %s", r.Status, r.Body)
	}

	m := testkit.Scrape(t, s.AdminURL+"/metrics")
	for series, want := range map[string]float64{
		testkit.Series("moviebag_token_refreshes_total", "result", "success", "service", "auth"):      3,
		testkit.Series("moviebag_token_refreshes_total", "result", "reused", "service", "auth"):       1,
		testkit.Series("moviebag_token_refreshes_total", "result", "invalid", "service", "auth"):      3,
		testkit.Series("moviebag_sessions_ended_total", "reason", "refresh_reuse", "service", "auth"): 1,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}
}

// The refresh body is decoded strictly, and anything that is not a refresh
// token auth issued is the one RefreshTokenInvalidError.
func TestRefreshRefusesWhatIsNoRefreshToken(t *testing.T) {
	s := startAuth(t, nil)
	signup(t, s, creds)
	p := loginPair(t, s, creds)
	_, secret, _ := strings.Cut(p.RefreshToken, ".")
	other := strings.Repeat("A", 43)
	for _, tt := range []struct {
		name, body, field string
		code              apierr.Code
	}{
		{"missing", `{}`, "refresh_token", apierr.SchemaValidationError},
		{"empty", `{"refresh_token":""}`, "refresh_token", apierr.SchemaValidationError},
		{"unknown field", `{"refresh_token":"` + p.RefreshToken + `","scope":"admin"}`, "scope", apierr.SchemaValidationError},
		{"not a string", `{"refresh_token":42}`, "refresh_token", apierr.SchemaValidationError},
		{"too long", `{"refresh_token":"` + strings.Repeat("A", 2049) + `"}`, "refresh_token", apierr.SchemaValidationError},
		{"two objects", `{"refresh_token":"` + p.RefreshToken + `"}{}`, "", apierr.InvalidJSONError},
		{"truncated", `{"refresh_token":`, "", apierr.InvalidJSONError},
		{"an access token", `{"refresh_token":"` + p.Token + `"}`, "", apierr.RefreshTokenInvalidError},
		{"one character off", `{"refresh_token":"` + p.RefreshToken[:len(p.RefreshToken)-1] + `!"}`, "", apierr.RefreshTokenInvalidError},
		{"padded", `{"refresh_token":"` + p.RefreshToken + `="}`, "", apierr.RefreshTokenInvalidError},
		{"the secret alone", `{"refresh_token":"` + secret + `"}`, "", apierr.RefreshTokenInvalidError},
		{"upper-case sid", `{"refresh_token":"` + strings.ToUpper(sid(t, p.Token)) + "." + secret + `"}`, "", apierr.RefreshTokenInvalidError},
		{"unknown", `{"refresh_token":"` + strings.Repeat("A", 43) + `"}`, "", apierr.RefreshTokenInvalidError},
		{"a session that never was", `{"refresh_token":"` + uuid.NewString() + "." + secret + `"}`, "", apierr.RefreshTokenInvalidError},
		// Whoever knows the session's id (it is in every access token of it)
		// cannot end the session with a secret of their own: the refresh
		// below still succeeds.
		{"the session's id, another secret", `{"refresh_token":"` + sid(t, p.Token) + "." + other + `"}`, "", apierr.RefreshTokenInvalidError},
	} {
		env := testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/refresh", tt.body), tt.code)
		if tt.field != "" && (len(env.Details) != 1 || env.Details[0].Field != tt.field) {
			t.Errorf("%s: details %+v, want %s", tt.name, env.Details, tt.field)
		}
	}
	testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/refresh", `{"refresh_token":"`+p.RefreshToken+`"}`,
		"Content-Type", "text/plain"), apierr.UnsupportedMediaTypeError)
	mustRefresh(t, s, p.RefreshToken) // none of the above spent it
}

// A logout ends its session: its refresh token and every access token of
// it are refused from then on, and no other session's.
func TestLogoutEndsItsSession(t *testing.T) {
	s := startAuth(t, nil)
	signup(t, s, creds)
	p, other := loginPair(t, s, creds), loginPair(t, s, creds)
	q := mustRefresh(t, s, p.RefreshToken)
	if r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/logout", "", testkit.Bearer(q.Token)...); r.Status != 204 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	testkit.Envelope(t, refresh(t, s, q.RefreshToken), apierr.RefreshTokenInvalidError)
	testkit.Envelope(t, me(t, s, q.Token), apierr.TokenRevokedError)
	testkit.Envelope(t, me(t, s, p.Token), apierr.TokenRevokedError) // the session's older access token
	mustRefresh(t, s, other.RefreshToken)
}

// Ending every session of a user ends their refresh tokens: a logout
// everywhere all of them, a password change all but the caller's, whose
// refresh goes on working.
func TestEndingEverySessionEndsRefreshTokens(t *testing.T) {
	s := startAuth(t, nil)
	signup(t, s, creds)
	phone, laptop := loginPair(t, s, creds), loginPair(t, s, creds)
	if r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/password", `{"current_password":"secret123","new_password":"another-secret"}`,
		testkit.Bearer(laptop.Token)...); r.Status != 204 {
		t.Fatalf("change: %d %s", r.Status, r.Body)
	}
	testkit.Envelope(t, refresh(t, s, phone.RefreshToken), apierr.RefreshTokenInvalidError)
	laptop = mustRefresh(t, s, laptop.RefreshToken)
	if r := me(t, s, laptop.Token); r.Status != 200 {
		t.Fatalf("the caller's session after its password change: %d %s", r.Status, r.Body)
	}

	const newCreds = `{"email":"ada@example.com","password":"another-secret"}`
	tablet := loginPair(t, s, newCreds)
	if r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/logout-all", "", testkit.Bearer(laptop.Token)...); r.Status != 204 {
		t.Fatalf("logout-all: %d %s", r.Status, r.Body)
	}
	for _, p := range []pair{laptop, tablet} {
		testkit.Envelope(t, refresh(t, s, p.RefreshToken), apierr.RefreshTokenInvalidError)
	}
	mustRefresh(t, s, loginPair(t, s, newCreds).RefreshToken)
}

// A session that ending every session did not find (a login racing with
// the logout everywhere: begun before its cutoff, recorded after it looked)
// cannot be refreshed either: a refresh checks the session's start against
// the user's cutoff.
func TestRefreshChecksTheUsersCutoff(t *testing.T) {
	prefix := testkit.Database(t) + "-cutoff:"
	s := startAuth(t, map[string]string{"REDIS_KEY_PREFIX": prefix})
	signup(t, s, creds)
	p, caller := loginPair(t, s, creds), loginPair(t, s, creds)
	rdb := redisOf(t)
	// Hide p's session from the logout everywhere, as a racing login's
	// would be.
	user := testkit.JSON[struct{ ID string }](t, me(t, s, caller.Token)).ID
	if err := rdb.ZRem(context.Background(), prefix+"sessions:"+user, sid(t, p.Token)).Err(); err != nil {
		t.Fatal(err)
	}
	if r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/logout-all", "", testkit.Bearer(caller.Token)...); r.Status != 204 {
		t.Fatalf("logout-all: %d %s", r.Status, r.Body)
	}
	testkit.Envelope(t, refresh(t, s, p.RefreshToken), apierr.RefreshTokenInvalidError)
}

// redisOf is a client of the Redis the services of the tests use.
func redisOf(t *testing.T) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(testkit.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	opt.DialTimeout = time.Second
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
