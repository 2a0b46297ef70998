// Package users stores accounts in MongoDB.
package users

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
)

// ErrNotFound is returned when no user matches.
var ErrNotFound = errors.New("user not found")

// User is an account. Email is stored lower-cased.
type User struct {
	ID           bson.ObjectID `bson:"_id"`
	Email        string        `bson:"email"`
	PasswordHash []byte        `bson:"password_hash"`
	CreatedAt    time.Time     `bson:"created_at"`
	// Reset is the user's outstanding password reset, if any.
	Reset *Reset `bson:"password_reset,omitempty"`
}

// Reset is an outstanding password reset: the digest of the token sent
// (never the token) and when it stops working.
type Reset struct {
	Digest    string    `bson:"digest"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// resetDigest is the field reset tokens are looked up by.
const resetDigest = "password_reset.digest"

// Store keeps users in the "users" collection.
type Store struct {
	coll *mongo.Collection
	errs store.Failures
}

// New returns a Store on db.
func New(db *mongo.Database, errs store.Failures) *Store {
	errs.ExpectMongo(metrics.Insert, metrics.Find, metrics.Update, metrics.Delete)
	return &Store{coll: db.Collection("users"), errs: errs}
}

// EnsureIndexes creates the unique index on email and the index reset
// tokens are looked up by.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	if err := store.EnsureUnique(ctx, s.coll, "email"); err != nil {
		return err
	}
	if _, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: resetDigest, Value: 1}}, Options: options.Index().SetName("password_reset_digest"),
	}); err != nil {
		return fmt.Errorf("index on users.%s: %w", resetDigest, err)
	}
	return nil
}

// nonASCII matches an email with a character outside ASCII (Go's regexp
// for FerretDB, PCRE for MongoDB).
const nonASCII = `[^\x{00}-\x{7f}]`

// Canonicalize rewrites every stored email with a character outside ASCII
// into the form canon gives it: emails stored before they had one form kept
// a Unicode domain, which lookups by the ASCII form would no longer find.
// An email canon refuses, or whose form another account already has, is
// left as it is, with a warning in the log. It is safe to run again.
func (s *Store) Canonicalize(ctx context.Context, logger *slog.Logger, canon func(string) (string, error)) error {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "email", Value: bson.D{{Key: "$regex", Value: nonASCII}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetProjection(bson.D{{Key: "email", Value: 1}}))
	if err != nil {
		return fmt.Errorf("find emails outside ASCII: %w", err)
	}
	var stored []struct {
		ID    bson.ObjectID `bson:"_id"`
		Email string        `bson:"email"`
	}
	if err := cur.All(ctx, &stored); err != nil {
		return fmt.Errorf("find emails outside ASCII: %w", err)
	}
	for _, u := range stored {
		email, err := canon(u.Email)
		switch {
		case err != nil:
			logger.Warn("stored email has no canonical form: left as it is, its user cannot log in", "user", u.ID.Hex())
			continue
		case email == u.Email:
			continue
		}
		_, err = s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: u.ID}, {Key: "email", Value: u.Email}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "email", Value: email}}}})
		if err != nil {
			if taken, terr := s.taken(ctx, email, u.ID); terr == nil && taken {
				logger.Warn("stored email's canonical form belongs to another user: left as it is", "user", u.ID.Hex())
				continue
			}
			return fmt.Errorf("store the email of user %s in its canonical form: %w", u.ID.Hex(), err)
		}
		logger.Info("stored email put in its canonical form", "user", u.ID.Hex())
	}
	return nil
}

// taken reports whether a user other than id has email.
func (s *Store) taken(ctx context.Context, email string, id bson.ObjectID) (bool, error) {
	n, err := s.coll.CountDocuments(ctx,
		bson.D{{Key: "email", Value: email}, {Key: "_id", Value: bson.D{{Key: "$ne", Value: id}}}},
		options.Count().SetLimit(1))
	return n > 0, err
}

// Create inserts a user; an email already taken is EmailAlreadyExistsError.
func (s *Store) Create(ctx context.Context, email string, passwordHash []byte) (User, error) {
	u := User{ID: bson.NewObjectID(), Email: email, PasswordHash: passwordHash, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if _, err := s.coll.InsertOne(ctx, u); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return User{}, apierr.Wrap(apierr.EmailAlreadyExistsError, err)
		}
		return User{}, s.errs.MongoFailed(metrics.Insert, err)
	}
	return u, nil
}

// SetPassword replaces the password hash of the user id; a user that is
// gone is ErrNotFound.
func (s *Store) SetPassword(ctx context.Context, id bson.ObjectID, passwordHash []byte) error {
	res, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "password_hash", Value: passwordHash}}}})
	if err != nil {
		return s.errs.MongoFailed(metrics.Update, err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// SetReset makes r the one outstanding password reset of the user id (a
// reset asked before stops working); a user that is gone is ErrNotFound.
func (s *Store) SetReset(ctx context.Context, id bson.ObjectID, r Reset) error {
	r.ExpiresAt = r.ExpiresAt.UTC().Truncate(time.Millisecond)
	res, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "password_reset", Value: r}}}})
	if err != nil {
		return s.errs.MongoFailed(metrics.Update, err)
	}
	if res.MatchedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// liveReset matches the user whose outstanding reset has digest and has
// not expired at now.
func liveReset(digest string, now time.Time) bson.D {
	return bson.D{
		{Key: resetDigest, Value: digest},
		{Key: "password_reset.expires_at", Value: bson.D{{Key: "$gt", Value: now.UTC()}}},
	}
}

// ByReset finds the user whose reset token has digest, unexpired at now:
// ErrNotFound for an unknown, used or expired token.
func (s *Store) ByReset(ctx context.Context, digest string, now time.Time) (User, error) {
	return s.findOne(ctx, liveReset(digest, now))
}

// ConsumeReset, in one atomic step, takes the reset whose token has digest,
// unexpired at now, and sets the user's password hash: of concurrent calls
// with one token, one succeeds. It returns the user as they were; an
// unknown, used or expired token is ErrNotFound.
func (s *Store) ConsumeReset(ctx context.Context, digest string, now time.Time, passwordHash []byte) (User, error) {
	var u User
	err := s.coll.FindOneAndUpdate(ctx, liveReset(digest, now), bson.D{
		{Key: "$set", Value: bson.D{{Key: "password_hash", Value: passwordHash}}},
		{Key: "$unset", Value: bson.D{{Key: "password_reset", Value: ""}}},
	}).Decode(&u)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return User{}, ErrNotFound
	case err != nil:
		return User{}, s.errs.MongoFailed(metrics.Update, err)
	}
	return u, nil
}

// Delete removes the user id, which frees its email; a user that is gone
// is ErrNotFound.
func (s *Store) Delete(ctx context.Context, id bson.ObjectID) error {
	res, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return s.errs.MongoFailed(metrics.Delete, err)
	}
	if res.DeletedCount == 0 {
		return ErrNotFound
	}
	return nil
}

// ByEmail finds a user by (lower-cased) email.
func (s *Store) ByEmail(ctx context.Context, email string) (User, error) {
	return s.findOne(ctx, bson.D{{Key: "email", Value: email}})
}

// ByID finds a user by id.
func (s *Store) ByID(ctx context.Context, id bson.ObjectID) (User, error) {
	return s.findOne(ctx, bson.D{{Key: "_id", Value: id}})
}

func (s *Store) findOne(ctx context.Context, filter bson.D) (User, error) {
	var u User
	err := s.coll.FindOne(ctx, filter).Decode(&u)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return User{}, ErrNotFound
	case err != nil:
		return User{}, s.errs.MongoFailed(metrics.Find, err)
	}
	return u, nil
}
