package store_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/testkit"
)

// mapped checks that a storage failure became the catalog error want, kept
// its cause for the logs, and was counted once under dependency and op.
func mapped(t *testing.T, m *metrics.Metrics, dep metrics.Dependency, op metrics.Operation, cause, got error, want apierr.Code) {
	t.Helper()
	if !apierr.Is(got, want) {
		t.Errorf("%s %s failure %v mapped to %v, want %s", dep, op, cause, got, want)
	}
	// The driver's error types are not all comparable: compare the text.
	var e *apierr.Error
	if !errors.As(got, &e) || e.Cause == nil || !strings.Contains(e.Cause.Error(), cause.Error()) {
		t.Errorf("%v does not keep its cause %v for the logs", got, cause)
	}
	if n := testutil.ToFloat64(m.DependencyErrors.WithLabelValues(string(dep), string(op))); n != 1 {
		t.Errorf("%s %s failures counted %v, want 1", dep, op, n)
	}
}

// The storage error mapping against a real FerretDB: a server that cannot be
// reached, a deadline and a closed client are ServiceUnavailableError (the
// client may retry); an error the server answers is InternalServerError.
// Every failure is counted by operation.
func TestMongoErrors(t *testing.T) {
	live := store.Config{MongoURI: testkit.MongoURI(t), MongoDatabase: testkit.Database(t), DialTimeout: 2 * time.Second}
	tests := []struct {
		name string
		cfg  store.Config
		call func(ctx context.Context, db *mongo.Database) error
		want apierr.Code
	}{
		{"no server", store.Config{MongoURI: "mongodb://" + testkit.FreeAddr(t), MongoDatabase: "x", DialTimeout: 200 * time.Millisecond},
			func(ctx context.Context, db *mongo.Database) error {
				_, err := db.Collection("c").InsertOne(ctx, bson.D{{Key: "a", Value: 1}})
				return err
			}, apierr.ServiceUnavailableError},
		{"deadline passed", live,
			func(ctx context.Context, db *mongo.Database) error {
				ctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
				defer cancel()
				return db.Collection("c").FindOne(ctx, bson.D{}).Err()
			}, apierr.ServiceUnavailableError},
		{"client disconnected", live,
			func(ctx context.Context, db *mongo.Database) error {
				if err := db.Client().Disconnect(ctx); err != nil {
					return err
				}
				return db.Collection("c").FindOne(ctx, bson.D{}).Err()
			}, apierr.ServiceUnavailableError},
		{"server refuses the command", live,
			func(ctx context.Context, db *mongo.Database) error {
				_, err := db.Collection("c").UpdateOne(ctx, bson.D{}, bson.D{{Key: "$noSuchOperator", Value: bson.D{}}})
				return err
			}, apierr.InternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, db, err := store.OpenMongo(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = client.Disconnect(context.Background()) }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cause := tt.call(ctx, db)
			if cause == nil {
				t.Fatal("the call did not fail")
			}
			m := metrics.New(prometheus.NewRegistry(), "test")
			mapped(t, m, metrics.MongoDB, metrics.Find, cause, store.NewFailures(m).MongoFailed(metrics.Find, cause), tt.want)
		})
	}
}

