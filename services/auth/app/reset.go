package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/request"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/libs/service"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/stream"
	"github.com/moviebag/moviebag/services/auth/internal/account"
	"github.com/moviebag/moviebag/services/auth/internal/email"
	"github.com/moviebag/moviebag/services/auth/internal/limit"
	"github.com/moviebag/moviebag/services/auth/internal/mail"
	"github.com/moviebag/moviebag/services/auth/internal/password"
	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// ResetConfig is the configuration of password resets and of the mail that
// carries them; README.md lists every variable.
type ResetConfig struct {
	// PublicBaseURL is where users reach the API (the ingress or gateway):
	// reset links start with it, never with a request's Host header.
	// Required with SMTP_URL.
	PublicBaseURL string `env:"PUBLIC_BASE_URL"`
	// Path is the path under PublicBaseURL of the reset link; the token is
	// its query parameter token.
	Path string `env:"PASSWORD_RESET_PATH" envDefault:"/reset-password"`
	// TTL is how long a reset token works.
	TTL time.Duration `env:"PASSWORD_RESET_TTL" envDefault:"30m"`

	// Forgot requests are limited per client address and per email (each
	// sends a mail); resets per client address (each costs a bcrypt hash).
	LimitPerIP       int           `env:"PASSWORD_RESET_LIMIT_PER_IP" envDefault:"20"`
	LimitWindow      time.Duration `env:"PASSWORD_RESET_LIMIT_WINDOW" envDefault:"1m"`
	LimitPerEmail    int           `env:"PASSWORD_RESET_LIMIT_PER_EMAIL" envDefault:"3"`
	LimitEmailWindow time.Duration `env:"PASSWORD_RESET_LIMIT_EMAIL_WINDOW" envDefault:"1h"`

	Mail mail.Config
	// The outbox: a failed delivery is retried after MAIL_RETRY_MIN,
	// doubling up to MAIL_RETRY_MAX; a mail not delivered within
	// MAIL_MAX_AGE is dropped.
	RetryMin time.Duration `env:"MAIL_RETRY_MIN" envDefault:"30s"`
	RetryMax time.Duration `env:"MAIL_RETRY_MAX" envDefault:"15m"`
	MaxAge   time.Duration `env:"MAIL_MAX_AGE" envDefault:"24h"`
}

// Validate checks what the variables' types cannot say.
func (c ResetConfig) Validate() error {
	var errs []error
	if c.TTL <= 0 {
		errs = append(errs, fmt.Errorf("PASSWORD_RESET_TTL %s: want more than 0", c.TTL))
	}
	if c.LimitPerIP < 1 || c.LimitPerEmail < 1 || c.LimitWindow <= 0 || c.LimitEmailWindow <= 0 {
		errs = append(errs, errors.New("PASSWORD_RESET_LIMIT_*: want limits of 1 or more per windows of more than 0"))
	}
	if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, "?#") {
		errs = append(errs, fmt.Errorf("PASSWORD_RESET_PATH %q: want a path starting with /, no query", c.Path))
	}
	if c.RetryMin <= c.Mail.Timeout || c.RetryMax < c.RetryMin || c.MaxAge <= 0 {
		errs = append(errs, fmt.Errorf("MAIL_RETRY_MIN %s, MAIL_RETRY_MAX %s, MAIL_MAX_AGE %s: want SMTP_TIMEOUT < MAIL_RETRY_MIN <= MAIL_RETRY_MAX and an age of more than 0",
			c.RetryMin, c.RetryMax, c.MaxAge))
	}
	if c.PublicBaseURL != "" || c.Mail.URL != "" {
		u, err := url.Parse(c.PublicBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("PUBLIC_BASE_URL %q: want an http(s) URL with a host and no query (required with SMTP_URL)", c.PublicBaseURL))
		}
	}
	return errors.Join(append(errs, c.Mail.Validate())...)
}

// link is the reset link carrying token.
func (c ResetConfig) link(token string) string {
	return strings.TrimSuffix(c.PublicBaseURL, "/") + c.Path + "?" + url.Values{"token": {token}}.Encode()
}

