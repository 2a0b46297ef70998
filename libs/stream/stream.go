// Package stream is a durable work queue on a Redis Stream read through a
// consumer group: producers Append entries, and the consumers of every
// replica take each entry once, retry one that failed with exponential
// backoff (also one whose consumer died while holding it), and delete it
// once it is done. Nothing is lost while the work's own dependency is down:
// an entry stays in the stream until it is handled, given up as permanent
// or too old.
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
)

// Stream is one Redis Stream and the consumer group that works it off.
type Stream struct {
	rdb   redis.UniversalClient
	errs  store.Failures
	key   string
	group string
}

// New returns the stream at key, worked off by the consumer group group.
func New(rdb redis.UniversalClient, errs store.Failures, key, group string) *Stream {
	errs.ExpectRedis(metrics.Append, metrics.Read, metrics.Ack)
	return &Stream{rdb: rdb, errs: errs, key: key, group: group}
}

// Append adds an entry with values and returns its id; a failure is a
// catalog error (ServiceUnavailableError when Redis cannot be reached).
func (s *Stream) Append(ctx context.Context, values map[string]string) (string, error) {
	id, err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.key, Values: values}).Result()
	if err != nil {
		return "", s.errs.RedisFailed(metrics.Append, err)
	}
	return id, nil
}

// Len is the number of entries not yet done: waiting, being handled or
// waiting for a retry.
func (s *Stream) Len(ctx context.Context) (int64, error) {
	n, err := s.rdb.XLen(ctx, s.key).Result()
	if err != nil {
		return 0, s.errs.RedisFailed(metrics.Read, err)
	}
	return n, nil
}

// Message is an entry given to a Handler.
type Message struct {
	ID     string
	Values map[string]string
	// Delivery is 1 the first time the entry is handled, 2 on its first
	// retry, and so on.
	Delivery int64
	// Appended is when the entry was added (from its id).
	Appended time.Time
}

// Outcome is what became of one delivery of an entry.
type Outcome string

// The outcomes.
const (
	// Done: handled, deleted.
	Done Outcome = "done"
	// Retry: failed, kept for a retry after its backoff.
	Retry Outcome = "retry"
	// Failed: failed for good (a Permanent error), deleted.
	Failed Outcome = "failed"
	// Expired: older than MaxAge when its turn came, deleted unhandled.
	Expired Outcome = "expired"
)

// permanent marks an error no retry can mend.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps a Handler's error that no retry can mend: the entry is
// deleted instead of retried.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Consumer works off a stream's entries. Every field but Logger, Observe and
// Pending is required.
type Consumer struct {
	// Name is this consumer's name in the group, unique among the replicas
	// (a host name and a random suffix).
	Name string
	// Handle does the work of one entry; an error other than a Permanent one
	// keeps the entry for a retry.
	Handle func(ctx context.Context, m Message) error
	// HandleTimeout bounds each call of Handle. It must be shorter than
	// MinBackoff: an entry idle for MinBackoff is taken over by another
	// consumer, as one whose consumer died.
	HandleTimeout time.Duration
	// MinBackoff is the wait before the first retry; each retry doubles it,
	// up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// MaxAge is how old an entry may be and still be handled (0: any age).
	MaxAge time.Duration
	// Poll is how long one read waits for new entries, and so how often
	// retries fall due.
	Poll time.Duration
	// Logger receives failures; nil logs nothing.
	Logger *slog.Logger
	// Observe, when not nil, is told the outcome of every delivery.
	Observe func(m Message, o Outcome, err error)
	// Pending, when not nil, is told after each round how many entries the
	// stream holds.
	Pending func(n int64)
}

// Validate checks the consumer's settings.
func (c *Consumer) Validate() error {
	switch {
	case c.Name == "" || c.Handle == nil:
		return errors.New("stream consumer: Name and Handle are required")
	case c.HandleTimeout <= 0 || c.Poll <= 0 || c.MinBackoff <= 0:
		return errors.New("stream consumer: HandleTimeout, Poll and MinBackoff must be more than 0")
	case c.MinBackoff <= c.HandleTimeout:
		return fmt.Errorf("stream consumer: the first backoff %s must be longer than the handling timeout %s", c.MinBackoff, c.HandleTimeout)
	case c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("stream consumer: the longest backoff %s is shorter than the first %s", c.MaxBackoff, c.MinBackoff)
	}
	return nil
}

// Consume runs c on s until ctx is done: each round it retries the entries
// whose backoff has passed, then waits up to c.Poll for new ones. A Redis
// failure is logged and the round tried again after c.Poll.
func (s *Stream) Consume(ctx context.Context, c *Consumer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	failing := false
	for ctx.Err() == nil {
		err := s.round(ctx, c)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing { // once per outage, not once per round
				c.Logger.Warn("stream: cannot read, retrying", "stream", s.key, "error", err)
			}
			failing = true
			sleep(ctx, c.Poll)
		case err == nil && failing:
			c.Logger.Info("stream: reading again", "stream", s.key)
			failing = false
		}
	}
	return nil
}

