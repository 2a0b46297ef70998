package server

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// ctxKey is a context key of this test.
type ctxKey struct{}

// observe is what a caller can see of a context: its error, its cause,
// whether Done is closed, and the same of a context derived from it before.
func observe(ctx, child context.Context, afterFuncRan <-chan struct{}) string {
	done := false
	select {
	case <-ctx.Done():
		done = true
	default:
	}
	childDone := false
	select {
	case <-child.Done():
		childDone = true
	default:
	}
	ran := false
	select {
	case <-afterFuncRan:
		ran = true
	default:
	}
	return fmt.Sprintf("err=%v cause=%v done=%v value=%v child=%v/%v afterfunc=%v",
		ctx.Err(), context.Cause(ctx), done, ctx.Value(ctxKey{}), childDone, child.Err(), ran)
}

// TestWithDeadlineActsAsContextWithDeadline runs each way a request's
// context is used against withDeadline and against context.WithDeadline
// with the same parent and deadline: every observation must be the same.
func TestWithDeadlineActsAsContextWithDeadline(t *testing.T) {
	const soon = 30 * time.Millisecond
	type step func(ctx context.Context, cancel context.CancelFunc)
	ask := func(ctx context.Context, _ context.CancelFunc) { _ = ctx.Done() }
	cancel := func(_ context.Context, cancel context.CancelFunc) { cancel() }
	wait := func(context.Context, context.CancelFunc) { time.Sleep(2 * soon) }
	waitDone := func(ctx context.Context, _ context.CancelFunc) { <-ctx.Done() }
	tests := []struct {
		name  string
		in    time.Duration // deadline from now
		steps []step
	}{
		{"running", time.Hour, nil},
		{"asked, running", time.Hour, []step{ask}},
		{"past its deadline, never asked", soon, []step{wait}},
		{"asked, then past its deadline", soon, []step{ask, waitDone}},
		{"past its deadline, then asked", soon, []step{wait, ask}},
		{"canceled, never asked", time.Hour, []step{cancel}},
		{"canceled, then asked", time.Hour, []step{cancel, ask}},
		{"asked, then canceled", time.Hour, []step{ask, cancel}},
		{"canceled, then past its deadline, then asked", soon, []step{cancel, wait, ask}},
		{"past its deadline, then canceled", soon, []step{wait, cancel}},
		{"past its deadline, then canceled, then asked", soon, []step{wait, cancel, ask}},
		{"deadline already past", -time.Second, nil},
		{"deadline already past, asked", -time.Second, []step{ask}},
		{"deadline already past, canceled", -time.Second, []step{cancel, ask}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := context.WithValue(context.Background(), ctxKey{}, "v")
			var got [2]string
			for i, with := range []func(context.Context, time.Time) (context.Context, context.CancelFunc){withDeadline, context.WithDeadline} {
				d := time.Now().Add(tt.in)
				ctx, cancelCtx := with(parent, d)
				if i == 0 {
					if _, lazy := ctx.(*lazyDeadline); !lazy {
						t.Fatalf("withDeadline of a parent that cannot be canceled made a %T", ctx)
					}
				}
				if got, ok := ctx.Deadline(); !ok || !got.Equal(d) {
					t.Errorf("Deadline() = %v, %v; want %v", got, ok, d)
				}
				var child context.Context
				ran := make(chan struct{})
				for _, s := range tt.steps {
					s(ctx, cancelCtx)
				}
				// Before anything derived from it asks for Done.
				got[i] = fmt.Sprintf("err=%v cause=%v value=%v | ", ctx.Err(), context.Cause(ctx), ctx.Value(ctxKey{}))
				// Derived after the steps: a child and an AfterFunc follow
				// whatever the context says now, and its cancel later.
				child, stopChild := context.WithCancel(ctx)
				defer stopChild()
				context.AfterFunc(ctx, func() { close(ran) })
				time.Sleep(5 * time.Millisecond) // AfterFunc and children of a done context act at once, on their goroutines
				got[i] += observe(ctx, child, ran)
				cancelCtx()
				time.Sleep(5 * time.Millisecond)
				got[i] += " | after cancel: " + observe(ctx, child, ran)
			}
			if got[0] != got[1] {
				t.Errorf("withDeadline:\n  %s\ncontext.WithDeadline:\n  %s", got[0], got[1])
			}
		})
	}
}

