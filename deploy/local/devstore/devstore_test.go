package devstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

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
// relative directory as `make run` gives them (.data).
func TestStart(t *testing.T) {
	t.Chdir(t.TempDir())
	s, err := devstore.Start(context.Background(), devstore.Options{Dir: ".data", RequireRedisServer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.RedisKind != "redis-server" || !strings.HasPrefix(s.MongoURI, "mongodb://127.0.0.1:") {
		t.Errorf("%+v", s)
	}
	opts, _ := redis.ParseURL(s.RedisURL)
	rdb := redis.NewClient(opts)
	defer func() { _ = rdb.Close() }()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Errorf("redis-server does not answer: %v", err)
	}
}
