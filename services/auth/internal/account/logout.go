package account

import (
	"context"

	"github.com/moviebag/moviebag/libs/token"
)

// Logout ends the session of the token presented.
type Logout struct {
	Sessions *Sessions
	// Record is told of each token revoked.
	Record func()
}

// Handle revokes the token of claims and ends its session (see
// Sessions.Logout).
func (l *Logout) Handle(ctx context.Context, claims *token.Claims) error {
	if err := l.Sessions.Logout(ctx, claims); err != nil {
		return err
	}
	l.Record()
	return nil
}
