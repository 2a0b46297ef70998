package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/stream"
	"github.com/moviebag/moviebag/services/auth/internal/mail"
	"github.com/moviebag/moviebag/services/auth/internal/opaque"
	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// ResetStage is a step of a password reset, for metrics.
type ResetStage string

// The stages of a password reset.
const (
	// ResetAsked: a forgot request was accepted (for a known email or not).
	ResetAsked ResetStage = "asked"
	// ResetCompleted: a token was taken and the password set.
	ResetCompleted ResetStage = "completed"
	// ResetInvalidToken: a reset with an unknown, used or expired token.
	ResetInvalidToken ResetStage = "invalid_token"
)

// ResetStages are every ResetStage.
func ResetStages() []ResetStage { return []ResetStage{ResetAsked, ResetCompleted, ResetInvalidToken} }

// MailKind is what a mail of the outbox is about.
type MailKind string

// The mails auth sends.
const (
	// MailPasswordReset carries a reset link.
	MailPasswordReset MailKind = "password_reset"
	// MailPasswordChanged tells that a reset changed the password.
	MailPasswordChanged MailKind = "password_changed"
)

// MailKinds are every MailKind.
func MailKinds() []MailKind { return []MailKind{MailPasswordReset, MailPasswordChanged} }

// Outbox keeps mails to send until they are sent: an entry names the kind
// of mail and the recipient's email, never a token.
type Outbox interface {
	Append(ctx context.Context, values map[string]string) (string, error)
}

// The fields of an outbox entry.
const (
	outboxKind  = "kind"
	outboxEmail = "email"
)

// ForgotPasswordCommand is one forgot-password request: the client's limit
// key (its address) and the email, in its stored form.
type ForgotPasswordCommand struct {
	ClientKey string
	Email     string
}

// ForgotPassword takes requests for a reset mail.
type ForgotPassword struct {
	ClientLimit Limiter
	EmailLimit  Limiter
	Outbox      Outbox
	Record      func(ResetStage)
}

// Handle counts cmd against the limits of its client address and of its
// email, then puts a reset mail for the email in the outbox. It does the
// same work, and so answers alike in about the same time, whether or not an
// account has the email: whether there is one, and the token, are only
// looked at by the Mailer, off the request's path.
func (f *ForgotPassword) Handle(ctx context.Context, cmd ForgotPasswordCommand) error {
	if err := checkLimit(ctx, f.ClientLimit, cmd.ClientKey); err != nil {
		return err
	}
	if err := checkLimit(ctx, f.EmailLimit, cmd.Email); err != nil {
		return err
	}
	if _, err := f.Outbox.Append(ctx, map[string]string{outboxKind: string(MailPasswordReset), outboxEmail: cmd.Email}); err != nil {
		return err
	}
	f.Record(ResetAsked)
	return nil
}

// ResetStore is what a reset needs of the users collection.
type ResetStore interface {
	ByEmail(ctx context.Context, email string) (users.User, error)
	SetReset(ctx context.Context, id bson.ObjectID, r users.Reset) error
	ByReset(ctx context.Context, digest string, now time.Time) (users.User, error)
	ConsumeReset(ctx context.Context, digest string, now time.Time, passwordHash []byte) (users.User, error)
}

// ResetClaims marks reset tokens used: Claim reports whether this call was
// the first for digest (atomically: of concurrent calls one gets true),
// and remembers it for ttl.
type ResetClaims interface {
	Claim(ctx context.Context, digest string, ttl time.Duration) (bool, error)
}

// ResetPasswordCommand is one reset: the client's limit key, the token from
// the mail and the new password.
type ResetPasswordCommand struct {
	ClientKey string
	Token     string
	Password  string
}

// ResetPassword sets a new password with a token from a reset mail.
type ResetPassword struct {
	Users       ResetStore
	Hasher      Hasher
	ClientLimit Limiter
	// Claims makes each token work once.
	Claims ResetClaims
	// Sessions ends the user's sessions, as a logout everywhere does.
	Sessions *Sessions
	Outbox   Outbox
	Logger   *slog.Logger
	Record   func(ResetStage)
	now      func() time.Time
}

