package account

import (
	"context"
	"time"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/token"
	"github.com/moviebag/moviebag/services/auth/internal/sessions"
)

// Revoker refuses access tokens at both services (the denylist).
type Revoker interface {
	// RevokeUser refuses every token of user issued before a time (a
	// token's iat is in whole seconds), but those of the session keep when
	// it is not empty; ttl is the longest life of a token.
	RevokeUser(ctx context.Context, user string, before time.Time, ttl time.Duration, keep string) error
	// Revoke refuses every token whose jti or sid is id, for ttl (the
	// longest such a token still lives).
	Revoke(ctx context.Context, id string, ttl time.Duration) error
}

// SessionStore keeps login sessions and their refresh tokens (package
// sessions).
type SessionStore interface {
	Start(ctx context.Context, user, sid string, began time.Time) (refreshToken string, err error)
	Rotate(ctx context.Context, t sessions.Token) (sessions.Rotation, error)
	End(ctx context.Context, user, sid string) error
	EndUser(ctx context.Context, user, keep string) error
}

// SessionEnd is why sessions were ended, for metrics.
type SessionEnd string

// The reasons sessions end.
const (
	EndedByLogout          SessionEnd = "logout"
	EndedByLogoutAll       SessionEnd = "logout_all"
	EndedByPasswordChange  SessionEnd = "password_change"
	EndedByRefreshReuse    SessionEnd = "refresh_reuse"
	EndedByAccountDeletion SessionEnd = "account_deleted"
	EndedByPasswordReset   SessionEnd = "password_reset"
)

// SessionEnds are every SessionEnd.
func SessionEnds() []SessionEnd {
	return []SessionEnd{
		EndedByLogout, EndedByLogoutAll, EndedByPasswordChange, EndedByRefreshReuse, EndedByAccountDeletion,
		EndedByPasswordReset,
	}
}

// Sessions starts and ends login sessions: their refresh tokens (the
// store) and their access tokens (the revoker), both at once. Every use
// case that ends sessions does it here.
type Sessions struct {
	Store   SessionStore
	Revoker Revoker
	// TokenTTL is the life of the access tokens issued: how long a
	// revocation has tokens to refuse.
	TokenTTL time.Duration
	// Record is told of each end.
	Record func(SessionEnd)
}

// Start begins the session of tok, the first access token of a login of
// userID, and gives tok its refresh token.
func (s *Sessions) Start(ctx context.Context, userID string, tok *Token) error {
	refresh, err := s.Store.Start(ctx, userID, tok.SessionID, tok.IssuedAt)
	if err != nil {
		return err
	}
	tok.RefreshToken = refresh
	return nil
}

// EndAll ends every session of userID but keep (when not empty), for why:
// see endSessions.
func (s *Sessions) EndAll(ctx context.Context, userID, keep string, why SessionEnd) error {
	if err := endSessions(ctx, s, userID, s.TokenTTL, keep); err != nil {
		return err
	}
	s.Record(why)
	return nil
}

// RevokeUser refuses every access token of user issued before the second
// before, and ends every session of user, but those of keep (when not
// empty): the revoker's cutoff, then the store's sessions. With it Sessions
// is a UserRevoker, so endSessions through it ends refresh tokens too.
func (s *Sessions) RevokeUser(ctx context.Context, user string, before time.Time, ttl time.Duration, keep string) error {
	if err := s.Revoker.RevokeUser(ctx, user, before, ttl, keep); err != nil {
		return err
	}
	return s.Store.EndUser(ctx, user, keep)
}

// UserRevoker ends, at both services, every session of a user begun before
// a time (a token's iat is in whole seconds), but the session keep when it
// is not empty. In the service it is the *Sessions, which ends the refresh
// tokens of those sessions as well as their access tokens.
type UserRevoker interface {
	RevokeUser(ctx context.Context, user string, before time.Time, ttl time.Duration, keep string) error
}

// endSessions ends every session of userID but keep (when not empty)
// through r: every access token of the user issued before it returns is
// refused, and, with r a *Sessions, every refresh token of those sessions.
// A token's iat is in whole seconds, so the cutoff is the next whole
// second, and it returns only once that has passed: a token issued before
// it returns is refused (also one issued concurrently, in the same second),
// one issued after it is not. A refresh of a session begun before the
// cutoff is refused too (Refresh checks the cutoff), so a login racing with
// it cannot outlive it. ttl is the longest life of an access token.
func endSessions(ctx context.Context, r UserRevoker, userID string, ttl time.Duration, keep string) error {
	cut := time.Now().Truncate(time.Second).Add(time.Second)
	if err := r.RevokeUser(ctx, userID, cut, ttl, keep); err != nil {
		return err
	}
	t := time.NewTimer(time.Until(cut))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		// The cutoff is set; only the answer came too late.
		return apierr.Wrap(apierr.ServiceUnavailableError, ctx.Err())
	}
}

// Logout ends the session of the access token of claims: the token itself
// (its jti, as before sessions existed), every refresh token of its session
// and every other access token of it (its sid).
func (s *Sessions) Logout(ctx context.Context, claims *token.Claims) error {
	if err := s.Revoker.Revoke(ctx, claims.ID, time.Until(claims.ExpiresAt.Time)); err != nil {
		return err
	}
	if claims.SessionID == "" { // a token issued before tokens named their session
		return nil
	}
	if err := s.Store.End(ctx, claims.Subject, claims.SessionID); err != nil {
		return err
	}
	if err := s.Revoker.Revoke(ctx, claims.SessionID, s.TokenTTL); err != nil {
		return err
	}
	s.Record(EndedByLogout)
	return nil
}

// LogoutAll ends every session of a user.
type LogoutAll struct {
	Sessions *Sessions
}

// Handle ends every session of userID (see Sessions.EndAll); it takes up to
// a second.
func (l *LogoutAll) Handle(ctx context.Context, userID string) error {
	return l.Sessions.EndAll(ctx, userID, "", EndedByLogoutAll)
}
