package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
	"github.com/moviebag/moviebag/libs/userevents"
)

func deleteMe(t *testing.T, s *testkit.Service, tok, body string, headers ...string) testkit.Response {
	t.Helper()
	return testkit.CallAPI(t, "DELETE", s.URL+"/api/auth/me", body, append(testkit.Bearer(tok), headers...)...)
}

// Deleting an account needs the password again; it ends every session of
// the user (access and refresh tokens), frees the email, and appends the
// durable user.deleted event for the other services. A refused deletion
// changes nothing.
func TestDeleteAccount(t *testing.T) {
	prefix := testkit.Database(t) + "-delete:"
	s := startAuth(t, map[string]string{"REDIS_KEY_PREFIX": prefix})
	id := signup(t, s, creds)
	other := signup(t, s, `{"email":"bob@example.com","password":"secret123"}`)
	phone, laptop := loginPair(t, s, creds), loginPair(t, s, creds)
	bob := loginPair(t, s, `{"email":"bob@example.com","password":"secret123"}`)

	testkit.Envelope(t, deleteMe(t, s, laptop.Token, `{"password":"wrong-one"}`), apierr.UnauthorizedError)
	for _, tt := range []struct {
		body, field string
		code        apierr.Code
	}{
		{`{}`, "password", apierr.SchemaValidationError},
		{`{"password":""}`, "password", apierr.SchemaValidationError},
		{`{"password":"secret123","email":"bob@example.com"}`, "email", apierr.SchemaValidationError},
		{`{"password":"` + strings.Repeat("a", 73) + `"}`, "password", apierr.SchemaValidationError},
		{`{"password":null}`, "password", apierr.SchemaValidationError},
		{`{"password":`, "", apierr.InvalidJSONError},
	} {
		env := testkit.Envelope(t, deleteMe(t, s, laptop.Token, tt.body), tt.code)
		if tt.field != "" && (len(env.Details) != 1 || env.Details[0].Field != tt.field) {
			t.Errorf("%s: details %+v, want %s", tt.body, env.Details, tt.field)
		}
	}
	testkit.Envelope(t, deleteMe(t, s, laptop.Token, `{"password":"secret123"}`, "Content-Type", "text/plain"), apierr.UnsupportedMediaTypeError)
	if r := me(t, s, phone.Token); r.Status != 200 {
		t.Fatalf("a refused deletion ended a session: %d %s", r.Status, r.Body)
	}

	if r := deleteMe(t, s, laptop.Token, `{"password":"secret123"}`); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	for _, p := range []pair{phone, laptop} {
		testkit.Envelope(t, me(t, s, p.Token), apierr.TokenRevokedError)
		testkit.Envelope(t, refresh(t, s, p.RefreshToken), apierr.RefreshTokenInvalidError)
	}
	testkit.Envelope(t, deleteMe(t, s, laptop.Token, `{"password":"secret123"}`), apierr.TokenRevokedError)
	testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/login", creds), apierr.UnauthorizedError)
	if r := me(t, s, bob.Token); r.Status != 200 {
		t.Errorf("another user's session ended: %d %s", r.Status, r.Body)
	}
	if again := signup(t, s, creds); again == id || again == other {
		t.Errorf("the email's new account has id %s", again)
	}

	entries, err := redisOf(t).XRange(context.Background(), userevents.Key(prefix), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Values["type"] != userevents.Deleted || entries[0].Values["user"] != id || len(entries[0].Values) != 2 {
		t.Errorf("events %+v, want one user.deleted of %s", entries, id)
	}
	m := testkit.Scrape(t, s.AdminURL+"/metrics")
	for series, want := range map[string]float64{
		testkit.Series("moviebag_accounts_deleted_total", "service", "auth"):                            1,
		testkit.Series("moviebag_sessions_ended_total", "reason", "account_deleted", "service", "auth"): 1,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}
}

// Wrong passwords at deletion count against the account's login limit:
// past it, even the right one waits (429 with Retry-After).
func TestDeleteAccountGuessesLimited(t *testing.T) {
	s := startAuth(t, map[string]string{"LOGIN_LIMIT_PER_EMAIL": "2"})
	signup(t, s, creds)
	tok := login(t, s, creds)
	for range 2 {
		testkit.Envelope(t, deleteMe(t, s, tok, `{"password":"wrong-one"}`), apierr.UnauthorizedError)
	}
	r := deleteMe(t, s, tok, `{"password":"secret123"}`)
	testkit.Envelope(t, r, apierr.TooManyRequestsError)
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if r := me(t, s, tok); r.Status != 200 {
		t.Errorf("the account is gone after a refused deletion: %d %s", r.Status, r.Body)
	}
}
