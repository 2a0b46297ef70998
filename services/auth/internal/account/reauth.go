package account

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/services/auth/internal/password"
	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// userByID is what asking for a signed-in user's password again needs of
// the users collection.
type userByID interface {
	ByID(ctx context.Context, id bson.ObjectID) (users.User, error)
}

// reauthenticated is a signed-in user whose password was just checked, and
// the permit to hash with that the check was admitted under: the caller
// releases it.
type reauthenticated struct {
	id     bson.ObjectID
	user   users.User
	permit *password.Permit
}

// reauthenticate checks that pw is the password of the user a token names
// (userID, its sub), for the routes that ask for it again: the hash work is
// admitted before any Redis or MongoDB call; a user that is gone is
// TokenInvalidError; a wrong password is UnauthorizedError, counted against
// the user's email in limit like a wrong login, and a right one forgives
// the count, as at login.
func reauthenticate(ctx context.Context, h Hasher, store userByID, limit Limiter, userID, pw string) (reauthenticated, error) {
	permit, err := h.Admit(ctx)
	if err != nil {
		return reauthenticated{}, err
	}
	r, err := checkPassword(ctx, permit, store, limit, userID, pw)
	if err != nil {
		permit.Release()
		return reauthenticated{}, err
	}
	return r, nil
}

func checkPassword(ctx context.Context, permit *password.Permit, store userByID, limit Limiter, userID, pw string) (reauthenticated, error) {
	id, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return reauthenticated{}, apierr.Wrap(apierr.TokenInvalidError, err)
	}
	u, err := store.ByID(ctx, id)
	if errors.Is(err, users.ErrNotFound) {
		return reauthenticated{}, apierr.Wrap(apierr.TokenInvalidError, err)
	}
	if err != nil {
		return reauthenticated{}, err
	}
	if err := checkLimit(ctx, limit, u.Email); err != nil {
		return reauthenticated{}, err
	}
	ok, err := permit.Matches(ctx, u.PasswordHash, pw)
	if err != nil {
		_ = limit.Forgive(ctx, u.Email) // not a guess: best effort, as at login
		return reauthenticated{}, err
	}
	if !ok {
		return reauthenticated{}, apierr.New(apierr.UnauthorizedError)
	}
	_ = limit.Forgive(ctx, u.Email) // best effort, as at login
	return reauthenticated{id: id, user: u, permit: permit}, nil
}
