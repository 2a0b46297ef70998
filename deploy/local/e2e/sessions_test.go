package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
)

// tokens is the answer of a login or a refresh.
type tokens struct {
	Token        string `json:"token"`
	RefreshToken string `json:"refresh_token"`
}

func (e env) loginTokens(t *testing.T, email string) tokens {
	t.Helper()
	r := testkit.CallAPI(t, "POST", e.GatewayURL+"/api/auth/login", `{"email":"`+email+`","password":"secret123"}`)
	if r.Status != 200 {
		t.Fatalf("login %s: %d %s", email, r.Status, r.Body)
	}
	return testkit.JSON[tokens](t, r)
}

func (e env) refresh(t *testing.T, refreshToken string) testkit.Response {
	t.Helper()
	return testkit.CallAPI(t, "POST", e.GatewayURL+"/api/auth/refresh", `{"refresh_token":"`+refreshToken+`"}`)
}

func (e env) createMovie(t *testing.T, tok, name string) testkit.Response {
	t.Helper()
	return testkit.CallAPI(t, "POST", e.GatewayURL+"/api/movies", `{"name":"`+name+`","casts":["a"],"genres":["b"]}`, testkit.Bearer(tok)...)
}

// refusedByMovies waits up to a second for the movies service to refuse
// tok as revoked.
func (e env) refusedByMovies(t *testing.T, tok, why string) {
	t.Helper()
	var refused testkit.Response
	testkit.Eventually(t, time.Second, func() error {
		refused = e.createMovie(t, tok, "Refused")
		if refused.Status != 401 {
			return fmt.Errorf("movies still accepts a token %s: %d %s", why, refused.Status, refused.Body)
		}
		return nil
	})
	testkit.Envelope(t, refused, apierr.TokenRevokedError)
}

// Through the gateway: a refresh gives a pair that works at movies; the
// spent refresh token presented again ends the session, and within a second
// the movies service refuses every access token of it, the one the refresh
// gave included. Another session of the user goes on.
func TestRefreshReuseRevokesForMovies(t *testing.T) {
	e := startStack(t, nil)
	e.signup(t, "ada@example.com")
	first, other := e.loginTokens(t, "ada@example.com"), e.loginTokens(t, "ada@example.com")
	r := e.refresh(t, first.RefreshToken)
	if r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	second := testkit.JSON[tokens](t, r)
	if r := e.createMovie(t, second.Token, "Refreshed"); r.Status != 200 {
		t.Fatalf("create with the refreshed token: %d %s", r.Status, r.Body)
	}
	testkit.Envelope(t, e.refresh(t, first.RefreshToken), apierr.RefreshTokenInvalidError)
	for _, tok := range []string{second.Token, first.Token} {
		e.refusedByMovies(t, tok, "of a session ended by the reuse of its refresh token")
	}
	testkit.Envelope(t, e.refresh(t, second.RefreshToken), apierr.RefreshTokenInvalidError)
	if r := e.createMovie(t, other.Token, "Other session"); r.Status != 200 {
		t.Errorf("another session of the user is refused: %d %s", r.Status, r.Body)
	}
}

// Through the gateway: deleting an account refuses its tokens at movies
// within a second, deletes its movies shortly after (and no one else's),
// and frees the email.
func TestDeleteAccountDeletesMovies(t *testing.T) {
	e := startStack(t, nil)
	e.signup(t, "ada@example.com")
	e.signup(t, "bob@example.com")
	ada, bob := e.loginTokens(t, "ada@example.com"), e.loginTokens(t, "bob@example.com")
	var adas []string
	for _, name := range []string{"Heat", "Ronin"} {
		r := e.createMovie(t, ada.Token, name)
		if r.Status != 200 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		adas = append(adas, testkit.JSON[struct{ ID string }](t, r).ID)
	}
	r := e.createMovie(t, bob.Token, "Alien")
	if r.Status != 200 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	bobs := testkit.JSON[struct{ ID string }](t, r).ID

	if r := testkit.CallAPI(t, "DELETE", e.GatewayURL+"/api/auth/me", `{"password":"secret123"}`, testkit.Bearer(ada.Token)...); r.Status != 204 {
		t.Fatalf("delete the account: %d %s", r.Status, r.Body)
	}
	e.refusedByMovies(t, ada.Token, "of a deleted account")
	testkit.Envelope(t, e.refresh(t, ada.RefreshToken), apierr.RefreshTokenInvalidError)
	testkit.Eventually(t, 10*time.Second, func() error {
		for _, id := range adas {
			if r := testkit.CallAPI(t, "GET", e.GatewayURL+"/api/movies/"+id, ""); r.Status != 400 {
				return fmt.Errorf("a movie of the deleted account is still there: %d %s", r.Status, r.Body)
			}
		}
		return nil
	})
	if r := testkit.CallAPI(t, "GET", e.GatewayURL+"/api/movies/"+bobs, ""); r.Status != 200 {
		t.Errorf("another user's movie: %d %s", r.Status, r.Body)
	}
	e.signup(t, "ada@example.com")
}
