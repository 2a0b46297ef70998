package account

import (
	"context"
	"errors"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// LoginResult is how a login attempt ended, for metrics.
type LoginResult string

// The login results.
const (
	LoginSuccess            LoginResult = "success"
	LoginInvalidCredentials LoginResult = "invalid_credentials"
	LoginRateLimited        LoginResult = "rate_limited"
	LoginError              LoginResult = "error"
)

// LoginResults are every LoginResult.
func LoginResults() []LoginResult {
	return []LoginResult{LoginSuccess, LoginInvalidCredentials, LoginRateLimited, LoginError}
}

// LoginCommand is one login: the client's limit key (its address), and the
// email, in its stored form, and password it gave.
type LoginCommand struct {
	ClientKey string
	Email     string
	Password  string
}

// Login checks a password and starts a session: an access token and a
// refresh token.
type Login struct {
	Users       Users
	Hasher      Hasher
	Issuer      *Issuer
	Sessions    *Sessions
	ClientLimit Limiter
	EmailLimit  Limiter
	// Record is told how each attempt that was admitted ended.
	Record func(LoginResult)
}

// Handle logs cmd in. In order: the password work is admitted (a refusal
// costs no Redis or MongoDB call, which a storm would queue for too, counts
// no attempt and checks no password); the client address is counted, then
// the email, before the password is checked, so that concurrent guesses
// cannot all pass a check made before any of them was counted (the email's
// count is given back unless the password was wrong); the password is
// compared, against a dummy hash for an unknown email so that neither the
// answer nor its time tells which emails have accounts; a session starts.
// A wrong password and an unknown email are both UnauthorizedError.
func (l *Login) Handle(ctx context.Context, cmd LoginCommand) (Token, error) {
	permit, err := l.Hasher.Admit(ctx)
	if err != nil {
		return Token{}, err
	}
	defer permit.Release()
	if err := checkLimit(ctx, l.ClientLimit, cmd.ClientKey); err != nil {
		l.Record(limitResult(err))
		return Token{}, err
	}
	if err := checkLimit(ctx, l.EmailLimit, cmd.Email); err != nil {
		l.Record(limitResult(err))
		return Token{}, err
	}
	guessed := false
	defer func() {
		if !guessed {
			// Best effort: when Redis fails here the event simply ages out.
			_ = l.EmailLimit.Forgive(ctx, cmd.Email)
		}
	}()
	u, err := l.Users.ByEmail(ctx, cmd.Email)
	if err != nil && !errors.Is(err, users.ErrNotFound) {
		l.Record(LoginError)
		return Token{}, err
	}
	ok, err := permit.Matches(ctx, u.PasswordHash, cmd.Password) // a zero User has no hash
	if err != nil {
		l.Record(LoginError)
		return Token{}, err
	}
	if !ok {
		l.Record(LoginInvalidCredentials)
		guessed = true
		return Token{}, apierr.New(apierr.UnauthorizedError)
	}
	tok, err := l.Issuer.Issue(u.ID.Hex())
	if err == nil {
		err = l.Sessions.Start(ctx, u.ID.Hex(), &tok)
	}
	if err != nil {
		l.Record(LoginError)
		return Token{}, err
	}
	l.Record(LoginSuccess)
	return tok, nil
}

func limitResult(err error) LoginResult {
	if apierr.Is(err, apierr.TooManyRequestsError) {
		return LoginRateLimited
	}
	return LoginError
}
