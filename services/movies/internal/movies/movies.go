// Package movies stores movies in MongoDB. Names are unique after trimming,
// Unicode NFC normalisation and case folding (a unique index on a normalised
// key, so concurrent creates or renames onto one name yield one movie), and
// only the user who added a movie may change or delete it.
package movies

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/text"
)

// Movie is a stored movie. AddedBy is the id of the user who added it.
type Movie struct {
	ID        bson.ObjectID `bson:"_id"`
	Name      string        `bson:"name"`
	NameKey   string        `bson:"name_key"` // NameKey(Name): what uniqueness compares
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
	errs store.Failures
}

// New returns a Store on db.
func New(db *mongo.Database, errs store.Failures) *Store {
	errs.ExpectMongo(metrics.Insert, metrics.Find, metrics.Update, metrics.Count, metrics.Delete)
	return &Store{coll: db.Collection("movies"), errs: errs}
}

// NameKey is what makes two names the same movie: the name trimmed, each
// inner run of white space made one space, NFC-normalised and case-folded
// ("Heat", " HEAT " and "heat" share a key, as do "Heat  2" and "Heat 2").
//
// It is not NFKC: compatibility folding would merge titles whose difference
// is meant ("Alien³" and "Alien3", "Ⅸ" and "IX", "½" and "1/2"), and it
// would not merge the look-alikes that matter most, letters of other
// scripts (a Cyrillic "е" in "Heat"), which only a confusables skeleton
// (Unicode TS #39) maps together, at the price of merging real titles in
// those scripts. So fullwidth "Ｈｅａｔ" and a Cyrillic "Hеat" are names of
// their own; invisible characters, which no reader can tell apart, are
// refused when the name is read.
func NameKey(name string) string {
	folded := cases.Fold().String(norm.NFC.String(text.CollapseSpace(name)))
	return norm.NFC.String(folded) // folding can undo the composition
}

// The key field and its unique index; legacyIndex, a unique index on the
// exact name that older releases made, is dropped at start when present;
// ownerIndex finds a user's movies.
const (
	keyField    = "name_key"
	keyIndex    = "name_key_unique"
	legacyIndex = "name_unique"
	ownerIndex  = "added_by"
)

// EnsureIndexes creates the unique index on name_key, sparse so that
// documents written before the key existed (or by an older replica during a
// rollout) do not collide on a missing key, and the index on added_by.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	_, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: keyField, Value: 1}},
		Options: options.Index().SetUnique(true).SetSparse(true).SetName(keyIndex),
	})
	if err != nil {
		return fmt.Errorf("unique index on movies.name_key: %w", err)
	}
	// A user's movies are found by added_by when their account is deleted.
	if _, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "added_by", Value: 1}}, Options: options.Index().SetName(ownerIndex),
	}); err != nil {
		return fmt.Errorf("index on movies.added_by: %w", err)
	}
	return nil
}

// Rekey gives every movie without a name_key, or with one of an older form,
// the key of its name (see backfill), then drops the old unique index on the
// exact name. Run it after EnsureIndexes: the unique index on name_key is
// what tells backfill that two names are now one. What it changes goes to
// logger; it is safe to run again.
func (s *Store) Rekey(ctx context.Context, logger *slog.Logger) error {
	if err := s.backfill(ctx, logger); err != nil {
		return err
	}
	specs, err := s.coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		return fmt.Errorf("list movies indexes: %w", err)
	}
	for _, spec := range specs {
		if spec.Name == legacyIndex {
			if err := s.coll.Indexes().DropOne(ctx, legacyIndex); err != nil {
				return fmt.Errorf("drop movies index %s: %w", legacyIndex, err)
			}
		}
	}
	return nil
}

// staleKey matches a name_key stored before inner runs of white space were
// made one space: one with a white-space character other than U+0020, or
// two spaces in a row. Written for both Go's regexp (FerretDB) and PCRE
// (MongoDB).
const staleKey = `[\x{09}-\x{0d}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]|  `

