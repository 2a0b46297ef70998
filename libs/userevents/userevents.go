// Package userevents carries what becomes of accounts from auth to the
// other services, durably: an event is an entry of a Redis Stream, kept
// until the consumer group of the service that acts on it has handled it,
// so a service that is down when the event is appended acts on it when it
// starts again. Today there is one event, user.deleted, and one consumer
// group, movies' (which deletes the user's movies). The stream's entries
// are deleted once that group has handled them, so a second service that
// must act on them needs a stream of its own.
package userevents

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/stream"
)

// Deleted is the type of the event of a deleted account.
const Deleted = "user.deleted"

// The fields of an event.
const (
	fieldType = "type"
	fieldUser = "user"
)

// group is the consumer group that works off the stream: the movies
// service's replicas.
const group = "movies"

// Stream is the stream of account events under the key prefix prefix.
func Stream(rdb redis.UniversalClient, errs store.Failures, prefix string) *stream.Stream {
	return stream.New(rdb, errs, Key(prefix), group)
}

// Key is the stream's Redis key under prefix.
func Key(prefix string) string { return prefix + "events:users" }

// Publisher appends account events.
type Publisher struct{ s *stream.Stream }

// NewPublisher appends to s.
func NewPublisher(s *stream.Stream) *Publisher { return &Publisher{s: s} }

// UserDeleted appends the event that the account user (its hex id) was
// deleted; a failure is a catalog error (ServiceUnavailableError when
// Redis cannot be reached).
func (p *Publisher) UserDeleted(ctx context.Context, user string) error {
	_, err := p.s.Append(ctx, map[string]string{fieldType: Deleted, fieldUser: user})
	return err
}

// ErrMalformed is an entry that is no event this package writes.
var ErrMalformed = errors.New("malformed account event")

// Event is one account event.
type Event struct {
	Type string
	// User is the account's id (24 lower-case hex digits).
	User string
	// Appended is when the event was appended.
	Appended time.Time
}

// Parse reads the event of m; an entry that is not one (unknown type, no
// valid user id) is ErrMalformed, marked Permanent: no retry mends it.
func Parse(m stream.Message) (Event, error) {
	e := Event{Type: m.Values[fieldType], User: m.Values[fieldUser], Appended: m.Appended}
	id, err := bson.ObjectIDFromHex(e.User)
	if e.Type != Deleted || err != nil || id.Hex() != e.User {
		return Event{}, stream.Permanent(fmt.Errorf("%w: entry %s %q", ErrMalformed, m.ID, m.Values))
	}
	return e, nil
}
