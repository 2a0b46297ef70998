package devstore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/moviebag/moviebag/deploy/local/devstore"
)

// A machine with only Go still runs `make run`: without redis-server on
// PATH, an in-process Redis stands in, unless a real one is required.
func TestRedisFallback(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // nothing on it
	ctx := context.Background()
	if _, _, _, err := devstore.StartRedis(ctx, t.TempDir(), true, nil); err == nil || !strings.Contains(err.Error(), "redis-server is not on PATH") {
		t.Fatalf("required redis-server: got %v", err)
	}
	url, kind, stop, err := devstore.StartRedis(ctx, t.TempDir(), false, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if kind != "miniredis" {
		t.Fatalf("kind %q", kind)
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer func() { _ = rdb.Close() }()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("fallback Redis does not answer: %v", err)
	}
}

// Both stores start on free ports and answer, with their data under a
// relative directory as `make run` gives them (.data): FerretDB stores a
// document and finds it again, redis-server sets and gets a key.
func TestStart(t *testing.T) {
	t.Chdir(t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := devstore.Start(ctx, devstore.Options{Dir: ".data", RequireRedisServer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.RedisKind != "redis-server" || !strings.HasPrefix(s.MongoURI, "mongodb://127.0.0.1:") {
		t.Errorf("%+v", s)
	}

	client, err := mongo.Connect(options.Client().ApplyURI(s.MongoURI))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	if err := client.Ping(ctx, nil); err != nil {
		t.Fatalf("FerretDB does not answer: %v", err)
	}
	coll := client.Database("devstore_test").Collection("films")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "name", Value: "Heat"}, {Key: "year", Value: 1995}}); err != nil {
		t.Fatalf("FerretDB insert: %v", err)
	}
	var got struct {
		Name string `bson:"name"`
		Year int    `bson:"year"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "name", Value: "Heat"}}).Decode(&got); err != nil {
		t.Fatalf("FerretDB find: %v", err)
	}
	if got.Name != "Heat" || got.Year != 1995 {
		t.Errorf("FerretDB found %+v, want Heat 1995", got)
	}
	if entries, err := os.ReadDir(filepath.Join(".data", "ferretdb")); err != nil || len(entries) == 0 {
		t.Errorf("no FerretDB files under .data/ferretdb (%v)", err)
	}

	opts, err := redis.ParseURL(s.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer func() { _ = rdb.Close() }()
	if err := rdb.Set(ctx, "devstore-test", "v", 0).Err(); err != nil {
		t.Fatalf("redis-server set: %v", err)
	}
	if v, err := rdb.Get(ctx, "devstore-test").Result(); err != nil || v != "v" {
		t.Errorf("redis-server get: %q, %v; want v", v, err)
	}
}
