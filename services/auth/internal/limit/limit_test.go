package limit_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/testkit"
	"github.com/moviebag/moviebag/services/auth/internal/limit"
)

// The login limits count and refuse alike on one server, a Redis Cluster
// (each window's commands touch one key, so one slot) and a Sentinel-managed
// primary.
func TestWindowOnEveryRedisTopology(t *testing.T) {
	for name, url := range testkit.RedisTopologies(t) {
		t.Run(name, func(t *testing.T) {
			rdb, err := store.OpenRedis(store.Config{RedisURL: url, DialTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = rdb.Close() }()
			errs := store.NewFailures(metrics.New(prometheus.NewRegistry(), "test"))
			w := limit.New(rdb, errs, "test:"+testkit.Database(t)+":login:", 3, time.Minute)
			ctx := context.Background()
			for _, key := range []string{"a@example.com", "b@example.com", "c@example.com"} {
				for i := range 4 {
					ok, retry, err := w.Hit(ctx, key)
					if err != nil {
						t.Fatal(err)
					}
					if want := i < 3; ok != want || (!ok && retry <= 0) {
						t.Fatalf("%s hit %d: allowed=%v retry=%v, want allowed=%v", key, i+1, ok, retry, want)
					}
				}
				if err := w.Forgive(ctx, key); err != nil {
					t.Fatal(err)
				}
				if ok, _, err := w.Hit(ctx, key); err != nil || !ok {
					t.Fatalf("%s after one forgiven: allowed=%v err=%v", key, ok, err)
				}
			}
		})
	}
}
