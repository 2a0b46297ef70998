package account

import (
	"context"

	"github.com/golang-jwt/jwt/v5"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/token"
	"github.com/moviebag/moviebag/services/auth/internal/sessions"
)

// RefreshResult is how a refresh ended, for metrics.
type RefreshResult string

// The refresh results.
const (
	RefreshSuccess RefreshResult = "success"
	// RefreshInvalid: malformed, unknown, expired or ended.
	RefreshInvalid RefreshResult = "invalid"
	// RefreshReused: a spent token presented again; its session ends.
	RefreshReused RefreshResult = "reused"
	RefreshError  RefreshResult = "error"
)

// RefreshResults are every RefreshResult.
func RefreshResults() []RefreshResult {
	return []RefreshResult{RefreshSuccess, RefreshInvalid, RefreshReused, RefreshError}
}

// Checker tells whether the denylist refuses a token (or, asked with a
// session's start as iat, the session).
type Checker interface {
	Denies(ctx context.Context, claims *token.Claims) (bool, error)
}

// Refresh renews a session: a new access token and a new refresh token for
// one refresh token, which is spent.
type Refresh struct {
	Sessions *Sessions
	Issuer   *Issuer
	Denylist Checker
	// Record is told how each refresh ended.
	Record func(RefreshResult)
}

// Handle spends the refresh token raw and returns the session's next pair.
// A token that is malformed, unknown, spent or of an ended session is
// RefreshTokenInvalidError, one answer for all. A spent one also ends its
// session: every refresh token of it and every access token carrying its
// sid, at both services. There is no grace period (see README, "Refresh
// tokens").
func (r *Refresh) Handle(ctx context.Context, raw string) (Token, error) {
	tok, res, err := r.handle(ctx, raw)
	if err != nil && res == "" {
		res = RefreshError
	}
	r.Record(res)
	return tok, err
}

func (r *Refresh) handle(ctx context.Context, raw string) (Token, RefreshResult, error) {
	invalid := func(cause error) (Token, RefreshResult, error) {
		return Token{}, RefreshInvalid, apierr.Wrap(apierr.RefreshTokenInvalidError, cause)
	}
	presented, err := sessions.ParseToken(raw)
	if err != nil {
		return invalid(err)
	}
	rot, err := r.Sessions.Store.Rotate(ctx, presented)
	if err != nil {
		return Token{}, "", err
	}
	switch rot.Outcome {
	case sessions.Reused:
		// Every access token of the session may be the thief's: refuse them
		// all. A failure here is a 503, and the next presentation of any
		// token of the session tries again.
		if err := r.Sessions.Revoker.Revoke(ctx, rot.SessionID, r.Sessions.TokenTTL); err != nil {
			return Token{}, "", err
		}
		if !rot.Detected { // a token of a session that reuse has ended
			return invalid(nil)
		}
		r.Sessions.Record(EndedByRefreshReuse)
		return Token{}, RefreshReused, apierr.New(apierr.RefreshTokenInvalidError)
	case sessions.Rotated:
	default:
		return invalid(nil)
	}
	tok, err := r.Issuer.Renew(rot.User, rot.SessionID)
	if err != nil {
		return Token{}, "", err
	}
	// Asked after signing: a logout everywhere that set its cutoff before
	// this question is seen here; one that set it after has a cutoff later
	// than the new token's iat, which refuses the token itself.
	denied, err := r.Denylist.Denies(ctx, &token.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: rot.User, ID: rot.SessionID, IssuedAt: jwt.NewNumericDate(rot.Began),
		},
		SessionID: rot.SessionID,
	})
	if err != nil {
		return Token{}, "", err
	}
	if denied {
		// Ended with every session of its user, or logged out; best effort,
		// the session would end idle anyway.
		_ = r.Sessions.Store.End(ctx, rot.User, rot.SessionID)
		return invalid(nil)
	}
	tok.RefreshToken = rot.Next
	return tok, RefreshSuccess, nil
}
