package denylist_test

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/denylist"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/testkit"
)

// openRedis opens REDIS_URL as the services do.
func openRedis(t *testing.T, redisURL string) redis.UniversalClient {
	t.Helper()
	rdb, err := store.OpenRedis(store.Config{RedisURL: redisURL, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func following(t *testing.T, rdb redis.UniversalClient, prefix string) *denylist.Denylist {
	t.Helper()
	d := denylist.New(rdb, prefix, store.NewFailures(metrics.New(prometheus.NewRegistry(), "test")))
	t.Cleanup(d.Start(context.Background(), denylist.FollowOptions{Ping: 500 * time.Millisecond}))
	return d
}

// On a 3-master Redis Cluster: revocations spread over every master are all
// found by the resync (a SCAN of each master), later ones arrive by pub/sub,
// and a denylist that does not follow finds them by key.
func TestDenylistOnRedisCluster(t *testing.T) {
	clusterURL, prefix := testkit.RedisClusterURL(t), prefixFor(t)
	rdb := openRedis(t, clusterURL)
	cluster, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("REDIS_URL %s opened a %T, want a cluster client", clusterURL, rdb)
	}
	auth := denylist.New(rdb, prefix, store.NewFailures(metrics.New(prometheus.NewRegistry(), "test")))
	ctx := context.Background()
	const n = 60
	for i := range n {
		if err := auth.Revoke(ctx, fmt.Sprintf("before-%d", i), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// The keys really are spread: every master holds some.
	var masters atomic.Int64 // ForEachMaster runs concurrently
	if err := cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		keys, _, err := c.Scan(ctx, 0, prefix+"*", 1000).Result()
		if len(keys) > 0 {
			masters.Add(1)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if masters.Load() != 3 {
		t.Fatalf("denylist keys on %d masters, want all 3", masters.Load())
	}

	movies := following(t, openRedis(t, clusterURL), prefix)
	waitFor(t, 20*time.Second, "mirror in sync on the cluster", movies.Synced)
	for i := range n {
		if !revoked(t, movies, fmt.Sprintf("before-%d", i)) {
			t.Fatalf("before-%d not found by the resync", i)
		}
	}
	if err := auth.Revoke(ctx, "after", time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "revocation published on the cluster reaches the mirror", func() bool { return revoked(t, movies, "after") })

	plain := denylist.New(openRedis(t, clusterURL), prefix, store.NewFailures(metrics.New(prometheus.NewRegistry(), "test")))
	if !revoked(t, plain, "after") || revoked(t, plain, "never") {
		t.Fatal("lookup by key on the cluster answers wrongly")
	}
}

// On a Sentinel-managed primary with a replica, failed over during the
// test: revocations before and after the failover are refused, logouts
// during it fail closed or succeed (never silently lost), and the mirror is
// in sync again afterwards.
func TestDenylistAcrossSentinelFailover(t *testing.T) {
	sentinelURL, prefix := testkit.RedisSentinelURL(t), prefixFor(t)
	u, err := url.Parse(sentinelURL)
	if err != nil {
		t.Fatal(err)
	}
	master := u.Query().Get("master_name")
	rdb := openRedis(t, sentinelURL)
	auth := denylist.New(rdb, prefix, store.NewFailures(metrics.New(prometheus.NewRegistry(), "test")))
	movies := following(t, openRedis(t, sentinelURL), prefix)
	waitFor(t, 20*time.Second, "mirror in sync", movies.Synced)
	ctx := context.Background()
	if err := auth.Revoke(ctx, "before", time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "revocation mirrored", func() bool { return revoked(t, movies, "before") })

	sentinel := redis.NewSentinelClient(&redis.Options{Addr: u.Host, DialTimeout: time.Second})
	defer func() { _ = sentinel.Close() }()
	old, err := sentinel.GetMasterAddrByName(ctx, master).Result()
	if err != nil {
		t.Fatal(err)
	}
	// The sentinel learns of the replica from the primary's INFO (every
	// few seconds): until then it has no replica to promote.
	waitFor(t, 60*time.Second, "sentinel accepts the failover", func() bool {
		return sentinel.Failover(ctx, master).Err() == nil
	})
	waitFor(t, 60*time.Second, "replica promoted", func() bool {
		now, err := sentinel.GetMasterAddrByName(ctx, master).Result()
		return err == nil && now[1] != old[1]
	})
	// Writes fail (503) until the client finds the new primary; none is
	// acknowledged and lost.
	waitFor(t, 30*time.Second, "logout accepted by the new primary", func() bool {
		return auth.Revoke(ctx, "after", time.Hour) == nil
	})
	waitFor(t, 30*time.Second, "mirror in sync after the failover", func() bool {
		ok, err := movies.Denies(ctx, jtiClaims("after"))
		return err == nil && ok && movies.Synced()
	})
	if !revoked(t, movies, "before") {
		t.Fatal("revocation from before the failover lost")
	}
}
