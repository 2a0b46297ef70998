package denylist_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/denylist"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/testkit"
	"github.com/moviebag/moviebag/libs/token"
)

// replica is one service replica's view of the denylist: its own Redis
// client (dials can be held back, commands are counted) and its mirror.
type replica struct {
	deny     *denylist.Denylist
	rdb      *redis.Client
	name     string
	commands atomic.Int64
	// dialFailures counts connections that could not be made.
	dialFailures atomic.Int64
	gate         sync.RWMutex // held by the test: new connections wait
}

func (r *replica) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *replica) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.commands.Add(1)
		return next(ctx, cmd)
	}
}

func (r *replica) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.commands.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// newReplica connects to url and, unless follow is false, runs the mirror
// until the test ends.
func newReplica(t *testing.T, url, prefix, name string, follow bool) *replica {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name}
	opts.ClientName = name
	opts.DialTimeout, opts.ReadTimeout, opts.MaxRetries = time.Second, time.Second, 0
	dial := opts.Dialer
	if dial == nil {
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	opts.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		r.gate.RLock()
		defer r.gate.RUnlock()
		conn, err := dial(ctx, network, addr)
		if err != nil {
			r.dialFailures.Add(1)
		}
		return conn, err
	}
	r.rdb = redis.NewClient(opts)
	r.rdb.AddHook(r)
	t.Cleanup(func() { _ = r.rdb.Close() })
	r.deny = denylist.New(r.rdb, prefix, store.NewFailures(metrics.New(prometheus.NewRegistry(), "test")))
	if follow {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); r.deny.Follow(ctx, denylist.FollowOptions{Ping: 500 * time.Millisecond}) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return r
}

// waitFor is testkit.Eventually for a condition that holds or not; what
// names it in the failure.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, within, func() error {
		if !cond() {
			return errors.New(what)
		}
		return nil
	})
}

func revoked(t *testing.T, d *denylist.Denylist, jti string) bool {
	t.Helper()
	ok, err := d.Denies(context.Background(), jtiClaims(jti))
	if err != nil {
		t.Fatalf("Denies(%s): %v", jti, err)
	}
	return ok
}

// jtiClaims are the claims of a token with id jti and no user.
func jtiClaims(jti string) *token.Claims {
	return &token.Claims{RegisteredClaims: jwt.RegisteredClaims{ID: jti}}
}

func prefixFor(t *testing.T) string { return "test:" + strings.ReplaceAll(t.Name(), "/", "_") + ":" }