// backfill gives every movie without a name_key its key, then every movie
// whose key predates the key's present form (see staleKey) its key of
// today. When an older movie already holds that key (two names stored
// before they were compared by key, such as "Heat" and "HEAT", or "Heat  2"
// and "Heat 2"), the later one gets a key no new name can have: its key, a
// NUL and its id. Both stay readable and editable; a new movie conflicts
// with the older one only.
func (s *Store) backfill(ctx context.Context, logger *slog.Logger) error {
	if err := s.rekey(ctx, logger, bson.D{{Key: "$exists", Value: false}}); err != nil {
		return err
	}
	return s.rekey(ctx, logger, bson.D{{Key: "$regex", Value: staleKey}})
}

// rekey gives each movie whose name_key matches cond the key of its name,
// oldest first.
func (s *Store) rekey(ctx context.Context, logger *slog.Logger, cond bson.D) error {
	cur, err := s.coll.Find(ctx, bson.D{{Key: keyField, Value: cond}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetProjection(bson.D{{Key: "name", Value: 1}, {Key: keyField, Value: 1}}))
	if err != nil {
		return fmt.Errorf("find movies to give a name_key: %w", err)
	}
	var old []struct {
		ID   bson.ObjectID `bson:"_id"`
		Name string        `bson:"name"`
		Key  *string       `bson:"name_key"`
	}
	if err := cur.All(ctx, &old); err != nil {
		return fmt.Errorf("find movies to give a name_key: %w", err)
	}
	for _, m := range old {
		key := NameKey(m.Name)
		if m.Key != nil && *m.Key == key {
			continue
		}
		err := s.setKey(ctx, m.ID, m.Key, key)
		if err != nil {
			if taken, terr := s.taken(ctx, key, m.ID); terr != nil || !taken {
				return fmt.Errorf("set name_key of movie %s: %w", m.ID.Hex(), err)
			}
			key += "\x00" + m.ID.Hex()
			if err := s.setKey(ctx, m.ID, m.Key, key); err != nil {
				return fmt.Errorf("set name_key of movie %s: %w", m.ID.Hex(), err)
			}
			logger.Warn("movie name equal to an older one after normalisation; kept with a distinct key",
				"movie", m.ID.Hex(), "name", m.Name)
		}
	}
	if len(old) > 0 {
		logger.Info("movies given a name_key", "count", len(old))
	}
	return nil
}

// setKey sets the name_key of movie id to key, if it is still old (nil: none).
func (s *Store) setKey(ctx context.Context, id bson.ObjectID, old *string, key string) error {
	filter := bson.D{{Key: "_id", Value: id}, {Key: keyField, Value: bson.D{{Key: "$exists", Value: false}}}}
	if old != nil {
		filter = bson.D{{Key: "_id", Value: id}, {Key: keyField, Value: *old}}
	}
	_, err := s.coll.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: keyField, Value: key}}}})
	return err
}

// storedName is name as it is stored, trimmed of white space around it, and
// its key: the one place a name given to Create or Update is normalised.
func storedName(name string) (stored, key string) {
	stored = strings.TrimSpace(name)
	return stored, NameKey(stored)
}

// Create inserts m with a new id and its name trimmed; a name whose key is
// taken is MovieAlreadyExistsError.
func (s *Store) Create(ctx context.Context, m Movie) (Movie, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	m.ID, m.CreatedAt, m.UpdatedAt = bson.NewObjectID(), now, now
	m.Name, m.NameKey = storedName(m.Name)
	if _, err := s.coll.InsertOne(ctx, m); err != nil {
		return Movie{}, s.writeError(ctx, metrics.Insert, err, m.NameKey, m.ID)
	}
	return m, nil
}

// writeError maps the failure of a write that set name key on movie id: a
// violation of the unique index is MovieAlreadyExistsError however the
// storage reports it (MongoDB says duplicate key; FerretDB reports one on
// update as an internal error), found by asking whether another movie holds
// the key; anything else is the storage's failure.
func (s *Store) writeError(ctx context.Context, op metrics.Operation, err error, key string, id bson.ObjectID) error {
	if mongo.IsDuplicateKeyError(err) {
		return apierr.Wrap(apierr.MovieAlreadyExistsError, err)
	}
	if taken, terr := s.taken(ctx, key, id); terr == nil && taken {
		return apierr.Wrap(apierr.MovieAlreadyExistsError, err)
	}
	return s.errs.MongoFailed(op, err)
}

