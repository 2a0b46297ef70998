package sessions_test

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/testkit"
	"github.com/moviebag/moviebag/services/auth/internal/opaque"
	"github.com/moviebag/moviebag/services/auth/internal/sessions"
)

// newStore returns a Store on the test Redis of url, in a key space of its
// own.
func newStore(t *testing.T, url string, idle, maxLife time.Duration) (*sessions.Store, redis.UniversalClient, string) {
	t.Helper()
	rdb, err := store.OpenRedis(store.Config{RedisURL: url, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	prefix := "test:" + testkit.Database(t) + ":"
	errs := store.NewFailures(metrics.New(prometheus.NewRegistry(), "test"))
	return sessions.New(rdb, errs, prefix, idle, maxLife), rdb, prefix
}

func mustParse(t *testing.T, tok string) sessions.Token {
	t.Helper()
	p, err := sessions.ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// mustStart starts the session sid of user and returns its refresh token.
func mustStart(t *testing.T, s *sessions.Store, user, sid string) string {
	t.Helper()
	tok, err := s.Start(context.Background(), user, sid, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// withSecret is a refresh token of the session sid with a secret of its
// own: well formed, and never issued.
func withSecret(sid string) string {
	secret, _ := opaque.New()
	return sid + "." + secret
}

// keysUnder lists every key under prefix, on every master of a cluster.
func keysUnder(t *testing.T, rdb redis.UniversalClient, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var (
		mu   sync.Mutex
		keys []string
	)
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			keys = append(keys, it.Val())
			mu.Unlock()
		}
		return it.Err()
	}
	var err error
	if cluster, ok := rdb.(*redis.ClusterClient); ok {
		err = cluster.ForEachMaster(ctx, scan)
	} else {
		err = scan(ctx, rdb.(*redis.Client))
	}
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

func rotate(t *testing.T, s *sessions.Store, tok string) sessions.Rotation {
	t.Helper()
	r, err := s.Rotate(context.Background(), mustParse(t, tok))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A refresh token works once: rotation gives a successor of the same
// session, the spent token presented again is reuse and ends the session,
// so the successor is refused too, and so is every later presentation.
// On one server, a Redis Cluster and a Sentinel-managed primary.
func TestRotationSpendsAndReuseEndsTheSession(t *testing.T) {
	for name, url := range testkit.RedisTopologies(t) {
		t.Run(name, func(t *testing.T) {
			s, _, _ := newStore(t, url, time.Hour, 24*time.Hour)
			ctx := context.Background()
			began := time.Unix(time.Now().Unix(), 0)
			sid := uuid.NewString()
			first, err := s.Start(ctx, "u1", sid, began)
			if err != nil {
				t.Fatal(err)
			}
			if len(first) != sessions.TokenLen || !strings.HasPrefix(first, sid+".") {
				t.Fatalf("refresh token %q is not %s.<secret>", first, sid)
			}
			r := rotate(t, s, first)
			if r.Outcome != sessions.Rotated || r.SessionID != sid || r.User != "u1" || !r.Began.Equal(began) ||
				!strings.HasPrefix(r.Next, sid+".") || r.Next == first {
				t.Fatalf("rotation %+v", r)
			}
			second := r.Next
			if r := rotate(t, s, second); r.Outcome != sessions.Rotated {
				t.Fatalf("the successor: %+v", r)
			}
			if r := rotate(t, s, first); r.Outcome != sessions.Reused || !r.Detected || r.SessionID != sid || r.User != "u1" {
				t.Fatalf("the spent token again: %+v, want Reused, detected", r)
			}
			for _, tok := range []string{first, second} {
				if r := rotate(t, s, tok); r.Outcome != sessions.Reused || r.Detected || r.SessionID != sid {
					t.Errorf("after reuse: %+v, want Reused, not detected again", r)
				}
			}
			for name, tok := range map[string]string{
				"a wrong secret for the ended session": withSecret(sid),
				"a session that never was":             withSecret(uuid.NewString()),
			} {
				if r := rotate(t, s, tok); r != (sessions.Rotation{}) {
					t.Errorf("%s: %+v, want Unknown", name, r)
				}
			}
		})
	}
}

// Of concurrent rotations of one token exactly one succeeds; every other is
// reuse (it presents a token that has just been spent).
func TestConcurrentRotationsOfOneTokenOneWins(t *testing.T) {
	s, _, _ := newStore(t, testkit.RedisURL(t), time.Hour, 24*time.Hour)
	tok, err := s.Start(context.Background(), "u1", uuid.NewString(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	outcomes := make([]sessions.Outcome, n)
	for i := range n {
		wg.Go(func() { outcomes[i] = rotate(t, s, tok).Outcome })
	}
	wg.Wait()
	won := 0
	for _, o := range outcomes {
		switch o {
		case sessions.Rotated:
			won++
		case sessions.Reused:
		default:
			t.Errorf("outcome %v", o)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent rotations of one token succeeded, want 1", won, n)
	}
}

// A session ends idle, at its end whatever its use, on End and with every
// session of its user but the one kept; only the hash of a token is stored.
func TestSessionsEnd(t *testing.T) {
	ctx := context.Background()
	t.Run("idle", func(t *testing.T) {
		s, _, _ := newStore(t, testkit.RedisURL(t), 200*time.Millisecond, time.Hour)
		tok := mustStart(t, s, "u1", uuid.NewString())
		time.Sleep(300 * time.Millisecond)
		if r := rotate(t, s, tok); r.Outcome != sessions.Unknown {
			t.Errorf("after the idle life: %+v", r)
		}
	})
	t.Run("max", func(t *testing.T) {
		s, _, _ := newStore(t, testkit.RedisURL(t), 400*time.Millisecond, 400*time.Millisecond)
		tok := mustStart(t, s, "u1", uuid.NewString())
		for range 3 { // used within the idle life each time: only the end ends it
			time.Sleep(150 * time.Millisecond)
			r := rotate(t, s, tok)
			if r.Outcome != sessions.Rotated {
				if r.Outcome != sessions.Unknown {
					t.Fatalf("%+v", r)
				}
				return
			}
			tok = r.Next
		}
		t.Error("a session refreshed within its idle life outlived its end")
	})
	t.Run("End and EndUser", func(t *testing.T) {
		s, rdb, prefix := newStore(t, testkit.RedisURL(t), time.Hour, 24*time.Hour)
		sids, toks := map[string]string{}, map[string]string{}
		for _, name := range []string{"a", "b", "c", "d"} {
			user := "u1"
			if name == "d" {
				user = "u2"
			}
			sids[name] = uuid.NewString()
			toks[name] = mustStart(t, s, user, sids[name])
		}
		if err := s.End(ctx, "u1", sids["a"]); err != nil {
			t.Fatal(err)
		}
		if err := s.EndUser(ctx, "u1", sids["b"]); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]sessions.Outcome{"a": sessions.Unknown, "b": sessions.Rotated, "c": sessions.Unknown, "d": sessions.Rotated} {
			if r := rotate(t, s, toks[name]); r.Outcome != want {
				t.Errorf("session %s: %+v, want %v", name, r, want)
			}
		}
		if err := s.EndUser(ctx, "nobody", ""); err != nil {
			t.Errorf("ending the sessions of a user without any: %v", err)
		}
		keys, err := rdb.Keys(ctx, prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			v, _ := rdb.Dump(ctx, k).Result()
			for _, tok := range toks {
				_, secret, _ := strings.Cut(tok, ".")
				raw, err := base64.RawURLEncoding.DecodeString(secret)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(k, secret) || strings.Contains(v, secret) || strings.Contains(v, string(raw)) {
					t.Errorf("key %s holds a token's secret", k)
				}
			}
		}
	})
}

// However often a session is refreshed, Redis holds one key for it (and
// one for its user): 1,000 rotations leave exactly session:<sid> and
// sessions:<user> under the store's prefix. On one server, a Redis Cluster
// and a Sentinel-managed primary.
func TestRotationsAddNoKeys(t *testing.T) {
	for name, url := range testkit.RedisTopologies(t) {
		t.Run(name, func(t *testing.T) {
			s, rdb, prefix := newStore(t, url, time.Hour, 24*time.Hour)
			sid := uuid.NewString()
			tok := mustStart(t, s, "u1", sid)
			want := []string{prefix + "session:" + sid, prefix + "sessions:u1"}
			if got := keysUnder(t, rdb, prefix); !slices.Equal(got, want) {
				t.Fatalf("keys after the login: %q, want %q", got, want)
			}
			for i := range 1000 {
				r := rotate(t, s, tok)
				if r.Outcome != sessions.Rotated {
					t.Fatalf("rotation %d: %+v", i, r)
				}
				tok = r.Next
			}
			if got := keysUnder(t, rdb, prefix); !slices.Equal(got, want) {
				t.Errorf("keys after 1,000 rotations: %d (%q...), want %q", len(got), got[:min(len(got), 4)], want)
			}
		})
	}
}

// The record of spent secrets is capped at SpentCap: a token spent more
// than SpentCap rotations ago is Unknown, not reuse, and the session goes
// on; one spent exactly SpentCap rotations ago is still reuse.
func TestSpentRecordIsCapped(t *testing.T) {
	s, rdb, prefix := newStore(t, testkit.RedisURL(t), time.Hour, 24*time.Hour)
	ctx := context.Background()
	sid := uuid.NewString()
	toks := []string{mustStart(t, s, "u1", sid)}
	for range sessions.SpentCap + 1 {
		r := rotate(t, s, toks[len(toks)-1])
		if r.Outcome != sessions.Rotated {
			t.Fatalf("rotation %d: %+v", len(toks), r)
		}
		toks = append(toks, r.Next)
	}
	// toks[0] was spent SpentCap+1 rotations ago, toks[1] SpentCap ago.
	if n, err := rdb.HStrLen(ctx, prefix+"session:"+sid, "spent").Result(); err != nil || n != sessions.SpentCap*16 {
		t.Errorf("the spent record holds %d bytes (%v), want %d", n, err, sessions.SpentCap*16)
	}
	if r := rotate(t, s, toks[0]); r != (sessions.Rotation{}) {
		t.Fatalf("a token spent past the cap: %+v, want Unknown", r)
	}
	r := rotate(t, s, toks[len(toks)-1])
	if r.Outcome != sessions.Rotated {
		t.Fatalf("the session after a token past the cap: %+v, want it to go on", r)
	}
	cur := r.Next
	// One more rotation: toks[1] falls off the record, toks[2] is the oldest in it.
	if r := rotate(t, s, toks[1]); r != (sessions.Rotation{}) {
		t.Errorf("the token that just fell off the record: %+v, want Unknown", r)
	}
	if r := rotate(t, s, toks[2]); r.Outcome != sessions.Reused || !r.Detected {
		t.Errorf("the oldest token of the record: %+v, want Reused, detected", r)
	}
	if r := rotate(t, s, cur); r.Outcome != sessions.Reused || r.Detected {
		t.Errorf("the current token after reuse: %+v, want Reused, not detected", r)
	}
}

// Knowing a session's id is not enough to end it: its id with a secret it
// never had is Unknown, however often presented, and the session's own
// token still rotates.
func TestWrongSecretLeavesTheSessionAlone(t *testing.T) {
	for name, url := range map[string]string{
		"server":  testkit.RedisURL(t),
		"cluster": testkit.RedisClusterURL(t),
	} {
		t.Run(name, func(t *testing.T) {
			s, _, _ := newStore(t, url, time.Hour, 24*time.Hour)
			sid := uuid.NewString()
			tok := mustStart(t, s, "u1", sid)
			tok = rotate(t, s, tok).Next // a spent record to look in
			for range 3 {
				if r := rotate(t, s, withSecret(sid)); r != (sessions.Rotation{}) {
					t.Fatalf("a wrong secret: %+v, want Unknown", r)
				}
			}
			if r := rotate(t, s, tok); r.Outcome != sessions.Rotated || r.SessionID != sid {
				t.Errorf("the session's token after wrong secrets: %+v, want Rotated", r)
			}
		})
	}
}

// Start refuses a session id that no token could name.
func TestStartRefusesAnotherFormOfSessionID(t *testing.T) {
	s, _, _ := newStore(t, testkit.RedisURL(t), time.Hour, 24*time.Hour)
	for _, sid := range []string{"", "sid-1", strings.ToUpper(uuid.NewString())} {
		if tok, err := s.Start(context.Background(), "u1", sid, time.Now()); err == nil {
			t.Errorf("Start with the session id %q gave %q", sid, tok)
		}
	}
}
