package sessions_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/testkit"
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

func mustParse(t *testing.T, tok string) sessions.Hash {
	t.Helper()
	h, err := sessions.ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	return h
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
	for name, url := range map[string]string{
		"server":   testkit.RedisURL(t),
		"cluster":  testkit.RedisClusterURL(t),
		"sentinel": testkit.RedisSentinelURL(t),
	} {
		t.Run(name, func(t *testing.T) {
			s, _, _ := newStore(t, url, time.Hour, 24*time.Hour)
			ctx := context.Background()
			began := time.Unix(time.Now().Unix(), 0)
			first, err := s.Start(ctx, "u1", "sid-1", began)
			if err != nil {
				t.Fatal(err)
			}
			r := rotate(t, s, first)
			if r.Outcome != sessions.Rotated || r.SessionID != "sid-1" || r.User != "u1" || !r.Began.Equal(began) || r.Next == "" || r.Next == first {
				t.Fatalf("rotation %+v", r)
			}
			second := r.Next
			if r := rotate(t, s, second); r.Outcome != sessions.Rotated {
				t.Fatalf("the successor: %+v", r)
			}
			if r := rotate(t, s, first); r.Outcome != sessions.Reused || !r.Detected || r.SessionID != "sid-1" || r.User != "u1" {
				t.Fatalf("the spent token again: %+v, want Reused, detected", r)
			}
			for _, tok := range []string{first, second} {
				if r := rotate(t, s, tok); r.Outcome != sessions.Reused || r.Detected || r.SessionID != "sid-1" {
					t.Errorf("after reuse: %+v, want Reused, not detected again", r)
				}
			}
			unknown, _ := sessions.NewToken()
			if r := rotate(t, s, unknown); r.Outcome != sessions.Unknown {
				t.Errorf("an unknown token: %+v", r)
			}
		})
	}
}

// Of concurrent rotations of one token exactly one succeeds; every other is
// reuse (it presents a token that has just been spent).
func TestConcurrentRotationsOfOneTokenOneWins(t *testing.T) {
	s, _, _ := newStore(t, testkit.RedisURL(t), time.Hour, 24*time.Hour)
	tok, err := s.Start(context.Background(), "u1", "sid-1", time.Now())
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
		tok, _ := s.Start(ctx, "u1", "sid-1", time.Now())
		time.Sleep(300 * time.Millisecond)
		if r := rotate(t, s, tok); r.Outcome != sessions.Unknown {
			t.Errorf("after the idle life: %+v", r)
		}
	})
	t.Run("max", func(t *testing.T) {
		s, _, _ := newStore(t, testkit.RedisURL(t), 400*time.Millisecond, 400*time.Millisecond)
		tok, _ := s.Start(ctx, "u1", "sid-1", time.Now())
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
		toks := map[string]string{}
		for _, sid := range []string{"a", "b", "c", "d"} {
			user := "u1"
			if sid == "d" {
				user = "u2"
			}
			tok, err := s.Start(ctx, user, sid, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			toks[sid] = tok
		}
		if err := s.End(ctx, "u1", "a"); err != nil {
			t.Fatal(err)
		}
		if err := s.EndUser(ctx, "u1", "b"); err != nil {
			t.Fatal(err)
		}
		for sid, want := range map[string]sessions.Outcome{"a": sessions.Unknown, "b": sessions.Rotated, "c": sessions.Unknown, "d": sessions.Rotated} {
			if r := rotate(t, s, toks[sid]); r.Outcome != want {
				t.Errorf("session %s: %+v, want %v", sid, r, want)
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
			for _, tok := range toks {
				if strings.Contains(k, tok) {
					t.Errorf("key %s holds a token", k)
				}
			}
			if v, _ := rdb.Dump(ctx, k).Result(); strings.Contains(v, toks["b"]) {
				t.Errorf("key %s holds a token", k)
			}
		}
	})
}
