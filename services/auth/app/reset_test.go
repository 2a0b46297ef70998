package app_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/testkit"
	"github.com/moviebag/moviebag/services/auth/app"
)

// publicBase is the PUBLIC_BASE_URL of the reset tests: no request of a
// test goes there, so a link built from it came from the configuration.
const publicBase = "https://movies.example.test/app"

// startResetAuth starts auth with the test mail server.
func startResetAuth(t *testing.T, extra map[string]string) *testkit.Service {
	t.Helper()
	env := map[string]string{
		"SMTP_URL": testkit.SMTPURL(t), "SMTP_STARTTLS": "none", "SMTP_TIMEOUT": "2s",
		"MAIL_RETRY_MIN": "3s", "PUBLIC_BASE_URL": publicBase,
	}
	for k, v := range extra {
		env[k] = v
	}
	return startAuth(t, env)
}

// mailAddress is an address of the test's own on the shared mail server.
func mailAddress(t *testing.T, name string) string {
	return name + "." + strings.ToLower(testkit.Database(t)) + "@example.com"
}

func forgot(t *testing.T, s *testkit.Service, address string, headers ...string) testkit.Response {
	t.Helper()
	return testkit.CallAPI(t, "POST", s.URL+"/api/auth/password/forgot", `{"email":"`+address+`"}`, headers...)
}

func reset(t *testing.T, s *testkit.Service, token, password string) testkit.Response {
	t.Helper()
	return testkit.CallAPI(t, "POST", s.URL+"/api/auth/password/reset", fmt.Sprintf(`{"token":%q,"password":%q}`, token, password))
}

// resetToken waits for the n-th reset mail to box and returns the token of
// its link, checking the link: under PUBLIC_BASE_URL and
// PASSWORD_RESET_PATH, the token its one query parameter.
func resetToken(t *testing.T, box testkit.Mailbox, n int) string {
	t.Helper()
	mails := box.Wait(t, "Reset your moviebag password", n, 20*time.Second)
	link := mails[0].Link(t, publicBase)
	if link.Path != "/app/reset-password" || len(link.Query()) != 1 || len(link.Query().Get("token")) != 43 {
		t.Fatalf("reset link %s", link)
	}
	return link.Query().Get("token")
}

// otherToken is a token of the same form that differs from token in its
// first character, which any base64url character may take (the last one
// carries only four bits: changing it to a fixed letter left it unchanged
// one time in sixteen).
func otherToken(token string) string {
	if token[0] == 'A' {
		return "B" + token[1:]
	}
	return "A" + token[1:]
}