// round is one round of Consume.
func (s *Stream) round(ctx context.Context, c *Consumer) error {
	// From the start of the stream ("0"), so that entries appended before
	// the group existed are read too; BUSYGROUP is a group that exists.
	if err := s.rdb.XGroupCreateMkStream(ctx, s.key, s.group, "0").Err(); err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return s.errs.RedisFailed(metrics.Read, err)
	}
	if err := s.retryDue(ctx, c); err != nil {
		return err
	}
	res, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: s.group, Consumer: c.Name, Streams: []string{s.key, ">"}, Count: 16, Block: c.Poll,
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return s.errs.RedisFailed(metrics.Read, err)
	}
	for _, st := range res {
		for _, m := range st.Messages {
			if err := s.handle(ctx, c, m, 1); err != nil {
				return err
			}
		}
	}
	if c.Pending != nil {
		n, err := s.Len(ctx)
		if err != nil {
			return err
		}
		c.Pending(n)
	}
	return nil
}

// retryDue takes over and handles the entries delivered before whose
// backoff has passed: those whose handling failed, and those of a consumer
// that died holding them. XCLAIM with the backoff as its minimum idle time
// gives each to one consumer only.
func (s *Stream) retryDue(ctx context.Context, c *Consumer) error {
	pending, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: s.key, Group: s.group, Idle: c.MinBackoff, Start: "-", End: "+", Count: 64,
	}).Result()
	if err != nil {
		return s.errs.RedisFailed(metrics.Read, err)
	}
	for _, p := range pending {
		wait := c.backoff(p.RetryCount)
		if p.Idle < wait {
			continue
		}
		claimed, err := s.rdb.XClaim(ctx, &redis.XClaimArgs{
			Stream: s.key, Group: s.group, Consumer: c.Name, MinIdle: wait, Messages: []string{p.ID},
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return s.errs.RedisFailed(metrics.Read, err)
		}
		for _, m := range claimed {
			if err := s.handle(ctx, c, m, p.RetryCount+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// backoff is the wait after the delivered-th delivery failed.
func (c *Consumer) backoff(delivered int64) time.Duration {
	wait := c.MinBackoff
	for i := int64(1); i < delivered && wait < c.MaxBackoff; i++ {
		wait *= 2
	}
	return min(wait, c.MaxBackoff)
}

// handle runs c.Handle on one delivery and settles the entry; the error is
// Redis's, when the entry could not be settled.
func (s *Stream) handle(ctx context.Context, c *Consumer, xm redis.XMessage, delivery int64) error {
	m := Message{ID: xm.ID, Values: make(map[string]string, len(xm.Values)), Delivery: delivery, Appended: idTime(xm.ID)}
	for k, v := range xm.Values {
		if s, ok := v.(string); ok {
			m.Values[k] = s
		}
	}
	var out Outcome
	var err error
	if c.MaxAge > 0 && time.Since(m.Appended) > c.MaxAge {
		out = Expired
	} else {
		hctx, cancel := context.WithTimeout(ctx, c.HandleTimeout)
		err = c.Handle(hctx, m)
		cancel()
		switch {
		case err == nil:
			out = Done
		case IsPermanent(err):
			out = Failed
		default:
			out = Retry
		}
	}
	if c.Observe != nil {
		c.Observe(m, out, err)
	}
	switch out {
	case Retry:
		c.Logger.Warn("stream: entry failed, retrying later", "stream", s.key, "id", m.ID, "delivery", delivery,
			"retry_in", c.backoff(delivery).String(), "error", err)
		return nil
	case Failed:
		c.Logger.Error("stream: entry failed for good, dropped", "stream", s.key, "id", m.ID, "delivery", delivery, "error", err)
	case Expired:
		c.Logger.Error("stream: entry too old, dropped", "stream", s.key, "id", m.ID, "appended", m.Appended, "max_age", c.MaxAge.String())
	}
	// Settle even when ctx is done: the work is done.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.HandleTimeout)
	defer cancel()
	if _, err := s.rdb.TxPipelined(sctx, func(p redis.Pipeliner) error {
		p.XAck(sctx, s.key, s.group, m.ID)
		p.XDel(sctx, s.key, m.ID)
		return nil
	}); err != nil {
		// Handled again later: the work must bear being done twice.
		return s.errs.RedisFailed(metrics.Ack, err)
	}
	return nil
}

// idTime is the time in a stream entry id ("<ms>-<seq>").
func idTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