// A synced mirror answers from memory: no Redis command per lookup.
func TestDenylistMirrorAnswersWithoutRedis(t *testing.T) {
	url, prefix := testkit.RedisURL(t), prefixFor(t)
	auth := newReplica(t, url, prefix, "auth", false)
	movies := newReplica(t, url, prefix, "movies", true)
	waitFor(t, 10*time.Second, "mirror in sync", movies.deny.Synced)

	if err := auth.deny.Revoke(context.Background(), "jti-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "revocation mirrored", func() bool { return revoked(t, movies.deny, "jti-1") })
	before := movies.commands.Load()
	for range 100 {
		if !revoked(t, movies.deny, "jti-1") || revoked(t, movies.deny, "jti-2") {
			t.Fatal("mirror answers wrongly")
		}
	}
	if n := movies.commands.Load() - before; n != 0 {
		t.Fatalf("%d Redis commands for 200 lookups on a synced mirror, want 0", n)
	}
}

// Revocations made before a replica starts are in its mirror once it is in
// sync (the resync reads every key of the prefix), with the key's TTL.
func TestDenylistResyncReadsExistingKeys(t *testing.T) {
	url, prefix := testkit.RedisURL(t), prefixFor(t)
	auth := newReplica(t, url, prefix, "auth", false)
	for _, jti := range []string{"a", "b", "c"} {
		if err := auth.deny.Revoke(context.Background(), jti, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	movies := newReplica(t, url, prefix, "movies", true)
	waitFor(t, 10*time.Second, "mirror in sync", movies.deny.Synced)
	before := movies.commands.Load()
	for _, jti := range []string{"a", "b", "c"} {
		if !revoked(t, movies.deny, jti) {
			t.Fatalf("%s revoked before the replica started, not in its mirror", jti)
		}
	}
	if movies.commands.Load() != before {
		t.Fatal("lookups went to Redis")
	}
}

// A logged-out token is refused by every replica of the other service
// within a second of the logout.
func TestDenylistRevocationReachesEveryReplicaWithinOneSecond(t *testing.T) {
	url, prefix := testkit.RedisURL(t), prefixFor(t)
	auth := newReplica(t, url, prefix, "auth", false)
	var replicas []*replica
	for i := range 5 {
		r := newReplica(t, url, prefix, "movies-"+string(rune('a'+i)), true)
		replicas = append(replicas, r)
	}
	for _, r := range replicas {
		waitFor(t, 10*time.Second, r.name+" in sync", r.deny.Synced)
	}
	if err := auth.deny.Revoke(context.Background(), "logged-out", time.Hour); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, r := range replicas {
		waitFor(t, time.Second-time.Since(start), r.name+" refuses the logged-out token",
			func() bool { return revoked(t, r.deny, "logged-out") })
	}
}

// A subscriber that loses its connection misses what is published while it
// is away; it is not trusted again until it has resubscribed and resynced,
// and then it knows the revocation it missed.
func TestDenylistSubscriberThatMissesAMessageResyncs(t *testing.T) {
	url, prefix := testkit.RedisURL(t), prefixFor(t)
	auth := newReplica(t, url, prefix, "auth", false)
	name := "movies-" + strings.ReplaceAll(prefix, ":", "-")
	movies := newReplica(t, url, prefix, name, true)
	waitFor(t, 10*time.Second, "mirror in sync", movies.deny.Synced)
	resyncs := movies.deny.Resyncs()

	// Keep the replica away: no new connection until the gate opens. Then
	// kill its subscriber connection.
	movies.gate.Lock()
	opened := false
	open := func() {
		if !opened {
			opened = true
			movies.gate.Unlock()
		}
	}
	defer open()
	admin := newReplica(t, url, prefix, "admin", false).rdb
	ctx := context.Background()
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") && strings.Contains(line, "cmd=subscribe") {
			id := strings.TrimPrefix(strings.Fields(line)[0], "id=")
			if err := admin.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed != 1 {
		t.Fatalf("found %d subscriber connections of %s to kill:\n%s", killed, name, list)
	}
	waitFor(t, 5*time.Second, "mirror out of sync after losing its connection", func() bool { return !movies.deny.Synced() })

	// Published while nobody of the replica listens: the message is lost.
	if n, err := admin.PubSubNumSub(ctx, prefix+"revocations").Result(); err != nil || n[prefix+"revocations"] != 0 {
		t.Fatalf("subscribers while away: %v %v", n, err)
	}
	if err := auth.deny.Revoke(ctx, "missed", time.Hour); err != nil {
		t.Fatal(err)
	}

	open()
	waitFor(t, 10*time.Second, "resubscribed and resynced", func() bool {
		return movies.deny.Synced() && movies.deny.Resyncs() > resyncs
	})
	before := movies.commands.Load()
	if !revoked(t, movies.deny, "missed") {
		t.Fatal("the revocation published while the replica was away is not in its mirror")
	}
	if movies.commands.Load() != before {
		t.Fatal("answered from Redis, not from the mirror")
	}
}

// While the mirror is not in sync, Denies asks Redis, and fails closed
// (503) when Redis cannot be asked; Revoke fails the same way.
func TestDenylistNotInSyncFailsClosed(t *testing.T) {
	prefix := prefixFor(t)
	dead := newReplica(t, "redis://"+testkit.FreeAddr(t)+"/0", prefix, "movies", true)
	waitFor(t, 10*time.Second, "Follow tried to connect and failed", func() bool { return dead.dialFailures.Load() > 0 })
	if dead.deny.Synced() {
		t.Fatal("in sync without a Redis")
	}
	if _, err := dead.deny.Denies(context.Background(), jtiClaims("x")); !apierr.Is(err, apierr.ServiceUnavailableError) {
		t.Fatalf("Denies without Redis: got %v, want ServiceUnavailableError", err)
	}
	if err := dead.deny.Revoke(context.Background(), "x", time.Hour); !apierr.Is(err, apierr.ServiceUnavailableError) {
		t.Fatalf("Revoke without Redis: got %v, want ServiceUnavailableError", err)
	}

	// Not following at all: every lookup is a Redis lookup, and right.
	url := testkit.RedisURL(t)
	auth := newReplica(t, url, prefix, "auth", false)
	plain := newReplica(t, url, prefix, "plain", false)
	if err := auth.deny.Revoke(context.Background(), "y", time.Hour); err != nil {
		t.Fatal(err)
	}
	before := plain.commands.Load()
	if !revoked(t, plain.deny, "y") || plain.commands.Load() == before {
		t.Fatal("a denylist that does not follow must ask Redis")
	}
}

// A token past exp but inside the verifiers' leeway is still accepted, so
// its revocation is kept (until exp + leeway); one past that needs no entry.
func TestRevokeCoversTheLeewayOnly(t *testing.T) {
	errs := store.NewFailures(metrics.New(prometheus.NewRegistry(), "test"))
	deny := denylist.New(openRedis(t, testkit.RedisURL(t)), "test:"+t.Name()+":", errs)
	for jti, ttl := range map[string]time.Duration{"in-leeway": -8 * time.Second, "gone": -time.Minute} {
		if err := deny.Revoke(context.Background(), jti, ttl); err != nil {
			t.Fatal(err)
		}
	}
	if revoked, err := deny.Denies(context.Background(), jtiClaims("in-leeway")); err != nil || !revoked {
		t.Errorf("8 s past exp: revoked=%v err=%v, want revoked", revoked, err)
	}
	if revoked, err := deny.Denies(context.Background(), jtiClaims("gone")); err != nil || revoked {
		t.Errorf("past exp + leeway: revoked=%v err=%v, want no entry", revoked, err)
	}
}