// taken reports whether a movie other than id has name key.
func (s *Store) taken(ctx context.Context, key string, id bson.ObjectID) (bool, error) {
	n, err := s.coll.CountDocuments(ctx,
		bson.D{{Key: keyField, Value: key}, {Key: "_id", Value: bson.D{{Key: "$ne", Value: id}}}},
		options.Count().SetLimit(1))
	if err != nil {
		return false, s.errs.MongoFailed(metrics.Count, err)
	}
	return n > 0, nil
}

// Get returns the movie with id, or MovieNotExistsError.
func (s *Store) Get(ctx context.Context, id bson.ObjectID) (Movie, error) {
	var m Movie
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&m)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return Movie{}, apierr.Wrap(apierr.MovieNotExistsError, err)
	case err != nil:
		return Movie{}, s.errs.MongoFailed(metrics.Find, err)
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
		return nil, s.errs.MongoFailed(metrics.Find, err)
	}
	movies := make([]Movie, 0, limit)
	if err := cur.All(ctx, &movies); err != nil {
		return nil, s.errs.MongoFailed(metrics.Find, err)
	}
	return movies, nil
}

// Update applies p to the movie with id if owner added it (a new name
// trimmed), in one round trip, and returns the movie as updated:
// MovieNotExistsError when there is
// no such movie, UpdatingMovieError when someone else added it,
// MovieAlreadyExistsError when another movie has the new name's key.
func (s *Store) Update(ctx context.Context, id bson.ObjectID, owner string, p Patch) (Movie, error) {
	set := bson.D{{Key: "updated_at", Value: time.Now().UTC().Truncate(time.Millisecond)}}
	var key string
	if p.Name != nil {
		var name string
		name, key = storedName(*p.Name)
		set = append(set, bson.E{Key: "name", Value: name}, bson.E{Key: keyField, Value: key})
	}
	if p.Casts != nil {
		set = append(set, bson.E{Key: "casts", Value: *p.Casts})
	}
	if p.Genres != nil {
		set = append(set, bson.E{Key: "genres", Value: *p.Genres})
	}
	var m Movie
	err := s.coll.FindOneAndUpdate(ctx, ownedBy(id, owner), bson.D{{Key: "$set", Value: set}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&m)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments): // no such movie, or not owner's
		if _, err := s.Get(ctx, id); err != nil {
			return Movie{}, err
		}
		return Movie{}, apierr.New(apierr.UpdatingMovieError)
	case err != nil && p.Name != nil:
		return Movie{}, s.writeError(ctx, metrics.Update, err, key, id)
	case err != nil:
		return Movie{}, s.errs.MongoFailed(metrics.Update, err)
	}
	return m, nil
}

// Delete removes the movie with id if owner added it: MovieNotExistsError
// when there is no such movie, DeletingMovieError when someone else added it.
func (s *Store) Delete(ctx context.Context, id bson.ObjectID, owner string) error {
	res, err := s.coll.DeleteOne(ctx, ownedBy(id, owner))
	if err != nil {
		return s.errs.MongoFailed(metrics.Delete, err)
	}
	if res.DeletedCount == 0 {
		if _, err := s.Get(ctx, id); err != nil {
			return err
		}
		return apierr.New(apierr.DeletingMovieError)
	}
	return nil
}

// DeleteByOwner removes every movie owner added and returns how many it
// removed; run again, it removes none.
func (s *Store) DeleteByOwner(ctx context.Context, owner string) (int64, error) {
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "added_by", Value: owner}})
	if err != nil {
		return 0, s.errs.MongoFailed(metrics.Delete, err)
	}
	return res.DeletedCount, nil
}

func ownedBy(id bson.ObjectID, owner string) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "added_by", Value: owner}}
}