// A server that ran out of the time the driver gave it (maxTimeMS, from the
// request's deadline) is ServiceUnavailableError too: MongoDB says so with
// MaxTimeMSExpired, FerretDB v1 with an InternalError carrying its
// backend's timeout (the answer seen under load in make bench, as the driver
// returns it). Any other InternalError stays InternalServerError.
func TestMongoServerTimeouts(t *testing.T) {
	tests := []struct {
		name  string
		cause mongo.CommandError
		want  apierr.Code
	}{
		{"MongoDB MaxTimeMSExpired", mongo.CommandError{Code: 50, Name: "MaxTimeMSExpired",
			Message: "Executor error during find command :: caused by :: operation exceeded time limit"}, apierr.ServiceUnavailableError},
		{"FerretDB backend read timeout", mongo.CommandError{Code: 1, Name: "InternalError",
			Message: "[msg_find.go:344 handler.handleMaxTimeMSError] [query_iterator.go:92 postgresql.(*queryIterator).Next] " +
				"timeout: read tcp 127.0.0.1:44772->127.0.0.1:5432: i/o timeout"}, apierr.ServiceUnavailableError},
		{"FerretDB backend deadline", mongo.CommandError{Code: 1, Name: "InternalError",
			Message: "[msg_find.go:344 handler.handleMaxTimeMSError] context deadline exceeded"}, apierr.ServiceUnavailableError},
		{"another internal error", mongo.CommandError{Code: 1, Name: "InternalError",
			Message: "[msg_find.go:344 handler.handleMaxTimeMSError] invalid document"}, apierr.InternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New(prometheus.NewRegistry(), "test")
			mapped(t, m, metrics.MongoDB, metrics.Find, tt.cause, store.NewFailures(m).MongoFailed(metrics.Find, tt.cause), tt.want)
		})
	}
}

// The driver's errors for a server it had found but could not open a
// connection to are ServiceUnavailableError: seen on the test cluster while
// the dev MongoDB moved to another node and its Service name did not resolve
// (make test-cluster-disruption), they were answered 500 before. The pool
// error is the driver's unexported poolClearedError, which it knows only as a
// driver.RetryablePoolError; retryablePoolError stands in for it here.
func TestMongoConnectionFailures(t *testing.T) {
	lookup := &net.DNSError{Err: "server misbehaving", Name: "moviebag-mongodb", Server: "10.96.0.10:53"}
	handshake := topology.ConnectionError{ConnectionID: "moviebag-mongodb:27017[-3]",
		Wrapped: fmt.Errorf("failed to connect to moviebag-mongodb:27017: %w", &net.OpError{Op: "dial", Net: "tcp", Err: lookup})}
	tests := []struct {
		name  string
		cause error
		want  apierr.Code
	}{
		{"a connection that could not be opened", fmt.Errorf("find: %w", handshake), apierr.ServiceUnavailableError},
		{"a pool cleared after such a failure", retryablePoolError{retryable: true, err: handshake}, apierr.ServiceUnavailableError},
		{"a pool error the driver would not retry", retryablePoolError{retryable: false, err: errors.New("pool closed")}, apierr.InternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New(prometheus.NewRegistry(), "test")
			mapped(t, m, metrics.MongoDB, metrics.Find, tt.cause, store.NewFailures(m).MongoFailed(metrics.Find, tt.cause), tt.want)
		})
	}
}

// retryablePoolError is shaped as the driver's poolClearedError.
var _ driver.RetryablePoolError = retryablePoolError{}

// retryablePoolError: see TestMongoConnectionFailures.
type retryablePoolError struct {
	retryable bool
	err       error
}

func (e retryablePoolError) Error() string {
	return "connection pool for moviebag-mongodb:27017 was cleared because another operation failed with: " + e.err.Error()
}
func (e retryablePoolError) Retryable() bool { return e.retryable }