// The whole reset through the real mail server: forgot answers 202, the
// mail's link (built from PUBLIC_BASE_URL) carries a token; a reset with it
// sets the new password (sign-up's rules), ends every session of the user,
// answers 204 and sends a "password changed" mail; the old password no
// longer logs in, the new one does; the token works once.
func TestPasswordResetThroughMail(t *testing.T) {
	s := startResetAuth(t, nil)
	address := mailAddress(t, "ada")
	box := testkit.NewMailbox(t, address)
	old := fmt.Sprintf(`{"email":%q,"password":"secret123"}`, address)
	signup(t, s, old)
	phone, laptop := login(t, s, old), login(t, s, old)

	r := forgot(t, s, strings.ToUpper(address), "Host", "evil.example") // any spelling of the email
	if r.Status != 202 {
		t.Fatalf("forgot: %d %s", r.Status, r.Body)
	}
	token := resetToken(t, box, 1)
	if strings.Contains(string(r.Body), token) {
		t.Fatal("the answer to forgot carries the token")
	}

	testkit.Envelope(t, reset(t, s, token, "short"), apierr.SchemaValidationError)
	testkit.Envelope(t, reset(t, s, otherToken(token), "new-secret"), apierr.ResetTokenInvalidError)
	if r := testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(phone)...); r.Status != 200 {
		t.Fatalf("a refused reset ended a session: %d %s", r.Status, r.Body)
	}

	if r := reset(t, s, token, "new-secret"); r.Status != 204 {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}
	for _, tok := range []string{phone, laptop} {
		testkit.Envelope(t, testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(tok)...), apierr.TokenRevokedError)
	}
	testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/login", old), apierr.UnauthorizedError)
	fresh := login(t, s, fmt.Sprintf(`{"email":%q,"password":"new-secret"}`, address))
	if r := testkit.CallAPI(t, "GET", s.URL+"/api/auth/me", "", testkit.Bearer(fresh)...); r.Status != 200 {
		t.Fatalf("a token of the new password is refused: %d %s", r.Status, r.Body)
	}
	testkit.Envelope(t, reset(t, s, token, "third-secret"), apierr.ResetTokenInvalidError) // used
	changed := box.Wait(t, "Your moviebag password was changed", 1, 20*time.Second)
	if strings.Contains(changed[0].Text, "http") {
		t.Errorf("the password-changed mail carries a link:\n%s", changed[0].Text)
	}

	samples := testkit.Scrape(t, s.AdminURL+"/metrics")
	for series, want := range map[string]float64{
		testkit.Series(metrics.PasswordResetsName, "service", "auth", "stage", "asked"):                            1,
		testkit.Series(metrics.PasswordResetsName, "service", "auth", "stage", "completed"):                        1,
		testkit.Series(metrics.PasswordResetsName, "service", "auth", "stage", "invalid_token"):                    2,
		testkit.Series(metrics.MailSentName, "service", "auth", "kind", "password_reset"):                          1,
		testkit.Series(metrics.MailSentName, "service", "auth", "kind", "password_changed"):                        1,
		testkit.Series(metrics.MailFailedName, "service", "auth", "kind", "password_reset", "reason", "temporary"): 0,
		testkit.Series(metrics.SessionsEndedName, "service", "auth", "reason", "password_reset"):                   1,
	} {
		if samples[series] != want {
			t.Errorf("%s = %v, want %v", series, samples[series], want)
		}
	}
	if _, ok := samples[testkit.Series(metrics.MailPendingName, "service", "auth")]; !ok {
		t.Errorf("no %s", metrics.MailPendingName)
	}
	if logs := s.Logs.String(); strings.Contains(logs, token) {
		t.Errorf("the token is in the logs:\n%s", logs)
	}
}

// Forgot answers a known and an unknown email alike (status, headers that
// matter, body), and only the known one gets a mail.
func TestForgotLooksAlike(t *testing.T) {
	s := startResetAuth(t, nil)
	known, unknown := mailAddress(t, "known"), mailAddress(t, "unknown")
	signup(t, s, fmt.Sprintf(`{"email":%q,"password":"secret123"}`, known))
	a, b := forgot(t, s, known), forgot(t, s, unknown)
	if a.Status != 202 || b.Status != 202 || string(a.Body) != string(b.Body) ||
		a.Header.Get("Content-Type") != b.Header.Get("Content-Type") || a.Header.Get("Content-Length") != b.Header.Get("Content-Length") {
		t.Fatalf("known: %d %v %s\nunknown: %d %v %s", a.Status, a.Header, a.Body, b.Status, b.Header, b.Body)
	}
	resetToken(t, testkit.NewMailbox(t, known), 1)
	if mails := testkit.NewMailbox(t, unknown).Mails(t, ""); len(mails) != 0 {
		t.Errorf("%d mails to an address with no account", len(mails))
	}
}

// A second forgot request sends a new link and the first stops working;
// a token stops working after PASSWORD_RESET_TTL.
func TestResetTokenReplacedAndExpires(t *testing.T) {
	s := startResetAuth(t, map[string]string{"PASSWORD_RESET_TTL": "2s"})
	address := mailAddress(t, "ada")
	box := testkit.NewMailbox(t, address)
	signup(t, s, fmt.Sprintf(`{"email":%q,"password":"secret123"}`, address))
	forgot(t, s, address)
	first := resetToken(t, box, 1)
	forgot(t, s, address)
	second := resetToken(t, box, 2)
	if first == second {
		t.Fatal("two mails with one token")
	}
	testkit.Envelope(t, reset(t, s, first, "new-secret"), apierr.ResetTokenInvalidError)
	time.Sleep(2500 * time.Millisecond) // past the token's life
	testkit.Envelope(t, reset(t, s, second, "new-secret"), apierr.ResetTokenInvalidError)
	login(t, s, fmt.Sprintf(`{"email":%q,"password":"secret123"}`, address))
}

