package stream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/stream"
	"github.com/moviebag/moviebag/libs/testkit"
)

func open(t *testing.T) (*stream.Stream, redis.UniversalClient, string) {
	t.Helper()
	rdb, err := store.OpenRedis(store.Config{RedisURL: testkit.RedisURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	key := testkit.Database(t) + ":outbox"
	t.Cleanup(func() { _ = rdb.Del(context.Background(), key).Err(); _ = rdb.Close() })
	errs := store.NewFailures(metrics.New(prometheus.NewRegistry(), "test"))
	return stream.New(rdb, errs, key, "workers"), rdb, key
}

// outcomes records what became of each delivery, in order.
type outcomes struct {
	mu  sync.Mutex
	got []string
}

func (o *outcomes) add(m stream.Message, out stream.Outcome, _ error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, fmt.Sprintf("%s#%d:%s", m.Values["n"], m.Delivery, out))
}

func (o *outcomes) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.got...)
}

func consumer(name string, handle func(context.Context, stream.Message) error, o *outcomes) *stream.Consumer {
	return &stream.Consumer{
		Name: name, Handle: handle, HandleTimeout: 250 * time.Millisecond,
		MinBackoff: 500 * time.Millisecond, MaxBackoff: 2 * time.Second, MaxAge: time.Hour,
		Poll: 20 * time.Millisecond, Observe: o.add,
	}
}

func run(t *testing.T, s *stream.Stream, c *stream.Consumer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Consume(ctx, c) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// Entries appended before any consumer existed are handled; one that fails
// is retried after its backoff, doubled each time, until it succeeds; one
// that fails for good is dropped; once done, the stream is empty.
func TestConsumeRetriesUntilDone(t *testing.T) {
	s, _, _ := open(t)
	ctx := context.Background()
	// flaky first: a retry's wait counts from the entry's delivery, so an
	// entry handled after others of its batch would see less of it.
	for _, n := range []string{"flaky", "ok", "broken"} {
		if _, err := s.Append(ctx, map[string]string{"n": n}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	tries := map[string][]time.Time{}
	var o outcomes
	run(t, s, consumer("c1", func(_ context.Context, m stream.Message) error {
		mu.Lock()
		defer mu.Unlock()
		n := m.Values["n"]
		tries[n] = append(tries[n], time.Now())
		switch {
		case n == "flaky" && len(tries[n]) < 4:
			return errors.New("the mail server is down")
		case n == "broken":
			return stream.Permanent(errors.New("no such mailbox"))
		}
		return nil
	}, &o))
	testkit.Eventually(t, 20*time.Second, func() error {
		if n, err := s.Len(ctx); err != nil || n != 0 {
			return fmt.Errorf("%d entries left (%v); outcomes %v", n, err, o.list())
		}
		return nil
	})
	want := map[string]bool{"ok#1:done": true, "broken#1:failed": true, "flaky#1:retry": true, "flaky#2:retry": true,
		"flaky#3:retry": true, "flaky#4:done": true}
	got := o.list()
	if len(got) != len(want) {
		t.Fatalf("outcomes %v, want %v", got, want)
	}
	for _, g := range got {
		if !want[g] {
			t.Errorf("outcome %s not expected; all: %v", g, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// The waits between tries of flaky: 500 ms, 1 s, 2 s at least. A wait
	// counts from Redis's delivery of the try before (the entry's idle
	// time), and a handler notes its time a little after its delivery: on
	// a loaded machine the earlier try's handler may run later after its
	// delivery than the next one's (seen: 1.993 s for 2 s, beside two test
	// clusters), so a gap may fall short of the backoff by that much, never
	// by a whole step of it.
	const handlerLag = 100 * time.Millisecond
	for i, min := range []time.Duration{500, 1000, 2000} {
		if gap := tries["flaky"][i+1].Sub(tries["flaky"][i]); gap < min*time.Millisecond-handlerLag {
			t.Errorf("retry %d came %s after the try before, want at least %dms (less %s for the handlers' lag)", i+1, gap, min, handlerLag)
		}
	}
}

// An entry taken by a consumer that died before settling it is handled by
// another consumer once its backoff has passed.
func TestDeadConsumersEntriesTakenOver(t *testing.T) {
	s, rdb, key := open(t)
	ctx := context.Background()
	if _, err := s.Append(ctx, map[string]string{"n": "orphan"}); err != nil {
		t.Fatal(err)
	}
	// A consumer that reads the entry and dies.
	if err := rdb.XGroupCreateMkStream(ctx, key, "workers", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "workers", Consumer: "dead", Streams: []string{key, ">"}, Count: 1}).Err(); err != nil {
		t.Fatal(err)
	}
	var o outcomes
	handled := make(chan string, 4)
	run(t, s, consumer("c2", func(_ context.Context, m stream.Message) error {
		handled <- m.Values["n"]
		return nil
	}, &o))
	select {
	case n := <-handled:
		if n != "orphan" {
			t.Fatalf("handled %q", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the dead consumer's entry was never taken over; outcomes %v", o.list())
	}
	if got := o.list(); len(got) != 1 || got[0] != "orphan#2:done" {
		t.Errorf("outcomes %v, want the orphan's second delivery done", got)
	}
}

// An entry older than MaxAge when its turn comes is dropped, unhandled.
func TestExpiredEntriesDropped(t *testing.T) {
	s, rdb, key := open(t)
	ctx := context.Background()
	old := fmt.Sprintf("%d-0", time.Now().Add(-2*time.Hour).UnixMilli())
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: old, Values: map[string]any{"n": "stale"}}).Err(); err != nil {
		t.Fatal(err)
	}
	var o outcomes
	calls := 0
	var mu sync.Mutex
	run(t, s, consumer("c3", func(context.Context, stream.Message) error {
		mu.Lock()
		calls++
		mu.Unlock()
		return nil
	}, &o))
	testkit.Eventually(t, 10*time.Second, func() error {
		if n, err := s.Len(ctx); err != nil || n != 0 {
			return fmt.Errorf("%d entries left (%v)", n, err)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if got := o.list(); calls != 0 || len(got) != 1 || got[0] != "stale#1:expired" {
		t.Errorf("outcomes %v, %d calls; want it expired and never handled", got, calls)
	}
}

// A consumer whose first backoff is not longer than its handling time
// would take over entries still being handled: refused.
func TestValidate(t *testing.T) {
	c := consumer("c", func(context.Context, stream.Message) error { return nil }, nil)
	c.MinBackoff = c.HandleTimeout
	if err := c.Validate(); err == nil {
		t.Error("a first backoff equal to the handling timeout is accepted")
	}
}
