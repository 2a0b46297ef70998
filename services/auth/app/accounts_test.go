package app_test

import (
	"strings"
	"testing"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
)

// A logout everywhere ends every session of the user, the calling one
// included, and no other user's; a login after it gives a token that works.
func TestLogoutAllEndsEverySessionOfTheUser(t *testing.T) {
	s := startAuth(t, nil)
	signup(t, s, creds)
	signup(t, s, `{"email":"bob@example.com","password":"secret123"}`)
	phone, laptop := login(t, s, creds), login(t, s, creds)
	bob := login(t, s, `{"email":"bob@example.com","password":"secret123"}`)

	r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/logout-all", "", testkit.Bearer(laptop)...)
	if r.Status != 204 {
		t.Fatalf("logout-all: %d %s", r.Status, r.Body)
	}
	for _, tok := range []string{laptop, phone} { // the caller's session and another
		testkit.Envelope(t, testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(tok)...), apierr.TokenRevokedError)
		testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/logout-all", "", testkit.Bearer(tok)...), apierr.TokenRevokedError)
	}
	if r := testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(bob)...); r.Status != 200 {
		t.Errorf("another user's token is refused: %d %s", r.Status, r.Body)
	}
	fresh := login(t, s, creds)
	if r := testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(fresh)...); r.Status != 200 {
		t.Errorf("a token from a login after the logout everywhere is refused: %d %s", r.Status, r.Body)
	}
	body := string(testkit.CallAPI(t, "GET", s.AdminURL+"/metrics", "").Body)
	if want := `moviebag_sessions_ended_total{reason="logout_all",service="auth"} 1`; !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// A password change needs the current password, takes a new one with
// sign-up's rules, ends every other session of the user and keeps the
// caller's; the old password no longer logs in, the new one does.
func TestChangePasswordEndsEveryOtherSession(t *testing.T) {
	s := startAuth(t, nil)
	signup(t, s, creds)
	phone, laptop := login(t, s, creds), login(t, s, creds)
	change := func(tok, body string, headers ...string) testkit.Response {
		t.Helper()
		return testkit.CallAPI(t, "POST", s.URL+"/api/auth/password", body, append(testkit.Bearer(tok), headers...)...)
	}

	testkit.Envelope(t, change(laptop, `{"current_password":"wrong-one","new_password":"another-secret"}`), apierr.UnauthorizedError)
	for _, tt := range []struct {
		body, field string
		code        apierr.Code
	}{
		{`{"current_password":"secret123","new_password":"short"}`, "new_password", apierr.SchemaValidationError},
		{`{"current_password":"secret123"}`, "new_password", apierr.SchemaValidationError},
		{`{"current_password":"secret123","new_password":"another-secret","role":"admin"}`, "role", apierr.SchemaValidationError},
		{`{"current_password":`, "", apierr.InvalidJSONError},
	} {
		env := testkit.Envelope(t, change(laptop, tt.body), tt.code)
		if tt.field != "" && (len(env.Details) != 1 || env.Details[0].Field != tt.field) {
			t.Errorf("%s: details %+v, want %s", tt.body, env.Details, tt.field)
		}
	}
	testkit.Envelope(t, change(laptop, `{}`, "Content-Type", "text/plain"), apierr.UnsupportedMediaTypeError)
	if r := testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(phone)...); r.Status != 200 {
		t.Fatalf("a refused change ended a session: %d %s", r.Status, r.Body)
	}

	if r := change(laptop, `{"current_password":"secret123","new_password":"another-secret"}`); r.Status != 204 {
		t.Fatalf("change: %d %s", r.Status, r.Body)
	}
	testkit.Envelope(t, testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(phone)...), apierr.TokenRevokedError)
	if r := testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(laptop)...); r.Status != 200 {
		t.Errorf("the caller's own session was ended: %d %s", r.Status, r.Body)
	}
	testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/login", creds), apierr.UnauthorizedError)
	login(t, s, `{"email":"ada@example.com","password":"another-secret"}`)
	body := string(testkit.CallAPI(t, "GET", s.AdminURL+"/metrics", "").Body)
	if want := `moviebag_sessions_ended_total{reason="password_change",service="auth"} 1`; !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// Wrong current passwords count against the account's login limit: past
// it, even the right one waits (429 with Retry-After).
func TestChangePasswordGuessesLimited(t *testing.T) {
	s := startAuth(t, map[string]string{"LOGIN_LIMIT_PER_EMAIL": "2"})
	signup(t, s, creds)
	tok := login(t, s, creds)
	for range 2 {
		testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/password", `{"current_password":"wrong-one","new_password":"another-secret"}`,
			testkit.Bearer(tok)...), apierr.UnauthorizedError)
	}
	r := testkit.CallAPI(t, "POST", s.URL+"/api/auth/password", `{"current_password":"secret123","new_password":"another-secret"}`, testkit.Bearer(tok)...)
	testkit.Envelope(t, r, apierr.TooManyRequestsError)
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}