// Of concurrent resets with one token exactly one succeeds: the token is
// taken in the same atomic step that accepts it.
func TestResetTokenSingleUseUnderConcurrency(t *testing.T) {
	s := startResetAuth(t, nil)
	address := mailAddress(t, "ada")
	signup(t, s, fmt.Sprintf(`{"email":%q,"password":"secret123"}`, address))
	forgot(t, s, address)
	token := resetToken(t, testkit.NewMailbox(t, address), 1)
	const n = 8
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := testkit.TryAPI("POST", s.URL+"/api/auth/password/reset", fmt.Sprintf(`{"token":%q,"password":"pass-%d"}`, token, i))
			if err == nil {
				statuses[i] = r.Status
			}
		}()
	}
	wg.Wait()
	won := -1
	for i, st := range statuses {
		switch {
		case st == 204 && won < 0:
			won = i
		case st == 204:
			t.Fatalf("two resets with one token succeeded: %v", statuses)
		case st != 400:
			t.Fatalf("statuses %v", statuses)
		}
	}
	if won < 0 {
		t.Fatalf("no reset succeeded: %v", statuses)
	}
	login(t, s, fmt.Sprintf(`{"email":%q,"password":"pass-%d"}`, address, won))
}

// Forgot requests are limited per email and per client address (429 with
// Retry-After), before any mail is queued.
func TestForgotLimited(t *testing.T) {
	s := startResetAuth(t, map[string]string{"PASSWORD_RESET_LIMIT_PER_EMAIL": "2", "PASSWORD_RESET_LIMIT_PER_IP": "4"})
	address := mailAddress(t, "ada")
	for range 2 {
		if r := forgot(t, s, address); r.Status != 202 {
			t.Fatalf("forgot: %d %s", r.Status, r.Body)
		}
	}
	r := forgot(t, s, address)
	testkit.Envelope(t, r, apierr.TooManyRequestsError)
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if r := forgot(t, s, mailAddress(t, "bob")); r.Status != 202 { // the client's fourth
		t.Fatalf("another email: %d %s", r.Status, r.Body)
	}
	testkit.Envelope(t, forgot(t, s, mailAddress(t, "carol")), apierr.TooManyRequestsError) // the fifth
	if got := testkit.Scrape(t, s.AdminURL+"/metrics")[testkit.Series(metrics.PasswordResetsName, "service", "auth", "stage", "asked")]; got != 3 {
		t.Errorf("resets asked %v, want 3", got)
	}
}

