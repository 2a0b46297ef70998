package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
)

// A logout everywhere is seen by the movies service within one second: every
// token of the user issued before it is refused there too, and a token from
// a login after it works at both services.
func TestLogoutAllRevokesForMovies(t *testing.T) {
	e := startStack(t, nil)
	e.signup(t, "ada@example.com")
	phone, laptop := e.login(t, "ada@example.com"), e.login(t, "ada@example.com")
	create := func(tok, name string) testkit.Response {
		return testkit.CallAPI(t, "POST", e.GatewayURL+"/api/movies", `{"name":"`+name+`","casts":["a"],"genres":["b"]}`, testkit.Bearer(tok)...)
	}
	if r := create(phone, "Before"); r.Status != 200 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	if r := testkit.CallAPI(t, "POST", e.GatewayURL+"/api/auth/logout-all", "", testkit.Bearer(laptop)...); r.Status != 204 {
		t.Fatalf("logout-all: %d %s", r.Status, r.Body)
	}
	for i, tok := range []string{phone, laptop} {
		var refused testkit.Response
		testkit.Eventually(t, time.Second, func() error {
			refused = create(tok, fmt.Sprintf("After %d", i))
			if refused.Status != 401 {
				return fmt.Errorf("movies still accepts a token issued before the logout everywhere: %d %s", refused.Status, refused.Body)
			}
			return nil
		})
		testkit.Envelope(t, refused, apierr.TokenRevokedError)
	}
	fresh := e.login(t, "ada@example.com")
	if r := create(fresh, "Fresh"); r.Status != 200 {
		t.Fatalf("a token issued after the logout everywhere is refused by movies: %d %s", r.Status, r.Body)
	}
	list := testkit.JSON[[]map[string]any](t, testkit.CallAPI(t, "GET", e.GatewayURL+"/api/movies", ""))
	if len(list) != 2 {
		t.Errorf("%d movies, want 2 (before and fresh)", len(list))
	}
}

// A password change ends every other session at the movies service too,
// within one second, and keeps the caller's.
func TestChangePasswordRevokesOtherSessionsForMovies(t *testing.T) {
	e := startStack(t, nil)
	e.signup(t, "ada@example.com")
	phone, laptop := e.login(t, "ada@example.com"), e.login(t, "ada@example.com")
	r := testkit.CallAPI(t, "POST", e.GatewayURL+"/api/auth/password", `{"current_password":"secret123","new_password":"another-secret"}`,
		testkit.Bearer(laptop)...)
	if r.Status != 204 {
		t.Fatalf("change password: %d %s", r.Status, r.Body)
	}
	var refused testkit.Response
	testkit.Eventually(t, time.Second, func() error {
		refused = testkit.CallAPI(t, "POST", e.GatewayURL+"/api/movies", `{"name":"Phone","casts":["a"],"genres":["b"]}`, testkit.Bearer(phone)...)
		if refused.Status != 401 {
			return fmt.Errorf("movies still accepts another session's token: %d %s", refused.Status, refused.Body)
		}
		return nil
	})
	testkit.Envelope(t, refused, apierr.TokenRevokedError)
	if r := testkit.CallAPI(t, "POST", e.GatewayURL+"/api/movies", `{"name":"Laptop","casts":["a"],"genres":["b"]}`, testkit.Bearer(laptop)...); r.Status != 200 {
		t.Fatalf("movies refuses the session that changed the password: %d %s", r.Status, r.Body)
	}
}
