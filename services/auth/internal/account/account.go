// Package account is the auth service's use cases: signing up, logging in
// and issuing the tokens a login gives. Each is a command with one Handle
// method; the HTTP handlers decode a request, call one, and encode what it
// returns. The rules live here: which limits a request is counted against
// and in which order, that password work is admitted before any Redis or
// MongoDB call, and what a token holds.
package account

import (
	"context"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/services/auth/internal/password"
	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// Accounts lists the use cases, for the handlers.
type Accounts struct {
	Signup         *Signup
	Login          *Login
	LogoutAll      *LogoutAll
	ChangePassword *ChangePassword
	ForgotPassword *ForgotPassword
	ResetPassword  *ResetPassword
	Logout         *Logout
	// Refresh renews a session.
	Refresh       *Refresh
	DeleteAccount *DeleteAccount
}

// Users is what the use cases need of the users collection.
type Users interface {
	Create(ctx context.Context, email string, passwordHash []byte) (users.User, error)
	ByEmail(ctx context.Context, email string) (users.User, error)
}

// Hasher admits the password hash of a request, or refuses it at once with
// a ServiceUnavailableError when it could not be done in time.
type Hasher interface {
	Admit(ctx context.Context) (*password.Permit, error)
}

// Limiter is a rate limit keyed by client address or email. Hit counts an
// event atomically and reports whether it is within the limit and, if not,
// when to retry; Forgive takes one counted event back.
type Limiter interface {
	Hit(ctx context.Context, key string) (allowed bool, retryAfter time.Duration, err error)
	Forgive(ctx context.Context, key string) error
}

// Signer signs tokens.
type Signer interface {
	Sign(claims jwt.Claims) (string, error)
}

// checkLimit counts one event for key against l and turns a refusal into a
// TooManyRequestsError with its Retry-After.
func checkLimit(ctx context.Context, l Limiter, key string) error {
	allowed, retryAfter, err := l.Hit(ctx, key)
	if err != nil {
		return err
	}
	if !allowed {
		return apierr.New(apierr.TooManyRequestsError).WithRetryAfter(retryAfter)
	}
	return nil
}
