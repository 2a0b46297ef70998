package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
)

// The password reset walk through the gateway, with the mail read from the
// real mail server: forgot, the mail's link (under the gateway's URL, the
// stack's PUBLIC_BASE_URL), reset; then the old password is refused and the
// new one accepted, and every token issued before the reset is refused by
// both services (movies within a second), the refresh token too.
func TestPasswordResetWalk(t *testing.T) {
	e := startStack(t, nil)
	address := "ada." + strings.ToLower(testkit.Database(t)) + "@example.com"
	creds := func(password string) string { return fmt.Sprintf(`{"email":%q,"password":%q}`, address, password) }
	if r := testkit.CallAPI(t, "POST", e.GatewayURL+"/api/auth/signup", creds("secret123")); r.Status != 200 {
		t.Fatalf("signup: %d %s", r.Status, r.Body)
	}
	login := func(password string) testkit.Response {
		return testkit.CallAPI(t, "POST", e.GatewayURL+"/api/auth/login", creds(password))
	}
	pair := testkit.JSON[struct {
		Token        string `json:"token"`
		RefreshToken string `json:"refresh_token"`
	}](t, login("secret123"))
	old := pair.Token
	create := func(tok, name string) testkit.Response {
		return testkit.CallAPI(t, "POST", e.GatewayURL+"/api/movies", `{"name":"`+name+`","casts":["a"],"genres":["b"]}`, testkit.Bearer(tok)...)
	}
	if r := create(old, "Before"); r.Status != 200 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}

	if r := testkit.CallAPI(t, "POST", e.GatewayURL+"/api/auth/password/forgot", `{"email":"`+address+`"}`); r.Status != 202 {
		t.Fatalf("forgot: %d %s", r.Status, r.Body)
	}
	mails := testkit.NewMailbox(t, address).Wait(t, "Reset your moviebag password", 1, 20*time.Second)
	link := mails[0].Link(t, e.GatewayURL)
	if link.Path != "/reset-password" {
		t.Errorf("link %s", link)
	}
	token := link.Query().Get("token")
	if r := testkit.CallAPI(t, "POST", e.GatewayURL+"/api/auth/password/reset", `{"token":"`+token+`","password":"new-secret"}`); r.Status != 204 {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}

	testkit.Envelope(t, login("secret123"), apierr.UnauthorizedError)
	fresh := testkit.JSON[struct{ Token string }](t, login("new-secret")).Token
	testkit.Envelope(t, testkit.CallAPI(t, "GET", e.GatewayURL+"/api/auth/me", "", testkit.Bearer(old)...), apierr.TokenRevokedError)
	testkit.Envelope(t, testkit.CallAPI(t, "POST", e.GatewayURL+"/api/auth/refresh", `{"refresh_token":"`+pair.RefreshToken+`"}`),
		apierr.RefreshTokenInvalidError)
	var refused testkit.Response
	testkit.Eventually(t, time.Second, func() error {
		if refused = create(old, "After"); refused.Status != 401 {
			return fmt.Errorf("movies still accepts a token issued before the reset: %d %s", refused.Status, refused.Body)
		}
		return nil
	})
	testkit.Envelope(t, refused, apierr.TokenRevokedError)
	if r := create(fresh, "Fresh"); r.Status != 200 {
		t.Fatalf("movies refuses a token of the new password: %d %s", r.Status, r.Body)
	}
	testkit.Envelope(t, testkit.CallAPI(t, "POST", e.GatewayURL+"/api/auth/password/reset", `{"token":"`+token+`","password":"third-secret"}`),
		apierr.ResetTokenInvalidError)
}
