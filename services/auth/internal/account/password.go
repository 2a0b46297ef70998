package account

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// PasswordStore is what a password change needs of the users collection.
type PasswordStore interface {
	ByID(ctx context.Context, id bson.ObjectID) (users.User, error)
	SetPassword(ctx context.Context, id bson.ObjectID, passwordHash []byte) error
}

// ChangePasswordCommand is one password change by a signed-in user: the
// token's user and session, the current password and the new one.
type ChangePasswordCommand struct {
	UserID    string
	SessionID string
	Current   string
	New       string
}

// ChangePassword replaces a user's password and ends every other session.
type ChangePassword struct {
	Users  PasswordStore
	Hasher Hasher
	// EmailLimit is the login limit per email: a wrong current password is
	// a guess like a wrong login, counted in the same place.
	EmailLimit Limiter
	Sessions   *Sessions
}

// Handle checks cmd's current password (wrong: UnauthorizedError, counted
// against the user's login limit like a wrong login), stores the hash of the
// new one, then refuses every token of the user issued before it returns
// but those of cmd's session (see Sessions.EndAll). The password work is
// admitted before any Redis or MongoDB call.
func (c *ChangePassword) Handle(ctx context.Context, cmd ChangePasswordCommand) error {
	r, err := reauthenticate(ctx, c.Hasher, c.Users, c.EmailLimit, cmd.UserID, cmd.Current)
	if err != nil {
		return err
	}
	defer r.permit.Release()
	hash, err := r.permit.Hash(ctx, cmd.New)
	if err != nil {
		return err
	}
	if err := c.Users.SetPassword(ctx, r.id, hash); err != nil {
		if errors.Is(err, users.ErrNotFound) {
			return apierr.Wrap(apierr.TokenInvalidError, err)
		}
		return err
	}
	return c.Sessions.EndAll(ctx, cmd.UserID, cmd.SessionID, EndedByPasswordChange)
}