// resetMetrics are the metrics of password resets and of the mail outbox.
type resetMetrics struct {
	resets  *prometheus.CounterVec
	sent    *prometheus.CounterVec
	failed  *prometheus.CounterVec
	pending prometheus.Gauge
}

func newResetMetrics(reg prometheus.Registerer, shared *metrics.Metrics) *resetMetrics {
	labels := shared.ConstLabels()
	r := &resetMetrics{
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metrics.PasswordResetsName, ConstLabels: labels,
			Help: "Password resets by stage: asked (a forgot request accepted, for an account or not), completed, invalid_token (a reset refused: unknown, used or expired token).",
		}, []string{"stage"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metrics.MailSentName, ConstLabels: labels, Help: "Mails the mail server accepted, by kind.",
		}, []string{"kind"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metrics.MailFailedName, ConstLabels: labels,
			Help: "Failed mail deliveries by kind and reason: temporary (retried later), permanent (refused for good: dropped), expired (older than MAIL_MAX_AGE: dropped).",
		}, []string{"kind", "reason"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metrics.MailPendingName, ConstLabels: labels,
			Help: "Mails in the outbox not yet delivered (waiting, being sent or waiting for a retry), as this replica last saw it.",
		}),
	}
	reg.MustRegister(r.resets, r.sent, r.failed, r.pending)
	for _, s := range account.ResetStages() {
		r.resets.WithLabelValues(string(s))
	}
	for _, k := range account.MailKinds() {
		r.sent.WithLabelValues(string(k))
		for _, reason := range []string{"temporary", "permanent", "expired"} {
			r.failed.WithLabelValues(string(k), reason)
		}
	}
	return r
}

func (r *resetMetrics) stage(s account.ResetStage) { r.resets.WithLabelValues(string(s)).Inc() }

func (r *resetMetrics) mailSent(k account.MailKind) { r.sent.WithLabelValues(string(k)).Inc() }

// delivery counts the failed deliveries of the outbox.
func (r *resetMetrics) delivery(m stream.Message, out stream.Outcome, _ error) {
	reason := map[stream.Outcome]string{stream.Retry: "temporary", stream.Failed: "permanent", stream.Expired: "expired"}[out]
	if reason != "" {
		r.failed.WithLabelValues(account.MailKindOf(m), reason).Inc()
	}
}

// buildReset makes the forgot and reset use cases, and, when there is a
// mail server, starts this replica's consumer of the mail outbox; it runs
// until ctx is done.
func buildReset(cfg Config, p service.Parts, userStore *users.Store, h *password.Hasher,
	sess *account.Sessions) (*account.ForgotPassword, *account.ResetPassword, error) {
	rc, prefix := cfg.Reset, cfg.Store.RedisKeyPrefix
	rm := newResetMetrics(p.Registry, p.Metrics)
	outbox := stream.New(p.Redis, p.Failures, prefix+"mail:outbox", "mailer")
	forgot := &account.ForgotPassword{
		ClientLimit: limit.New(p.Redis, p.Failures, prefix+"reset:ip:", rc.LimitPerIP, rc.LimitWindow),
		EmailLimit:  limit.New(p.Redis, p.Failures, prefix+"reset:email:", rc.LimitPerEmail, rc.LimitEmailWindow),
		Outbox:      outbox,
		Record:      rm.stage,
	}
	reset := &account.ResetPassword{
		Users: userStore, Hasher: h, Sessions: sess, Outbox: outbox, Logger: p.Logger, Record: rm.stage,
		Claims:      newResetClaims(p, prefix+"reset:used:"),
		ClientLimit: limit.New(p.Redis, p.Failures, prefix+"reset:token:ip:", rc.LimitPerIP, rc.LimitWindow),
	}
	if rc.Mail.URL == "" {
		p.Logger.Warn("SMTP_URL is not set: reset mails wait in the outbox for a replica with a mail server (up to MAIL_MAX_AGE)")
		return forgot, reset, nil
	}
	sender, err := mail.NewSender(rc.Mail)
	if err != nil {
		return nil, nil, err
	}
	mailer := &account.Mailer{Users: userStore, Sender: sender, Link: rc.link, TTL: rc.TTL, Sent: rm.mailSent}
	host, _ := os.Hostname()
	consumer := &stream.Consumer{
		Name: host + "-" + uuid.NewString()[:8], Handle: mailer.Handle,
		HandleTimeout: rc.Mail.Timeout, MinBackoff: rc.RetryMin, MaxBackoff: rc.RetryMax, MaxAge: rc.MaxAge,
		Poll: time.Second, Logger: p.Logger, Observe: rm.delivery, Pending: func(n int64) { rm.pending.Set(float64(n)) },
	}
	if err := consumer.Validate(); err != nil {
		return nil, nil, err
	}
	p.Logger.Info("mail: sending through the SMTP server", "server", rc.Mail.Addr(), "starttls", rc.Mail.StartTLS,
		"auth", rc.Mail.Username != "", "link_base", rc.PublicBaseURL+rc.Path)
	// Run waits for the consumer to stop before it closes Redis: a mail being
	// sent is finished or left to a retry, never cut off by a closed client.
	p.Go(func(ctx context.Context) {
		if err := outbox.Consume(ctx, consumer); err != nil {
			p.Logger.Error("the mail outbox is not consumed", "error", err)
		}
	})
	return forgot, reset, nil
}

