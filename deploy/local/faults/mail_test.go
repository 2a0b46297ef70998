package faults_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/moviebag/moviebag/deploy/local/devstore"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/testkit"
)

// The mail server down: a forgot request is still answered 202 at once, the
// reset mail waits in the outbox (moviebag_mail_pending 1, failed deliveries
// counted as temporary) and arrives once the mail server is back; its link
// resets the password.
func TestMailServerDown(t *testing.T) {
	dir := t.TempDir()
	mp, err := devstore.StartMailpit(context.Background(), dir, "", "", quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { mp.Stop() }()
	const base = "https://movies.example.test"
	p := startPair(t, testkit.MongoURI(t), testkit.RedisURL(t), map[string]string{
		"SMTP_URL": mp.SMTPURL, "SMTP_STARTTLS": "none", "SMTP_TIMEOUT": "1s",
		"MAIL_RETRY_MIN": "2s", "MAIL_RETRY_MAX": "4s", "PUBLIC_BASE_URL": base,
	}, nil)
	p.user(t, "ada@example.com")
	metric := func(name string, labels ...string) float64 {
		return testkit.Scrape(t, p.auth.AdminURL+"/metrics")[testkit.Series(name, append([]string{"service", "auth"}, labels...)...)]
	}

	mp.Stop()
	r := timed(t, 2*time.Second, func() testkit.Response {
		return testkit.CallAPI(t, "POST", p.auth.URL+"/api/auth/password/forgot", `{"email":"ada@example.com"}`)
	})
	if r.Status != 202 {
		t.Fatalf("forgot with the mail server down: %d %s", r.Status, r.Body)
	}
	testkit.Eventually(t, 20*time.Second, func() error {
		failed, pending := metric(metrics.MailFailedName, "kind", "password_reset", "reason", "temporary"), metric(metrics.MailPendingName)
		if failed < 2 || pending != 1 {
			return fmt.Errorf("%v failed deliveries and %v mails pending, want 2 or more and 1", failed, pending)
		}
		return nil
	})

	if mp, err = devstore.StartMailpit(context.Background(), dir, mp.SMTPAddr, mp.APIAddr, quiet); err != nil {
		t.Fatal(err)
	}
	box := testkit.Mailbox{API: mp.APIURL, Address: "ada@example.com"}
	mails := box.Wait(t, "Reset your moviebag password", 1, 30*time.Second)
	token := mails[0].Link(t, base).Query().Get("token")
	if r := testkit.CallAPI(t, "POST", p.auth.URL+"/api/auth/password/reset", `{"token":"`+token+`","password":"new-secret"}`); r.Status != 204 {
		t.Fatalf("reset with the token of the late mail: %d %s", r.Status, r.Body)
	}
	p.login(t, `{"email":"ada@example.com","password":"new-secret"}`)
	testkit.Eventually(t, 10*time.Second, func() error {
		if sent, pending := metric(metrics.MailSentName, "kind", "password_reset"), metric(metrics.MailPendingName); sent != 1 || pending != 0 {
			return fmt.Errorf("%v reset mails sent, %v pending; want 1 and 0", sent, pending)
		}
		return nil
	})
}