// Resets are limited per client address too (each costs a bcrypt hash): a
// guesser of tokens gets 429 with Retry-After.
func TestResetLimitedPerClient(t *testing.T) {
	s := startResetAuth(t, map[string]string{"PASSWORD_RESET_LIMIT_PER_IP": "2"})
	guess := strings.Repeat("A", 43)
	for range 2 {
		testkit.Envelope(t, reset(t, s, guess, "new-secret"), apierr.ResetTokenInvalidError)
	}
	r := reset(t, s, guess, "new-secret")
	testkit.Envelope(t, r, apierr.TooManyRequestsError)
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// The new routes refuse hostile bodies as every route does: strict decoding
// (unknown and duplicate fields, trailing data, wrong types), sizes, content
// types, each with its envelope.
func TestResetRoutesRefuseHostileBodies(t *testing.T) {
	s := startResetAuth(t, nil)
	tok := strings.Repeat("A", 43)
	for _, tt := range []struct {
		path, body, field string
		code              apierr.Code
	}{
		{"forgot", `{"email":"ada@example.com","role":"admin"}`, "role", apierr.SchemaValidationError},
		{"forgot", `{}`, "email", apierr.SchemaValidationError},
		{"forgot", `{"email":"not-an-email"}`, "email", apierr.SchemaValidationError},
		{"forgot", `{"email":"ada@example.com","email":"bob@example.com"}`, "", apierr.InvalidJSONError},
		{"forgot", `{"email":"ada@example.com"} {}`, "", apierr.InvalidJSONError},
		{"forgot", `{"email":["ada@example.com"]}`, "email", apierr.SchemaValidationError},
		{"reset", `{"password":"new-secret"}`, "token", apierr.SchemaValidationError},
		{"reset", `{"token":"` + tok + `"}`, "password", apierr.SchemaValidationError},
		{"reset", `{"token":"` + tok + `","password":"` + strings.Repeat("é", 37) + `"}`, "password", apierr.SchemaValidationError},
		{"reset", `{"token":"` + tok + `","password":"new-secret","email":"x"}`, "email", apierr.SchemaValidationError},
		{"reset", `{"token":"` + tok + `","password":"new-secret"}`, "", apierr.ResetTokenInvalidError},
		{"reset", `{"token":"` + strings.Repeat("A", 5000) + `","password":"new-secret"}`, "", apierr.ResetTokenInvalidError},
		{"reset", `{"token":` + "\"\u200b" + tok[1:] + `","password":"new-secret"}`, "", apierr.ResetTokenInvalidError},
		{"reset", `[]`, "", apierr.InvalidJSONError},
	} {
		env := testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/password/"+tt.path, tt.body), tt.code)
		if tt.field != "" && (len(env.Details) != 1 || env.Details[0].Field != tt.field) {
			t.Errorf("%s %s: details %+v, want %s", tt.path, tt.body, env.Details, tt.field)
		}
	}
	for _, path := range []string{"forgot", "reset"} {
		testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/password/"+path, `{}`, "Content-Type", "text/plain"),
			apierr.UnsupportedMediaTypeError)
		testkit.Envelope(t, testkit.CallAPI(t, "POST", s.URL+"/api/auth/password/"+path, `{"email":"`+strings.Repeat("a", 70000)+`"}`),
			apierr.PayloadTooLargeError)
		testkit.Envelope(t, testkit.CallAPI(t, "GET", s.URL+"/api/auth/password/"+path, ""), apierr.MethodNotAllowedError)
	}
}

// The configuration of resets and mail is checked at start: a reset link
// needs PUBLIC_BASE_URL, the first retry must wait longer than a delivery
// may take, SMTP_URL takes no credentials.
func TestResetConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SMTP_URL": "smtp://127.0.0.1:1025"}, "PUBLIC_BASE_URL"},
		{map[string]string{"SMTP_URL": "smtp://127.0.0.1:1025", "PUBLIC_BASE_URL": "ftp://x"}, "PUBLIC_BASE_URL"},
		{map[string]string{"SMTP_URL": "smtp://user:hunter2@127.0.0.1:1025", "PUBLIC_BASE_URL": publicBase}, "SMTP_USERNAME"},
		{map[string]string{"SMTP_URL": "http://127.0.0.1:1025", "PUBLIC_BASE_URL": publicBase}, "scheme"},
		{map[string]string{"SMTP_STARTTLS": "maybe"}, "SMTP_STARTTLS"},
		{map[string]string{"MAIL_RETRY_MIN": "5s", "SMTP_TIMEOUT": "10s"}, "MAIL_RETRY_MIN"},
		{map[string]string{"PASSWORD_RESET_TTL": "0s"}, "PASSWORD_RESET_TTL"},
		{map[string]string{"MAIL_FROM": "not an address"}, "MAIL_FROM"},
	} {
		env := map[string]string{"MONGO_URI": "mongodb://127.0.0.1:1", "REDIS_URL": "redis://127.0.0.1:1"}
		for k, v := range tt.env {
			env[k] = v
		}
		err := app.Run(t.Context(), func(k string) string { return env[k] }, &testkit.SyncBuffer{}, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%v: %v, want an error naming %s (and no password)", tt.env, err, tt.want)
		}
	}
}
