// Package limit counts events in fixed windows in Redis, for rate limits
// shared by every replica.
package limit

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/store"
)

// Window is a fixed-window counter with a limit.
type Window struct {
	rdb    redis.UniversalClient
	errs   store.Errors
	prefix string
	limit  int64
	period time.Duration
}

// New returns a window allowing limit events per period for each key, its
// Redis keys under prefix.
func New(rdb redis.UniversalClient, errs store.Errors, prefix string, limit int, period time.Duration) *Window {
	return &Window{rdb: rdb, errs: errs, prefix: prefix, limit: int64(limit), period: period}
}

// Hit counts one event for key. It reports whether the event is within the
// limit and, when it is not, how long until the window ends.
func (w *Window) Hit(ctx context.Context, key string) (bool, time.Duration, error) {
	k := w.prefix + key
	pipe := w.rdb.TxPipeline()
	n := pipe.Incr(ctx, k)
	pipe.ExpireNX(ctx, k, w.period)
	ttl := pipe.PTTL(ctx, k)
	if _, err := pipe.Exec(ctx); err != nil {
		return false, 0, w.errs.Redis("incr", err)
	}
	return n.Val() <= w.limit, ttl.Val(), nil
}

// Allowed reports, without counting, whether key is within its limit and,
// when it is not, how long until the window ends.
func (w *Window) Allowed(ctx context.Context, key string) (bool, time.Duration, error) {
	k := w.prefix + key
	pipe := w.rdb.Pipeline()
	n := pipe.Get(ctx, k)
	ttl := pipe.PTTL(ctx, k)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return false, 0, w.errs.Redis("get", err)
	}
	count, _ := n.Int64() // redis.Nil: no events yet
	return count < w.limit, ttl.Val(), nil
}
