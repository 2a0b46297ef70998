package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"time"

	"github.com/moviebag/moviebag/libs/stream"
	"github.com/moviebag/moviebag/libs/userevents"
)

// OwnerStore deletes a user's movies.
type OwnerStore interface {
	DeleteByOwner(ctx context.Context, owner string) (int64, error)
}

// eraser deletes the movies of each deleted account, from auth's durable
// user.deleted events: every replica consumes them in one consumer group,
// so each event is handled once (again after a failure, or when the
// replica handling it died), and events appended while no replica ran are
// handled when one starts. Deleting a user's movies is idempotent, so an
// event handled twice, or replayed, does no harm.
type eraser struct {
	movies OwnerStore
	logger *slog.Logger
	m      *Metrics
}

// handle deletes the movies of the user of one event; an entry that is no
// event is dropped (a permanent failure).
func (e *eraser) handle(ctx context.Context, msg stream.Message) error {
	ev, err := userevents.Parse(msg)
	if err != nil {
		return err
	}
	n, err := e.movies.DeleteByOwner(ctx, ev.User)
	if err != nil {
		return err
	}
	e.m.userMoviesDeleted(n)
	e.logger.InfoContext(ctx, "movies of a deleted account deleted", "user", ev.User, "movies", n,
		"event", msg.ID, "delivery", msg.Delivery, "lag", time.Since(ev.Appended).String())
	return nil
}

// consumer is the stream consumer of this replica: its name is the host's
// (the pod's) with a random suffix, unique among the replicas and their
// restarts.
func (e *eraser) consumer() *stream.Consumer {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &stream.Consumer{
		Name:          host + "-" + hex.EncodeToString(b[:]),
		Handle:        e.handle,
		HandleTimeout: 10 * time.Second,
		MinBackoff:    15 * time.Second,
		MaxBackoff:    5 * time.Minute,
		Poll:          time.Second,
		Logger:        e.logger,
		Observe: func(_ stream.Message, o stream.Outcome, _ error) {
			e.m.userEvent(o)
		},
	}
}
