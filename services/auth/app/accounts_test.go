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

	r := testkit.Do(t, "POST", s.URL+"/api/auth/logout-all", "", testkit.Bearer(laptop)...)
	if r.Status != 204 {
		t.Fatalf("logout-all: %d %s", r.Status, r.Body)
	}
	for _, tok := range []string{laptop, phone} { // the caller's session and another
		testkit.Envelope(t, testkit.Do(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(tok)...), apierr.TokenRevokedError)
		testkit.Envelope(t, testkit.Do(t, "POST", s.URL+"/api/auth/logout-all", "", testkit.Bearer(tok)...), apierr.TokenRevokedError)
	}
	if r := testkit.Do(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(bob)...); r.Status != 200 {
		t.Errorf("another user's token is refused: %d %s", r.Status, r.Body)
	}
	fresh := login(t, s, creds)
	if r := testkit.Do(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(fresh)...); r.Status != 200 {
		t.Errorf("a token from a login after the logout everywhere is refused: %d %s", r.Status, r.Body)
	}
	body := string(testkit.Do(t, "GET", s.AdminURL+"/metrics", "").Body)
	if want := `moviebag_sessions_ended_total{reason="logout_all",service="auth"} 1`; !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %s", want)
	}
}
