// Package movies stores movies in MongoDB. Names are unique (a unique index,
// so concurrent creates of one name yield one movie), and only the user who
// added a movie may change or delete it.
package movies

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/store"
)

// Movie is a stored movie. AddedBy is the id of the user who added it.
type Movie struct {
	ID        bson.ObjectID `bson:"_id"`
	Name      string        `bson:"name"`
	Casts     []string      `bson:"casts"`
	Genres    []string      `bson:"genres"`
	AddedBy   string        `bson:"added_by"`
	CreatedAt time.Time     `bson:"created_at"`
	UpdatedAt time.Time     `bson:"updated_at"`
}

// Patch is a partial update: nil fields are left as they are.
type Patch struct {
	Name   *string
	Casts  *[]string
	Genres *[]string
}

// Store keeps movies in the "movies" collection.
type Store struct {
	coll *mongo.Collection
	errs store.Errors
}

// New returns a Store on db.
func New(db *mongo.Database, errs store.Errors) *Store {
	return &Store{coll: db.Collection("movies"), errs: errs}
}

// EnsureIndexes creates the unique index on name.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	return store.EnsureUnique(ctx, s.coll, "name")
}

// Create inserts m with a new id; a taken name is MovieAlreadyExistsError.
func (s *Store) Create(ctx context.Context, m Movie) (Movie, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	m.ID, m.CreatedAt, m.UpdatedAt = bson.NewObjectID(), now, now
	if _, err := s.coll.InsertOne(ctx, m); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return Movie{}, apierr.Wrap(apierr.MovieAlreadyExistsError, err)
		}
		return Movie{}, s.errs.Mongo("insert", err)
	}
	return m, nil
}

// Get returns the movie with id, or MovieNotExistsError.
func (s *Store) Get(ctx context.Context, id bson.ObjectID) (Movie, error) {
	var m Movie
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&m)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return Movie{}, apierr.Wrap(apierr.MovieNotExistsError, err)
	case err != nil:
		return Movie{}, s.errs.Mongo("find", err)
	}
	return m, nil
}

// List returns up to limit movies in id order, starting after the id after
// (the zero id starts at the beginning).
func (s *Store) List(ctx context.Context, after bson.ObjectID, limit int) ([]Movie, error) {
	filter := bson.D{}
	if !after.IsZero() {
		filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}}
	}
	cur, err := s.coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, s.errs.Mongo("find", err)
	}
	movies := make([]Movie, 0, limit)
	if err := cur.All(ctx, &movies); err != nil {
		return nil, s.errs.Mongo("find", err)
	}
	return movies, nil
}

// Update applies p to the movie with id if owner added it:
// MovieNotExistsError when there is no such movie, UpdatingMovieError when
// someone else added it, MovieAlreadyExistsError when the new name is taken.
//
// The name is checked before the write as well as by the unique index:
// FerretDB reports a unique violation on update as an internal error, not as
// MongoDB's duplicate key, so the check keeps the answer right there too.
func (s *Store) Update(ctx context.Context, id bson.ObjectID, owner string, p Patch) (Movie, error) {
	current, err := s.Get(ctx, id)
	if err != nil {
		return Movie{}, err
	}
	if current.AddedBy != owner {
		return Movie{}, apierr.New(apierr.UpdatingMovieError)
	}
	set := bson.D{{Key: "updated_at", Value: time.Now().UTC().Truncate(time.Millisecond)}}
	if p.Name != nil {
		if *p.Name != current.Name {
			if err := s.nameFree(ctx, *p.Name); err != nil {
				return Movie{}, err
			}
		}
		set = append(set, bson.E{Key: "name", Value: *p.Name})
	}
	if p.Casts != nil {
		set = append(set, bson.E{Key: "casts", Value: *p.Casts})
	}
	if p.Genres != nil {
		set = append(set, bson.E{Key: "genres", Value: *p.Genres})
	}
	res, err := s.coll.UpdateOne(ctx, ownedBy(id, owner), bson.D{{Key: "$set", Value: set}})
	if err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return Movie{}, apierr.Wrap(apierr.MovieAlreadyExistsError, err)
		}
		return Movie{}, s.errs.Mongo("update", err)
	}
	if res.MatchedCount == 0 { // deleted since we read it
		return Movie{}, apierr.New(apierr.MovieNotExistsError)
	}
	return s.Get(ctx, id)
}

// nameFree returns MovieAlreadyExistsError when a movie has name.
func (s *Store) nameFree(ctx context.Context, name string) error {
	n, err := s.coll.CountDocuments(ctx, bson.D{{Key: "name", Value: name}}, options.Count().SetLimit(1))
	if err != nil {
		return s.errs.Mongo("count", err)
	}
	if n > 0 {
		return apierr.New(apierr.MovieAlreadyExistsError)
	}
	return nil
}

// Delete removes the movie with id if owner added it: MovieNotExistsError
// when there is no such movie, DeletingMovieError when someone else added it.
func (s *Store) Delete(ctx context.Context, id bson.ObjectID, owner string) error {
	res, err := s.coll.DeleteOne(ctx, ownedBy(id, owner))
	if err != nil {
		return s.errs.Mongo("delete", err)
	}
	if res.DeletedCount == 0 {
		if _, err := s.Get(ctx, id); err != nil {
			return err
		}
		return apierr.New(apierr.DeletingMovieError)
	}
	return nil
}

func ownedBy(id bson.ObjectID, owner string) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "added_by", Value: owner}}
}
