package account

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// DeleteStore is what deleting an account needs of the users collection.
type DeleteStore interface {
	ByID(ctx context.Context, id bson.ObjectID) (users.User, error)
	Delete(ctx context.Context, id bson.ObjectID) error
}

// Events tells the other services what became of accounts, durably: an
// event appended is delivered even to a service that is down at the time.
type Events interface {
	UserDeleted(ctx context.Context, userID string) error
}

// DeleteAccountCommand is one deletion by a signed-in user: the token's
// user and the password, asked again.
type DeleteAccountCommand struct {
	UserID   string
	Password string
}

// DeleteAccount deletes a user and everything of theirs.
type DeleteAccount struct {
	Users  DeleteStore
	Hasher Hasher
	// EmailLimit is the login limit per email: a wrong password is a guess
	// like a wrong login, counted in the same place.
	EmailLimit Limiter
	Sessions   *Sessions
	Events     Events
	// Record is told of each account deleted.
	Record func()
}

// Handle checks cmd's password (wrong: UnauthorizedError, counted against
// the user's login limit like a wrong login), then, in this order: ends
// every session of the user (no token of theirs can write anything after
// it), appends the user.deleted event (the other services erase the user's
// data: movies deletes their movies), and deletes the user, which frees
// the email. A failure part way is a 503 that leaves the user able to log
// in and ask again; the event is then appended twice, which its consumers
// bear. The user's data is never left behind without an event: the user
// is deleted last.
func (d *DeleteAccount) Handle(ctx context.Context, cmd DeleteAccountCommand) error {
	r, err := reauthenticate(ctx, d.Hasher, d.Users, d.EmailLimit, cmd.UserID, cmd.Password)
	if err != nil {
		return err
	}
	r.permit.Release() // no more hashing: let another request have the CPU
	if err := d.Sessions.EndAll(ctx, cmd.UserID, "", EndedByAccountDeletion); err != nil {
		return err
	}
	if err := d.Events.UserDeleted(ctx, cmd.UserID); err != nil {
		return err
	}
	if err := d.Users.Delete(ctx, r.id); err != nil && !errors.Is(err, users.ErrNotFound) {
		return err
	}
	d.Record()
	return nil
}
