package account

import (
	"context"
	"time"

	"github.com/moviebag/moviebag/libs/apierr"
)

// UserRevoker refuses, at both services, every token of a user issued
// before a time (a token's iat is in whole seconds), but those of the
// session keep when it is not empty.
type UserRevoker interface {
	RevokeUser(ctx context.Context, user string, before time.Time, ttl time.Duration, keep string) error
}

// SessionEnd is why sessions were ended, for metrics.
type SessionEnd string

// The reasons sessions end.
const (
	EndedByLogoutAll      SessionEnd = "logout_all"
	EndedByPasswordChange SessionEnd = "password_change"
)

// SessionEnds are every SessionEnd.
func SessionEnds() []SessionEnd { return []SessionEnd{EndedByLogoutAll, EndedByPasswordChange} }

// LogoutAll ends every session of a user.
type LogoutAll struct {
	Revoker UserRevoker
	// TokenTTL is the life of the access tokens issued: how long a cutoff
	// has tokens to refuse.
	TokenTTL time.Duration
	// Record is told of each end.
	Record func(SessionEnd)
}

// Handle refuses every token of userID issued before it returns (see
// endSessions); it takes up to a second.
func (l *LogoutAll) Handle(ctx context.Context, userID string) error {
	if err := endSessions(ctx, l.Revoker, userID, l.TokenTTL, ""); err != nil {
		return err
	}
	l.Record(EndedByLogoutAll)
	return nil
}

// endSessions refuses every token of userID issued before it returns, but
// those of the session keep (when not empty). A token's iat is in whole
// seconds, so the cutoff is the next whole second, and it returns only once
// that has passed: a token issued before it returns is refused (also one
// issued concurrently, in the same second), one issued after it is not.
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
		return apierr.Unavailable(ctx.Err())
	}
}
