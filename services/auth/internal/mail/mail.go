// Package mail writes auth's mails and hands them to an SMTP server
// (SMTP_URL) with github.com/wneessen/go-mail: a bounded time per delivery,
// the STARTTLS policy and the credentials of the configuration. Mails go
// out from a durable outbox (see account.Mailer); this package only sends.
package mail

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/moviebag/moviebag/libs/stream"
)

// Config is how auth reaches its mail server; README.md lists every
// variable.
type Config struct {
	// URL is smtp://host[:port] (port 25 by default; STARTTLS as StartTLS
	// says) or smtps://host[:port] (TLS from the first byte, port 465 by
	// default). Empty: no mail is sent (mails wait in the outbox for a
	// replica that has a mail server).
	URL string `env:"SMTP_URL"`
	// Username and Password authenticate to the server (SMTP AUTH, the best
	// mechanism it offers); from a Secret, never in the URL.
	Username string `env:"SMTP_USERNAME"`
	Password string `env:"SMTP_PASSWORD"`
	// StartTLS is mandatory (refuse a server without STARTTLS),
	// opportunistic (use it when offered) or none.
	StartTLS string `env:"SMTP_STARTTLS" envDefault:"mandatory"`
	// Timeout bounds each delivery: connecting, the SMTP dialogue, the data.
	Timeout time.Duration `env:"SMTP_TIMEOUT" envDefault:"10s"`
	// From is the sender of every mail.
	From string `env:"MAIL_FROM" envDefault:"moviebag <no-reply@moviebag.invalid>"`
}

// policies are the values of SMTP_STARTTLS.
var policies = map[string]gomail.TLSPolicy{
	"mandatory": gomail.TLSMandatory, "opportunistic": gomail.TLSOpportunistic, "none": gomail.NoTLS,
}

// Validate checks what the variables' types cannot say.
func (c Config) Validate() error {
	if _, ok := policies[c.StartTLS]; !ok {
		return fmt.Errorf("SMTP_STARTTLS %q: want mandatory, opportunistic or none", c.StartTLS)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("SMTP_TIMEOUT %s: want more than 0", c.Timeout)
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("MAIL_FROM %q: %w", c.From, err)
	}
	if c.URL == "" {
		return nil
	}
	_, err := c.server()
	return err
}

// server is where URL points.
type server struct {
	host string
	port int
	tls  bool // smtps: TLS from the first byte
}

func (c Config) server() (server, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return server{}, errors.New("SMTP_URL: not a URL") // the parse error would repeat the URL
	}
	if u.User != nil {
		return server{}, errors.New("SMTP_URL: credentials go in SMTP_USERNAME and SMTP_PASSWORD, not in the URL")
	}
	s := server{host: u.Hostname()}
	def := 25
	switch u.Scheme {
	case "smtp":
	case "smtps":
		s.tls, def = true, 465
	default:
		return server{}, fmt.Errorf("SMTP_URL: scheme %q, want smtp or smtps", u.Scheme)
	}
	if s.host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return server{}, errors.New("SMTP_URL: want smtp://host:port or smtps://host:port")
	}
	s.port = def
	if p := u.Port(); p != "" {
		if s.port, err = strconv.Atoi(p); err != nil || s.port < 1 || s.port > 65535 {
			return server{}, fmt.Errorf("SMTP_URL: port %q", p)
		}
	}
	return s, nil
}

// Addr is the server's host:port, for logs.
func (c Config) Addr() string {
	s, err := c.server()
	if err != nil {
		return ""
	}
	return net.JoinHostPort(s.host, strconv.Itoa(s.port))
}

// Message is one mail to one recipient, in plain text.
type Message struct {
	To      string
	Subject string
	Text    string
}

// Sender delivers messages to the configured server.
type Sender struct {
	client *gomail.Client
	from   string
}

// NewSender returns a Sender for cfg, which must be valid and have a URL.
func NewSender(cfg Config) (*Sender, error) {
	s, err := cfg.server()
	if err != nil {
		return nil, err
	}
	opts := []gomail.Option{
		gomail.WithPort(s.port), gomail.WithTimeout(cfg.Timeout), gomail.WithTLSPolicy(policies[cfg.StartTLS]),
	}
	if s.tls {
		opts = append(opts, gomail.WithSSL())
	}
	if cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	c, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("SMTP client: %w", err)
	}
	return &Sender{client: c, from: cfg.From}, nil
}

// Send delivers m within ctx's deadline. A refusal no retry can mend (the
// server refused the recipient for good) is a stream.Permanent error; any
// other failure may pass.
func (s *Sender) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return stream.Permanent(fmt.Errorf("sender: %w", err))
	}
	if err := msg.To(m.To); err != nil {
		return stream.Permanent(fmt.Errorf("recipient: %w", err))
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	err := s.client.DialAndSendWithContext(ctx, msg)
	var se *gomail.SendError
	if errors.As(err, &se) && !se.IsTemp() && se.Reason == gomail.ErrSMTPRcptTo {
		return stream.Permanent(fmt.Errorf("smtp: %w", err))
	}
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	return nil
}

// PasswordReset is the mail that carries a reset link, valid for ttl.
func PasswordReset(to, link string, ttl time.Duration) Message {
	return Message{
		To:      to,
		Subject: "Reset your moviebag password",
		Text: "Someone, hopefully you, asked to reset the password of your moviebag account.\r\n\r\n" +
			"To choose a new password, open this link within " + humanize(ttl) + ":\r\n\r\n" + link + "\r\n\r\n" +
			"It works once. If you did not ask for this, ignore this mail: your password stays as it is.\r\n",
	}
}

// PasswordChanged is the mail that tells a user their password was reset.
func PasswordChanged(to string) Message {
	return Message{
		To:      to,
		Subject: "Your moviebag password was changed",
		Text: "The password of your moviebag account was just changed with a reset link, and every session\r\n" +
			"signed in with the old one was ended.\r\n\r\n" +
			"If this was not you, reset your password again at once and check the mailbox this mail reached.\r\n",
	}
}

// humanize says d in minutes or hours.
func humanize(d time.Duration) string {
	if d >= time.Hour && d%time.Hour == 0 {
		if d == time.Hour {
			return "1 hour"
		}
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	}
	m := int(d.Round(time.Minute) / time.Minute)
	if m <= 1 {
		return "1 minute"
	}
	return strconv.Itoa(m) + " minutes"
}
