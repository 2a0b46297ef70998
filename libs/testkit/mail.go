package testkit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The variables through which `make test` hands the test mail server
// (Mailpit) to the tests: the services' SMTP_URL, and the base of the API
// the mail it received is read from.
const (
	SMTPEnv    = "MOVIEBAG_TEST_SMTP_URL"
	MailAPIEnv = "MOVIEBAG_TEST_MAIL_API_URL"
)

// SMTPURL is the test mail server's SMTP_URL; the test fails when there is
// none.
func SMTPURL(t testing.TB) string { return fromEnv(t, SMTPEnv, "mail server") }

// MailAPIURL is the base URL of the test mail server's API; the test fails
// when there is none.
func MailAPIURL(t testing.TB) string { return fromEnv(t, MailAPIEnv, "mail server") }

// Mail is one mail as the mail server received it.
type Mail struct {
	ID      string
	Subject string
	To      []string
	Text    string
}

// Mailbox reads, from a Mailpit's API, the mails to one address.
type Mailbox struct {
	API     string
	Address string
}

// NewMailbox is the mailbox of address on the test mail server.
func NewMailbox(t testing.TB, address string) Mailbox {
	t.Helper()
	return Mailbox{API: MailAPIURL(t), Address: address}
}

// Mails returns the mails to the mailbox's address whose subject contains
// subject, newest first, with their text.
func (b Mailbox) Mails(t testing.TB, subject string) []Mail {
	t.Helper()
	mails, err := b.mails(subject)
	if err != nil {
		t.Fatal(err)
	}
	return mails
}

func (b Mailbox) mails(subject string) ([]Mail, error) {
	q := url.Values{"query": {fmt.Sprintf("to:%q", b.Address)}}
	var list struct {
		Messages []struct {
			ID      string
			Subject string
			To      []struct{ Address string }
		} `json:"messages"`
	}
	if err := getJSON(b.API+"/api/v1/search?"+q.Encode(), &list); err != nil {
		return nil, err
	}
	var out []Mail
	for _, m := range list.Messages {
		if !strings.Contains(m.Subject, subject) {
			continue
		}
		var full struct{ Text string }
		if err := getJSON(b.API+"/api/v1/message/"+url.PathEscape(m.ID), &full); err != nil {
			return nil, err
		}
		mail := Mail{ID: m.ID, Subject: m.Subject, Text: full.Text}
		for _, to := range m.To {
			mail.To = append(mail.To, to.Address)
		}
		out = append(out, mail)
	}
	return out, nil
}

// Wait waits up to timeout for the mailbox to hold n mails whose subject
// contains subject, and returns them, newest first.
func (b Mailbox) Wait(t testing.TB, subject string, n int, timeout time.Duration) []Mail {
	t.Helper()
	var mails []Mail
	Eventually(t, timeout, func() error {
		var err error
		if mails, err = b.mails(subject); err != nil {
			return err
		}
		if len(mails) < n {
			return fmt.Errorf("%d mails to %s with %q in the subject, want %d", len(mails), b.Address, subject, n)
		}
		return nil
	})
	return mails
}

var linkPattern = regexp.MustCompile(`https?://[^\s<>"]+`)

// Link returns the one link of m that starts with base.
func (m Mail) Link(t testing.TB, base string) *url.URL {
	t.Helper()
	var found []string
	for _, l := range linkPattern.FindAllString(m.Text, -1) {
		if strings.HasPrefix(l, base) {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("mail %q has %d links under %s, want 1:\n%s", m.Subject, len(found), base, m.Text)
	}
	u, err := url.Parse(found[0])
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func getJSON(u string, into any) error {
	resp, err := http.Get(u) //nolint:gosec,noctx // the test's own mail server
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}