// A real FerretDB that runs out of the time the driver gave it answers
// InternalError (code 1) with "context deadline exceeded" in the message,
// not MaxTimeMSExpired, and that answer is ServiceUnavailableError like the
// recorded ones of TestMongoServerTimeouts. FerretDB v1 gives findAndModify
// its maxTimeMS as a context deadline (find and aggregate get a
// cancellation, which it does answer MaxTimeMSExpired); a findAndModify
// whose filter matches none of 10,000 documents reads every one of them, a
// few hundred times longer than the 1 ms it is given.
func TestFerretDBBackendTimeout(t *testing.T) {
	cfg := store.Config{MongoURI: testkit.MongoURI(t), MongoDatabase: testkit.Database(t), DialTimeout: 2 * time.Second}
	client, db, err := store.OpenMongo(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	// No deadline on the context: the driver would send maxTimeMS of its own
	// from one, and its own timeout could answer first. The command's
	// maxTimeMS is the only limit; the cancel bounds the test.
	ctx, cancel := context.WithCancel(t.Context())
	defer time.AfterFunc(30*time.Second, cancel).Stop()
	var info bson.M
	if err := db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		t.Fatal(err)
	}
	if _, ok := info["ferretdbVersion"]; !ok {
		t.Skipf("the server is not FerretDB (version %v): MongoDB answers MaxTimeMSExpired, recorded in TestMongoServerTimeouts", info["version"])
	}
	const n = 10_000
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "n", Value: i}}
	}
	if _, err := db.Collection("big").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	cause := db.RunCommand(ctx, bson.D{
		{Key: "findAndModify", Value: "big"},
		{Key: "query", Value: bson.D{{Key: "n", Value: bson.D{{Key: "$lt", Value: -1}}}}},
		{Key: "update", Value: bson.D{{Key: "$set", Value: bson.D{{Key: "seen", Value: true}}}}},
		{Key: "maxTimeMS", Value: 1},
	}).Err()
	var ce mongo.CommandError
	if !errors.As(cause, &ce) || ce.Code != 1 || mongo.IsTimeout(cause) {
		t.Fatalf("findAndModify past its maxTimeMS answered %v; want an InternalError (code 1) that mongo.IsTimeout does not know", cause)
	}
	m := metrics.New(prometheus.NewRegistry(), "test")
	mapped(t, m, metrics.MongoDB, metrics.Update, cause, store.NewFailures(m).MongoFailed(metrics.Update, cause), apierr.ServiceUnavailableError)
}

// The same mapping for a real redis-server.
func TestRedisErrors(t *testing.T) {
	live := store.Config{RedisURL: testkit.RedisURL(t), DialTimeout: 2 * time.Second}
	key := testkit.Database(t) + ":list"
	tests := []struct {
		name string
		cfg  store.Config
		call func(ctx context.Context, rdb redis.UniversalClient) error
		want apierr.Code
	}{
		{"no server", store.Config{RedisURL: "redis://" + testkit.FreeAddr(t) + "/0", DialTimeout: 200 * time.Millisecond},
			func(ctx context.Context, rdb redis.UniversalClient) error { return rdb.Get(ctx, "k").Err() },
			apierr.ServiceUnavailableError},
		{"deadline passed", live,
			func(ctx context.Context, rdb redis.UniversalClient) error {
				ctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
				defer cancel()
				return rdb.Get(ctx, "k").Err()
			}, apierr.ServiceUnavailableError},
		{"client closed", live,
			func(ctx context.Context, rdb redis.UniversalClient) error {
				if err := rdb.Close(); err != nil {
					return err
				}
				return rdb.Get(ctx, "k").Err()
			}, apierr.ServiceUnavailableError},
		{"server refuses the command", live,
			func(ctx context.Context, rdb redis.UniversalClient) error {
				if err := rdb.RPush(ctx, key, "x").Err(); err != nil {
					return err
				}
				defer rdb.Del(context.WithoutCancel(ctx), key)
				return rdb.Incr(ctx, key).Err() // WRONGTYPE
			}, apierr.InternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb, err := store.OpenRedis(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = rdb.Close() }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cause := tt.call(ctx, rdb)
			if cause == nil {
				t.Fatal("the call did not fail")
			}
			if errors.Is(cause, redis.Nil) {
				t.Fatalf("the call found nothing instead of failing: %v", cause)
			}
			m := metrics.New(prometheus.NewRegistry(), "test")
			mapped(t, m, metrics.Redis, metrics.Get, cause, store.NewFailures(m).RedisFailed(metrics.Get, cause), tt.want)
		})
	}
}

// A malformed REDIS_URL is refused without echoing its password.
func TestOpenRedisRedactsPassword(t *testing.T) {
	_, err := store.OpenRedis(store.Config{RedisURL: "redis://user:s3cret@%zz:6379/0"})
	if err == nil {
		t.Fatal("malformed URL accepted")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the password", err)
	}
}
