// Package limit is a rate limit in Redis shared by every replica: the
// generic cell rate algorithm of github.com/go-redis/redis_rate, one Lua
// script per event, so a burst of concurrent events is counted exactly and
// only as many as the limit allows get through.
package limit

import (
	"context"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
)

// Limit allows a burst of n events per key, refilled at n per period: at
// most n at once, and n per period in the long run.
type Limit struct {
	limiter *redis_rate.Limiter
	errs    store.Failures
	prefix  string
	limit   redis_rate.Limit
}

// New returns a limit of n events per period for each key, its Redis keys
// under prefix.
func New(rdb redis.UniversalClient, errs store.Failures, prefix string, n int, period time.Duration) *Limit {
	errs.ExpectRedis(metrics.Eval, metrics.Delete)
	return &Limit{
		limiter: redis_rate.NewLimiter(unprefixed{rdb}),
		errs:    errs,
		prefix:  prefix,
		limit:   redis_rate.Limit{Rate: n, Burst: n, Period: period},
	}
}

// Hit counts one event for key, atomically, and reports whether it is within
// the limit and, when it is not, how long until one more is allowed. An
// event over the limit is not counted.
func (l *Limit) Hit(ctx context.Context, key string) (bool, time.Duration, error) {
	res, err := l.limiter.Allow(ctx, l.prefix+key, l.limit) // the GCRA script
	if err != nil {
		return false, 0, l.errs.RedisFailed(metrics.Eval, err)
	}
	return res.Allowed > 0, res.RetryAfter, nil
}

// Forgive takes back one event Hit counted for key (a login that succeeded
// is not a guess); the limit never grows past its burst.
func (l *Limit) Forgive(ctx context.Context, key string) error {
	// A negative cost moves the cell's theoretical arrival time back by one
	// event: the inverse of one Hit. The script stores the result only while
	// it lies in the future; when it does not, no other event is outstanding
	// and the key is removed instead (an event counted in between is lost,
	// which only a client that knows the password can bring about).
	res, err := l.limiter.AllowN(ctx, l.prefix+key, l.limit, -1)
	if err != nil {
		return l.errs.RedisFailed(metrics.Eval, err)
	}
	if res.ResetAfter <= 0 {
		if err := l.limiter.Reset(ctx, l.prefix+key); err != nil { // DEL
			return l.errs.RedisFailed(metrics.Delete, err)
		}
	}
	return nil
}

// rateKeyPrefix is what redis_rate puts before every key.
const rateKeyPrefix = "rate:"

// unprefixed gives redis_rate's scripts our keys as they are: every moviebag
// key starts with REDIS_KEY_PREFIX (for ACL key patterns and shared Redis
// servers), not with redis_rate's own "rate:".
type unprefixed struct{ redis.UniversalClient }

func strip(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = strings.TrimPrefix(k, rateKeyPrefix)
	}
	return out
}

func (u unprefixed) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return u.UniversalClient.Eval(ctx, script, strip(keys), args...)
}

func (u unprefixed) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return u.UniversalClient.EvalSha(ctx, sha1, strip(keys), args...)
}

func (u unprefixed) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return u.UniversalClient.EvalRO(ctx, script, strip(keys), args...)
}

func (u unprefixed) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return u.UniversalClient.EvalShaRO(ctx, sha1, strip(keys), args...)
}

func (u unprefixed) Del(ctx context.Context, keys ...string) *redis.IntCmd {
	return u.UniversalClient.Del(ctx, strip(keys)...)
}