// A context derived from a request's context before its deadline ends at
// the deadline, and at the request's end, like one derived from a
// context.WithDeadline.
func TestWithDeadlineEndsDerivedContexts(t *testing.T) {
	ctx, cancel := withDeadline(context.Background(), time.Now().Add(20*time.Millisecond))
	defer cancel()
	child, stop := context.WithTimeout(ctx, time.Hour)
	defer stop()
	select {
	case <-child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("derived context not done at the deadline")
	}
	if !errors.Is(child.Err(), context.DeadlineExceeded) || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("child %v, context %v: want DeadlineExceeded", child.Err(), ctx.Err())
	}

	ctx, cancel = withDeadline(context.Background(), time.Now().Add(time.Hour))
	child, stop = context.WithCancel(ctx)
	defer stop()
	cancel()
	select {
	case <-child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("derived context not done when the request ended")
	}
	if !errors.Is(child.Err(), context.Canceled) {
		t.Errorf("child %v: want Canceled", child.Err())
	}
}

// A parent that can be canceled gets context.WithDeadline itself: its
// cancellation must reach the request.
func TestWithDeadlineOfACancelableParent(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel := withDeadline(parent, time.Now().Add(time.Hour))
	defer cancel()
	if _, lazy := ctx.(*lazyDeadline); lazy {
		t.Fatal("a cancelable parent got the lazy context")
	}
	cancelParent()
	<-ctx.Done()
}

// Done, Err and cancel from many goroutines at once (run with -race).
func TestWithDeadlineConcurrently(t *testing.T) {
	for range 50 {
		ctx, cancel := withDeadline(context.Background(), time.Now().Add(time.Millisecond))
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				switch i % 4 {
				case 0:
					<-ctx.Done()
				case 1:
					for ctx.Err() == nil {
						time.Sleep(100 * time.Microsecond)
					}
				case 2:
					cancel()
				default:
					c, stop := context.WithCancel(ctx)
					<-c.Done()
					stop()
				}
			})
		}
		wg.Wait()
		if err := ctx.Err(); !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Err() = %v after cancel", err)
		}
		select {
		case <-ctx.Done():
		default:
			t.Fatal("Done not closed while Err is set")
		}
	}
}

// TestDeadlineIsTimeoutFromNow holds the middleware's deadline to
// time.Now().Add(timeout) read when it ran (not when the request began), by the monotonic clock and by
// the wall clock, for a request the server read (whose start now moves on)
// and for a RequestCtx made by hand, as the benchmarks make (time.Now).
func TestDeadlineIsTimeoutFromNow(t *testing.T) {
	const timeout = time.Hour
	var before, got time.Time
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(func(c *fiber.Ctx) error {
		time.Sleep(10 * time.Millisecond) // from now on, not from the request's start
		before = time.Now()
		return c.Next()
	}, deadline(timeout))
	app.Get("/", func(c *fiber.Ctx) error {
		got, _ = c.UserContext().Deadline()
		return nil
	})
	check := func(t *testing.T, serve func()) {
		t.Helper()
		got = time.Time{}
		serve()
		after := time.Now()
		if !strings.Contains(got.String(), " m=") { // String shows a monotonic reading so
			t.Errorf("deadline %v has no monotonic reading", got)
		}
		if got.Before(before.Add(timeout)) || got.After(after.Add(timeout)) {
			t.Errorf("deadline %v by the monotonic clock, want %v to %v", got, before.Add(timeout), after.Add(timeout))
		}
		// The two clocks are read one after the other: a little slack.
		wall, lo, hi := got.Round(0), before.Round(0).Add(timeout-time.Millisecond), after.Round(0).Add(timeout+time.Millisecond)
		if wall.Before(lo) || wall.After(hi) {
			t.Errorf("deadline %v by the wall clock, want %v to %v", wall, lo, hi)
		}
	}
	t.Run("served", func(t *testing.T) {
		check(t, func() {
			resp, err := app.Test(httptest.NewRequest(fiber.MethodGet, "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
		})
	})
	t.Run("RequestCtx made by hand", func(t *testing.T) {
		check(t, func() {
			var req fasthttp.Request
			req.SetRequestURI("/")
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, nil, nil)
			app.Handler()(&ctx)
		})
	})
}
