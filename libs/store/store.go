// Package store opens the MongoDB and Redis connections both services use
// and turns their failures into catalog errors.
//
// Every storage type of either service (auth's users and sessions, the
// movies store, the denylist, the streams) returns errors by one rule:
//
//   - An outcome that means the same to every caller is its catalog error,
//     made with apierr.New or apierr.Wrap: a taken email is
//     EmailAlreadyExistsError, a taken movie name MovieAlreadyExistsError, a
//     missing movie MovieNotExistsError.
//   - An outcome whose meaning depends on the caller is a sentinel of the
//     storage package, checked with errors.Is: a missing user (users.ErrNotFound)
//     is a failed login to Login, which still compares a dummy hash, an
//     invalid reset token to the reset, an invalid token to /me.
//   - Any other failure goes through Failures.MongoFailed or Failures.RedisFailed, which count
//     it per operation and map it to ServiceUnavailableError (the dependency
//     cannot be reached or ran out of time: the client may retry) or
//     InternalServerError; a driver's error never leaves a store bare.
//
// The one match on an error's text, FerretDB's backend timeouts, is
// serverTimedOut, pinned by TestMongoServerTimeouts (answers recorded) and
// TestFerretDBBackendTimeout (the answer of a real FerretDB).
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
)

// Config is the configuration of the MongoDB and Redis connections.
type Config struct {
	MongoURI      string `env:"MONGO_URI" envDefault:"mongodb://127.0.0.1:27017"`
	MongoDatabase string `env:"MONGO_DATABASE" envDefault:"moviebag"`
	RedisURL      string `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	// RedisKeyPrefix starts every Redis key, so deployments can share a Redis;
	// auth and movies must agree on it (the denylist).
	RedisKeyPrefix string        `env:"REDIS_KEY_PREFIX" envDefault:"moviebag:"`
	DialTimeout    time.Duration `env:"DEPENDENCY_DIAL_TIMEOUT" envDefault:"2s"`
}

// OpenMongo returns a client for cfg.MongoURI and its cfg.MongoDatabase. The
// driver connects lazily and reconnects by itself; every call still needs a
// context with a deadline.
func OpenMongo(cfg Config) (*mongo.Client, *mongo.Database, error) {
	opts := options.Client().ApplyURI(cfg.MongoURI).
		SetServerSelectionTimeout(cfg.DialTimeout).
		SetConnectTimeout(cfg.DialTimeout).
		SetAppName("moviebag")
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("MONGO_URI: %w", err)
	}
	return client, client.Database(cfg.MongoDatabase), nil
}

// OpenRedis returns a client for cfg.RedisURL, one of (README lists them):
//
//   - one server: redis://[user:password@]host:port[/db] (rediss:// for TLS);
//   - a Redis Cluster: the same with one addr=host:port query parameter per
//     further seed node, or the scheme redis+cluster:// (rediss+cluster://)
//     for a single seed;
//   - a Sentinel-managed primary: the sentinels' addresses (host:port and
//     addr=host:port parameters) with master_name=NAME.
//
// go-redis parses each form (ParseURL, ParseClusterURL, ParseFailoverURL),
// so every option it knows is also a query parameter. Timeouts not set in
// the URL are short, so a Redis outage fails requests quickly instead of
// hanging them.
func OpenRedis(cfg Config) (redis.UniversalClient, error) {
	u, err := url.Parse(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", redactErr(err))
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		opts, err := redis.ParseFailoverURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL (Sentinel): %w", err)
		}
		setDefaults(&opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.MaxRetries, cfg.DialTimeout)
		return redis.NewFailoverClient(opts), nil
	case q.Has("addr") || strings.HasSuffix(u.Scheme, "+cluster"):
		raw := cfg.RedisURL
		if scheme, ok := strings.CutSuffix(u.Scheme, "+cluster"); ok {
			raw = scheme + strings.TrimPrefix(raw, u.Scheme)
		}
		opts, err := redis.ParseClusterURL(raw)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL (cluster): %w", err)
		}
		setDefaults(&opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.MaxRetries, cfg.DialTimeout)
		return redis.NewClusterClient(opts), nil
	default:
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		setDefaults(&opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.MaxRetries, cfg.DialTimeout)
		return redis.NewClient(opts), nil
	}
}

// setDefaults fills in the options of any of the three client kinds that
// the URL left unset: dialling and waiting for a pooled connection within
// DEPENDENCY_DIAL_TIMEOUT, reads and writes within a second, one retry.
func setDefaults(dial, read, write, pool *time.Duration, retries *int, dialTimeout time.Duration) {
	for _, d := range []struct {
		opt *time.Duration
		def time.Duration
	}{{dial, dialTimeout}, {read, time.Second}, {write, time.Second}, {pool, dialTimeout}} {
		if *d.opt == 0 {
			*d.opt = d.def
		}
	}
	if *retries == 0 {
		*retries = 1
	}
}

// redactErr keeps a password in a malformed URL out of the error.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Conns are a service's connections to MongoDB and Redis, and the error
// mapping that counts their failures.
type Conns struct {
	Mongo    *mongo.Client
	DB       *mongo.Database
	Redis    redis.UniversalClient
	Failures Failures
}

// Open opens both connections (lazily: nothing is dialled yet) and counts
// their failures into m.
func Open(cfg Config, m *metrics.Metrics) (*Conns, error) {
	client, db, err := OpenMongo(cfg)
	if err != nil {
		return nil, err
	}
	rdb, err := OpenRedis(cfg)
	if err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	return &Conns{Mongo: client, DB: db, Redis: rdb, Failures: NewFailures(m)}, nil
}

// Close closes Redis, then MongoDB: the reverse of opening.
func (c *Conns) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return errors.Join(c.Redis.Close(), c.Mongo.Disconnect(ctx))
}

// EnsureUnique creates a unique index named field_unique on field of coll
// (nothing happens when it exists).
func EnsureUnique(ctx context.Context, coll *mongo.Collection, field string) error {
	_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: field, Value: 1}},
		Options: options.Index().SetUnique(true).SetName(field + "_unique"),
	})
	if err != nil {
		return fmt.Errorf("unique index on %s.%s: %w", coll.Name(), field, err)
	}
	return nil
}

// Retry calls fn until it succeeds or ctx is done, logging each failure:
// for start-up work (indexes) on a dependency that may come up later.
func Retry(ctx context.Context, logger *slog.Logger, what string, fn func(ctx context.Context) error) error {
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(attemptCtx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, errors.Join(err, ctx.Err()))
		}
		logger.Warn("start-up step failed, retrying", "step", what, "error", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, errors.Join(err, ctx.Err()))
		case <-time.After(time.Second):
		}
	}
}

// Failures counts failed dependency calls, per dependency and operation,
// and maps them to catalog errors.
type Failures struct{ m *metrics.Metrics }

// NewFailures returns a Failures that counts into m.
func NewFailures(m *metrics.Metrics) Failures { return Failures{m: m} }

// ExpectMongo starts the failure counts of the MongoDB operations a storage
// type performs at zero.
func (f Failures) ExpectMongo(ops ...metrics.Operation) {
	f.m.ExpectDependency(metrics.MongoDB, ops...)
}

// ExpectRedis starts the failure counts of the Redis operations a storage
// type performs at zero.
func (f Failures) ExpectRedis(ops ...metrics.Operation) { f.m.ExpectDependency(metrics.Redis, ops...) }

// MongoFailed counts a MongoDB failure of operation op and returns its
// catalog error: ServiceUnavailableError when the server cannot be reached,
// answered too late or ran out of time itself, InternalServerError otherwise. Domain
// outcomes (no document, duplicate key) are the caller's to check first.
func (f Failures) MongoFailed(op metrics.Operation, err error) error {
	f.m.DependencyError(metrics.MongoDB, op)
	if mongoUnreachable(err) {
		return apierr.Wrap(apierr.ServiceUnavailableError, fmt.Errorf("mongodb %s: %w", op, err))
	}
	return apierr.Wrap(apierr.InternalServerError, fmt.Errorf("mongodb %s: %w", op, err))
}

// mongoUnreachable reports whether err says the server could not be reached
// or answered too late: the client may retry. Beside the errors labelled
// NetworkError and a failed server selection, a connection the driver could
// not open (topology.ConnectionError: the dial, the name lookup or the
// handshake failed) and a pool the driver cleared because another operation
// failed so (a driver.RetryablePoolError) say so: both were seen while the
// dev MongoDB moved to another node, its Service name not resolving yet.
func mongoUnreachable(err error) bool {
	var (
		sel  topology.ServerSelectionError
		conn topology.ConnectionError
		pool driver.RetryablePoolError
	)
	return mongo.IsTimeout(err) || mongo.IsNetworkError(err) || errors.As(err, &sel) || serverTimedOut(err) ||
		errors.As(err, &conn) || (errors.As(err, &pool) && pool.Retryable()) ||
		errors.Is(err, mongo.ErrClientDisconnected) || errors.Is(err, context.DeadlineExceeded)
}

// serverTimedOut reports whether the server gave up on the operation because
// the time the driver gave it (maxTimeMS, from the request's deadline) ran
// out. MongoDB then answers MaxTimeMSExpired, which mongo.IsTimeout knows.
// FerretDB v1 does so only when it canceled the command itself (find,
// aggregate): a findAndModify gets its maxTimeMS as a deadline, and a
// PostgreSQL or SQLite read that hits a deadline or its own read timeout
// answers InternalError (code 1) with the timeout in the message (FerretDB
// v1.24 handler.handleMaxTimeMSError and findAndModifyDocument), e.g.
// "... sqlite.(*queryIterator).Next] context deadline exceeded" or "...
// timeout: read tcp 127.0.0.1:44772->127.0.0.1:5432: i/o timeout". Both
// mean the storage was too slow, which the client may retry, not a fault of
// ours.
func serverTimedOut(err error) bool {
	const internalError = 1
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code == internalError &&
		(strings.Contains(ce.Message, "timeout") || strings.Contains(ce.Message, context.DeadlineExceeded.Error()))
}

// RedisFailed counts a Redis failure of operation op and returns its
// catalog error, as MongoFailed does.
func (f Failures) RedisFailed(op metrics.Operation, err error) error {
	f.m.DependencyError(metrics.Redis, op)
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrClosed) ||
		errors.Is(err, redis.ErrPoolTimeout) {
		return apierr.Wrap(apierr.ServiceUnavailableError, fmt.Errorf("redis %s: %w", op, err))
	}
	return apierr.Wrap(apierr.InternalServerError, fmt.Errorf("redis %s: %w", op, err))
}
