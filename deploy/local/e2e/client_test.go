package e2e_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oapi-codegen/runtime/types"

	"github.com/moviebag/moviebag/api/client"
	"github.com/moviebag/moviebag/libs/testkit"
)

// checkedDoer sends the generated client's requests and checks every answer
// against the spec, as testkit.CallAPI does for the other tests.
type checkedDoer struct{ t *testing.T }

func (d checkedDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := testkit.CheckAnswer(req, testkit.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}); err != nil {
		d.t.Errorf("the answer breaks the API contract: %v", err)
	}
	return resp, nil
}

func bearer(token string) client.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
}

var nextCursor = regexp.MustCompile(`^<[^>]*[?&]cursor=([^&>]+)[^>]*>; rel="next"$`)

// The end-to-end walk of a client generated from api/openapi.yaml with
// oapi-codegen, through the gateway: sign up, log in, create, read, list
// page by page, update, delete, log out, and the revoked token refused;
// two sessions, a password change and a logout everywhere; a refresh, its
// refresh token reused; the account deleted; a password reset through the
// mail.
func TestGeneratedClientWalk(t *testing.T) {
	e := startStack(t, nil)
	ctx := context.Background()
	c, err := client.NewClientWithResponses(e.GatewayURL, client.WithHTTPClient(checkedDoer{t}))
	if err != nil {
		t.Fatal(err)
	}
	creds := client.Credentials{Email: types.Email("ada@example.com"), Password: "secret123"}

	signup, err := c.SignupWithResponse(ctx, creds)
	if err != nil || signup.JSON200 == nil {
		t.Fatalf("signup: %v %s", err, signup.Body)
	}
	again, err := c.SignupWithResponse(ctx, client.Credentials{Email: "ADA@example.com", Password: "secret123"})
	if err != nil || again.JSON400 == nil {
		t.Fatalf("second signup: %v %s", err, again.Body)
	}
	if taken, err := again.JSON400.AsEmailAlreadyExistsError(); err != nil || taken.Code != client.EmailAlreadyExistsErrorCodeEmailAlreadyExistsError {
		t.Errorf("second signup: %v %s", err, again.Body)
	}

	login, err := c.LoginWithResponse(ctx, creds)
	if err != nil || login.JSON200 == nil || login.JSON200.TokenType != client.Bearer {
		t.Fatalf("login: %v %s", err, login.Body)
	}
	auth := bearer(login.JSON200.Token)
	me, err := c.GetMeWithResponse(ctx, auth)
	if err != nil || me.JSON200 == nil || me.JSON200.Id != signup.JSON200.Id || me.JSON200.Email != "ada@example.com" {
		t.Fatalf("me: %v %s", err, me.Body)
	}

	var ids []string
	for _, name := range []string{"Heat", "Ronin", "Alien"} {
		r, err := c.CreateMovieWithResponse(ctx, client.MovieInput{Name: name, Casts: client.Casts{"Robert De Niro"}, Genres: client.Genres{"Crime"}}, auth)
		if err != nil || r.JSON200 == nil {
			t.Fatalf("create %s: %v %s", name, err, r.Body)
		}
		ids = append(ids, r.JSON200.Id)
	}
	dup, err := c.CreateMovieWithResponse(ctx, client.MovieInput{Name: " HEAT ", Casts: client.Casts{"a"}, Genres: client.Genres{"b"}}, auth)
	if err != nil || dup.JSON400 == nil {
		t.Fatalf("duplicate name: %v %s", err, dup.Body)
	}

	got, err := c.GetMovieWithResponse(ctx, ids[0])
	if err != nil || got.JSON200 == nil || got.JSON200.Name != "Heat" || got.JSON200.AddedBy != signup.JSON200.Id {
		t.Fatalf("get: %v %s", err, got.Body)
	}

	// Two pages of two, following the Link header.
	limit := 2
	var listed []string
	params := &client.ListMoviesParams{Limit: &limit}
	for page := 0; ; page++ {
		r, err := c.ListMoviesWithResponse(ctx, params)
		if err != nil || r.JSON200 == nil {
			t.Fatalf("list page %d: %v %s", page, err, r.Body)
		}
		for _, m := range *r.JSON200 {
			listed = append(listed, m.Id)
		}
		link := r.HTTPResponse.Header.Get("Link")
		if link == "" {
			break
		}
		m := nextCursor.FindStringSubmatch(link)
		if m == nil || page > 3 {
			t.Fatalf("page %d: Link %q", page, link)
		}
		cursor, err := url.QueryUnescape(m[1])
		if err != nil {
			t.Fatal(err)
		}
		params = &client.ListMoviesParams{Limit: &limit, Cursor: &cursor}
	}
	if len(listed) != 3 {
		t.Errorf("listed %v, want the 3 movies once each", listed)
	}

	genres := client.Genres{"Crime", "Thriller"}
	upd, err := c.UpdateMovieWithResponse(ctx, ids[0], client.MoviePatch{Genres: &genres}, auth)
	if err != nil || upd.JSON200 == nil || len(upd.JSON200.Genres) != 2 || upd.JSON200.Name != "Heat" {
		t.Fatalf("update: %v %s", err, upd.Body)
	}
	del, err := c.DeleteMovieWithResponse(ctx, ids[1], auth)
	if err != nil || del.StatusCode() != http.StatusNoContent {
		t.Fatalf("delete: %v %d %s", err, del.StatusCode(), del.Body)
	}
	gone, err := c.GetMovieWithResponse(ctx, ids[1])
	if err != nil || gone.JSON400 == nil || gone.JSON400.Code != client.MovieNotExistsErrorCodeMovieNotExistsError {
		t.Fatalf("deleted movie: %v %s", err, gone.Body)
	}

	out, err := c.LogoutWithResponse(ctx, auth)
	if err != nil || out.StatusCode() != http.StatusNoContent {
		t.Fatalf("logout: %v %d %s", err, out.StatusCode(), out.Body)
	}
	revoked, err := c.GetMeWithResponse(ctx, auth)
	if err != nil || revoked.JSON401 == nil {
		t.Fatalf("me after logout: %v %s", err, revoked.Body)
	}
	if r, err := revoked.JSON401.AsTokenRevokedError(); err != nil || r.Code != client.TokenRevokedErrorCodeTokenRevokedError {
		t.Errorf("me after logout: %v %s", err, revoked.Body)
	}
	if r, err := c.CreateMovieWithResponse(ctx, client.MovieInput{Name: "After", Casts: client.Casts{"a"}, Genres: client.Genres{"b"}}, auth); err != nil || r.JSON401 == nil {
		t.Errorf("create after logout: %v %s", err, r.Body)
	}

	// Two sessions: a password change from one ends the other; a logout
	// everywhere ends the one left.
	session := func() client.RequestEditorFn {
		t.Helper()
		r, err := c.LoginWithResponse(ctx, creds)
		if err != nil || r.JSON200 == nil {
			t.Fatalf("login: %v %s", err, r.Body)
		}
		return bearer(r.JSON200.Token)
	}
	laptop, phone := session(), session()
	changed, err := c.ChangePasswordWithResponse(ctx, client.PasswordChange{CurrentPassword: "secret123", NewPassword: "another-secret"}, laptop)
	if err != nil || changed.StatusCode() != http.StatusNoContent {
		t.Fatalf("change password: %v %d %s", err, changed.StatusCode(), changed.Body)
	}
	if r, err := c.GetMeWithResponse(ctx, phone); err != nil || r.JSON401 == nil {
		t.Errorf("me from the other session after a password change: %v %s", err, r.Body)
	}
	if r, err := c.GetMeWithResponse(ctx, laptop); err != nil || r.JSON200 == nil {
		t.Fatalf("me from the session that changed the password: %v %s", err, r.Body)
	}
	all, err := c.LogoutAllWithResponse(ctx, laptop)
	if err != nil || all.StatusCode() != http.StatusNoContent {
		t.Fatalf("logout everywhere: %v %d %s", err, all.StatusCode(), all.Body)
	}
	if r, err := c.GetMeWithResponse(ctx, laptop); err != nil || r.JSON401 == nil {
		t.Errorf("me after logout everywhere: %v %s", err, r.Body)
	}

	// A session renewed with its refresh token; the spent one presented
	// again ends it. Then the account is deleted.
	creds.Password = "another-secret"
	fresh, err := c.LoginWithResponse(ctx, creds)
	if err != nil || fresh.JSON200 == nil || fresh.JSON200.RefreshToken == "" {
		t.Fatalf("login: %v %s", err, fresh.Body)
	}
	renewed, err := c.RefreshTokenWithResponse(ctx, client.RefreshRequest{RefreshToken: fresh.JSON200.RefreshToken})
	if err != nil || renewed.JSON200 == nil || renewed.JSON200.RefreshToken == fresh.JSON200.RefreshToken {
		t.Fatalf("refresh: %v %s", err, renewed.Body)
	}
	if r, err := c.GetMeWithResponse(ctx, bearer(renewed.JSON200.Token)); err != nil || r.JSON200 == nil {
		t.Fatalf("me with the refreshed token: %v %s", err, r.Body)
	}
	reused, err := c.RefreshTokenWithResponse(ctx, client.RefreshRequest{RefreshToken: fresh.JSON200.RefreshToken})
	if err != nil || reused.JSON401 == nil || reused.JSON401.Code != client.RefreshTokenInvalidErrorCodeRefreshTokenInvalidError {
		t.Fatalf("the spent refresh token again: %v %s", err, reused.Body)
	}
	if r, err := c.GetMeWithResponse(ctx, bearer(renewed.JSON200.Token)); err != nil || r.JSON401 == nil {
		t.Errorf("me with a token of the session its refresh token's reuse ended: %v %s", err, r.Body)
	}
	last := session()
	deleted, err := c.DeleteMeWithResponse(ctx, client.AccountDeletion{Password: "another-secret"}, last)
	if err != nil || deleted.StatusCode() != http.StatusNoContent {
		t.Fatalf("delete the account: %v %d %s", err, deleted.StatusCode(), deleted.Body)
	}
	if r, err := c.LoginWithResponse(ctx, creds); err != nil || r.JSON401 == nil {
		t.Errorf("login after the account's deletion: %v %s", err, r.Body)
	}

	// A forgotten password: the mail read from the mail server, its token
	// sets a new one.
	address := "walk." + strings.ToLower(testkit.Database(t)) + "@example.com"
	creds = client.Credentials{Email: types.Email(address), Password: "secret123"}
	if r, err := c.SignupWithResponse(ctx, creds); err != nil || r.JSON200 == nil {
		t.Fatalf("signup: %v %s", err, r.Body)
	}
	forgot, err := c.ForgotPasswordWithResponse(ctx, client.ForgotPassword{Email: types.Email(address)})
	if err != nil || forgot.JSON202 == nil {
		t.Fatalf("forgot: %v %s", err, forgot.Body)
	}
	mails := testkit.NewMailbox(t, address).Wait(t, "Reset your moviebag password", 1, 20*time.Second)
	token := mails[0].Link(t, e.GatewayURL).Query().Get("token")
	wrong, err := c.ResetPasswordWithResponse(ctx, client.PasswordReset{Token: strings.Repeat("A", 43), Password: "another-secret"})
	if err != nil || wrong.JSON400 == nil {
		t.Fatalf("reset with an unknown token: %v %s", err, wrong.Body)
	}
	if invalid, err := wrong.JSON400.AsResetTokenInvalidError(); err != nil || invalid.Code != client.ResetTokenInvalidErrorCodeResetTokenInvalidError {
		t.Errorf("reset with an unknown token: %v %s", err, wrong.Body)
	}
	reset, err := c.ResetPasswordWithResponse(ctx, client.PasswordReset{Token: token, Password: "another-secret"})
	if err != nil || reset.StatusCode() != http.StatusNoContent {
		t.Fatalf("reset: %v %d %s", err, reset.StatusCode(), reset.Body)
	}
	creds.Password = "another-secret"
	if r, err := c.LoginWithResponse(ctx, creds); err != nil || r.JSON200 == nil {
		t.Errorf("login with the new password: %v %s", err, r.Body)
	}
}