// resetClaims remembers used reset tokens in Redis: SET NX, one atomic step
// on a single server, a Cluster or a Sentinel-managed primary.
type resetClaims struct {
	rdb    redis.UniversalClient
	errs   store.Failures
	prefix string
}

func newResetClaims(p service.Parts, prefix string) *resetClaims {
	p.Failures.ExpectRedis(metrics.Set)
	return &resetClaims{rdb: p.Redis, errs: p.Failures, prefix: prefix}
}

// Claim reports whether this is the first claim of digest within ttl.
func (c *resetClaims) Claim(ctx context.Context, digest string, ttl time.Duration) (bool, error) {
	first, err := c.rdb.SetNX(ctx, c.prefix+digest, 1, ttl).Result()
	if err != nil {
		return false, c.errs.RedisFailed(metrics.Set, err)
	}
	return first, nil
}

// forgotBody is the body of a forgot-password request.
type forgotBody struct {
	Email string `json:"email" validate:"required,max=254,email"`
}

// forgotAnswer is the one answer to every accepted forgot request.
var forgotAnswer = fiber.Map{"message": "If an account has this email, a mail with a reset link is on its way."}

func handleForgotPassword(forgot *account.ForgotPassword, clients *server.Clients) fiber.Handler {
	return func(c *fiber.Ctx) error {
		in, err := request.DecodeValid[forgotBody](c)
		if err != nil {
			return err
		}
		if in.Email, err = email.Canonical(in.Email); err != nil {
			return err
		}
		if err := forgot.Handle(c.UserContext(), account.ForgotPasswordCommand{ClientKey: clients.Key(c), Email: in.Email}); err != nil {
			return err
		}
		return c.Status(fiber.StatusAccepted).JSON(forgotAnswer)
	}
}

// resetBody is the body of a reset: the token from the mail's link and the
// new password, with sign-up's rules.
type resetBody struct {
	Token    string `json:"token" validate:"required"`
	Password string `json:"password" validate:"required,min=6,maxbytes=72"`
}

func handleResetPassword(reset *account.ResetPassword, clients *server.Clients) fiber.Handler {
	return func(c *fiber.Ctx) error {
		noStore(c)
		in, err := request.DecodeValid[resetBody](c)
		if err != nil {
			return err
		}
		if err := reset.Handle(c.UserContext(), account.ResetPasswordCommand{
			ClientKey: clients.Key(c), Token: in.Token, Password: in.Password,
		}); err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusNoContent)
	}
}
