// Package users stores accounts in MongoDB.
package users

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

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
}

// Store keeps users in the "users" collection.
type Store struct {
	coll *mongo.Collection
	errs store.Errors
}

// New returns a Store on db.
func New(db *mongo.Database, errs store.Errors) *Store {
	errs.ExpectMongo(metrics.Insert, metrics.Find)
	return &Store{coll: db.Collection("users"), errs: errs}
}

// EnsureIndexes creates the unique index on email.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	return store.EnsureUnique(ctx, s.coll, "email")
}

// Create inserts a user; an email already taken is EmailAlreadyExistsError.
func (s *Store) Create(ctx context.Context, email string, passwordHash []byte) (User, error) {
	u := User{ID: bson.NewObjectID(), Email: email, PasswordHash: passwordHash, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if _, err := s.coll.InsertOne(ctx, u); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return User{}, apierr.Wrap(apierr.EmailAlreadyExistsError, err)
		}
		return User{}, s.errs.Mongo(metrics.Insert, err)
	}
	return u, nil
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
		return User{}, s.errs.Mongo(metrics.Find, err)
	}
	return u, nil
}