// Handle resets the password of the user cmd's token names. In order: a
// token not of the form opaque.New makes is refused at once; the
// password work is admitted; the client address is counted; an unknown,
// used or expired token is refused before any hash is made; the new
// password is hashed; the token is claimed, in one atomic step (Claims: of
// concurrent resets with one token exactly one gets it), then taken from the
// user with the new hash stored, in one findOneAndUpdate conditioned on the
// token (a token replaced by a newer one meanwhile is refused). The claim
// comes first because a findOneAndUpdate alone is atomic on MongoDB but not
// on FerretDB v1, which finds, then updates: two of eight concurrent resets
// with one token succeeded there (TestResetTokenSingleUseUnderConcurrency).
// Then every session of the user ends and a "password changed" mail goes in
// the outbox. Each refusal of a token is the one ResetTokenInvalidError.
func (r *ResetPassword) Handle(ctx context.Context, cmd ResetPasswordCommand) error {
	h, ok := opaque.Parse(cmd.Token)
	if !ok {
		r.Record(ResetInvalidToken)
		return apierr.New(apierr.ResetTokenInvalidError)
	}
	permit, err := r.Hasher.Admit(ctx)
	if err != nil {
		return err
	}
	defer permit.Release()
	if err := checkLimit(ctx, r.ClientLimit, cmd.ClientKey); err != nil {
		return err
	}
	digest := h.Hex()
	pending, err := r.Users.ByReset(ctx, digest, r.clock())
	if err != nil {
		return r.invalid(err)
	}
	hash, err := permit.Hash(ctx, cmd.Password)
	if err != nil {
		return err
	}
	first, err := r.Claims.Claim(ctx, digest, max(time.Until(pending.Reset.ExpiresAt), time.Second))
	if err != nil {
		return err
	}
	if !first {
		return r.invalid(users.ErrNotFound)
	}
	u, err := r.Users.ConsumeReset(ctx, digest, r.clock(), hash)
	if err != nil {
		return r.invalid(err)
	}
	if err := r.Sessions.EndAll(ctx, u.ID.Hex(), "", EndedByPasswordReset); err != nil {
		return err
	}
	r.Record(ResetCompleted)
	// The password is set and the sessions ended: a failure to queue the
	// notice is logged, not answered.
	if _, err := r.Outbox.Append(ctx, map[string]string{outboxKind: string(MailPasswordChanged), outboxEmail: u.Email}); err != nil {
		r.Logger.Error("password reset: the password-changed mail could not be queued", "user", u.ID.Hex(), "error", err)
	}
	return nil
}

func (r *ResetPassword) invalid(err error) error {
	if errors.Is(err, users.ErrNotFound) {
		r.Record(ResetInvalidToken)
		return apierr.Wrap(apierr.ResetTokenInvalidError, err)
	}
	return err
}

func (r *ResetPassword) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// Sender delivers a mail.
type Sender interface {
	Send(ctx context.Context, m mail.Message) error
}

// Mailer sends the mails of the outbox: the handler of its stream consumer.
type Mailer struct {
	Users  ResetStore
	Sender Sender
	// Link is the reset link that carries token.
	Link func(token string) string
	// TTL is how long a reset token works.
	TTL time.Duration
	// Sent is told of each mail delivered.
	Sent func(MailKind)
}

// Handle sends the mail of one outbox entry. A reset mail gets a fresh
// token, whose digest replaces the user's outstanding one just before the
// mail goes: a retried delivery sends a new token, so no token is ever kept
// anywhere but in the mail (of two mails, the later one's link works). For
// an email with no account nothing is sent. An entry it cannot read is a
// permanent failure.
func (m *Mailer) Handle(ctx context.Context, msg stream.Message) error {
	email := msg.Values[outboxEmail]
	switch kind := MailKind(msg.Values[outboxKind]); kind {
	case MailPasswordReset:
		u, err := m.Users.ByEmail(ctx, email)
		if errors.Is(err, users.ErrNotFound) {
			return nil // no account: nothing to send, and nothing told
		}
		if err != nil {
			return err
		}
		token, h := opaque.New()
		if err := m.Users.SetReset(ctx, u.ID, users.Reset{Digest: h.Hex(), ExpiresAt: time.Now().Add(m.TTL)}); err != nil {
			if errors.Is(err, users.ErrNotFound) {
				return nil // deleted meanwhile
			}
			return err
		}
		return m.send(ctx, kind, mail.PasswordReset(u.Email, m.Link(token), m.TTL))
	case MailPasswordChanged:
		return m.send(ctx, kind, mail.PasswordChanged(email))
	default:
		return stream.Permanent(fmt.Errorf("outbox entry %s: unknown kind %q", msg.ID, kind))
	}
}

func (m *Mailer) send(ctx context.Context, kind MailKind, msg mail.Message) error {
	if err := m.Sender.Send(ctx, msg); err != nil {
		return err
	}
	m.Sent(kind)
	return nil
}

// MailKindOf is the kind of an outbox entry, for metrics: "unknown" for an
// entry with none of the kinds.
func MailKindOf(msg stream.Message) string {
	kind := MailKind(msg.Values[outboxKind])
	for _, k := range MailKinds() {
		if k == kind {
			return string(k)
		}
	}
	return "unknown"
}
