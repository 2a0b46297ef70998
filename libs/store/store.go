// Package store opens the MongoDB and Redis connections both services use
// and turns their failures into catalog errors.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/server"
)

// OpenMongo returns a client for cfg.MongoURI and its cfg.MongoDatabase. The
// driver connects lazily and reconnects by itself; every call still needs a
// context with a deadline.
func OpenMongo(cfg server.Stores) (*mongo.Client, *mongo.Database, error) {
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

// OpenRedis returns a client for cfg.RedisURL with short timeouts, so a
// Redis outage fails requests quickly instead of hanging them.
func OpenRedis(cfg server.Stores) (*redis.Client, error) {
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	opts.DialTimeout = cfg.DialTimeout
	opts.ReadTimeout = time.Second
	opts.WriteTimeout = time.Second
	opts.PoolTimeout = cfg.DialTimeout
	opts.MaxRetries = 1
	return redis.NewClient(opts), nil
}

// Conns are a service's connections to MongoDB and Redis, and the error
// mapping that counts their failures.
type Conns struct {
	Mongo  *mongo.Client
	DB     *mongo.Database
	Redis  *redis.Client
	Errors Errors
}

// Open opens both connections (lazily: nothing is dialled yet) and counts
// their failures into m.
func Open(cfg server.Stores, m *metrics.Metrics) (*Conns, error) {
	client, db, err := OpenMongo(cfg)
	if err != nil {
		return nil, err
	}
	rdb, err := OpenRedis(cfg)
	if err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	return &Conns{Mongo: client, DB: db, Redis: rdb, Errors: NewErrors(m)}, nil
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

// Errors counts failed dependency calls and maps them to catalog errors.
type Errors struct{ m *metrics.Metrics }

// NewErrors returns an Errors that counts into m.
func NewErrors(m *metrics.Metrics) Errors { return Errors{m: m} }

// Mongo turns a MongoDB failure of operation op into a catalog error:
// ServiceUnavailableError when the server cannot be reached or answered too
// late, InternalServerError otherwise. Domain outcomes (no document,
// duplicate key) are the caller's to check first.
func (e Errors) Mongo(op string, err error) error {
	e.m.DependencyError(metrics.MongoDB, op)
	var sel topology.ServerSelectionError
	if mongo.IsTimeout(err) || mongo.IsNetworkError(err) || errors.As(err, &sel) ||
		errors.Is(err, mongo.ErrClientDisconnected) || errors.Is(err, context.DeadlineExceeded) {
		return apierr.Unavailable(fmt.Errorf("mongodb %s: %w", op, err))
	}
	return apierr.Wrap(apierr.InternalServerError, fmt.Errorf("mongodb %s: %w", op, err))
}

// Redis turns a Redis failure of operation op into a catalog error, as Mongo
// does.
func (e Errors) Redis(op string, err error) error {
	e.m.DependencyError(metrics.Redis, op)
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrClosed) ||
		errors.Is(err, redis.ErrPoolTimeout) {
		return apierr.Unavailable(fmt.Errorf("redis %s: %w", op, err))
	}
	return apierr.Wrap(apierr.InternalServerError, fmt.Errorf("redis %s: %w", op, err))
}
