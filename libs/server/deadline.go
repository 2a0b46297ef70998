package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
)

// deadline gives the request's context (c.UserContext(), which every
// storage call uses) a deadline timeout from now, canceled when the request
// ends, as context.WithTimeout would (see withDeadline).
func deadline(timeout time.Duration) fiber.Handler {
	return func(c *fiber.Ctx) error {
		parent, d := c.UserContext(), now(c).Add(timeout)
		if parent.Done() != nil {
			ctx, cancel := context.WithDeadline(parent, d)
			defer cancel()
			c.SetUserContext(ctx)
			return c.Next()
		}
		ctx := newLazyDeadline(parent, d)
		defer ctx.cancel() // not through a CancelFunc: that would be one more allocation
		c.SetUserContext(ctx)
		return c.Next()
	}
}

// withDeadline is context.WithDeadline(parent, d) for a request: the same
// deadline, Err, Done, Value and cancellation, but when parent can never be
// canceled (Fiber's user context is context.Background unless set) the
// timer and channel of context.WithDeadline are made only when something
// first asks for Done: a storage call, a context derived from it. A request
// answered from memory never does, and pays one allocation for its
// deadline instead of four, and no timer.
func withDeadline(parent context.Context, d time.Time) (context.Context, context.CancelFunc) {
	if parent.Done() != nil {
		return context.WithDeadline(parent, d)
	}
	c := newLazyDeadline(parent, d)
	return c, c.cancel
}

// newLazyDeadline returns the context of withDeadline for a parent that can
// never be canceled.
func newLazyDeadline(parent context.Context, d time.Time) *lazyDeadline {
	if pd, ok := parent.Deadline(); ok && pd.Before(d) {
		d = pd
	}
	return &lazyDeadline{parent: parent, deadline: d}
}

// lazyDeadline is the context of withDeadline. Until its first Done it
// answers Err from the clock and from whether it was canceled; from then on
// it is a context.WithDeadline made with the same parent and deadline
// (canceled at once when it was canceled before), and answers as that one
// does: contexts derived from it hang on that one, as they would on a
// context.WithDeadline, with no goroutine of their own.
type lazyDeadline struct {
	parent   context.Context // can never be canceled
	deadline time.Time

	inner atomic.Pointer[context.Context] // set once, by the first Done
	mu    sync.Mutex
	// Under mu: the inner context's cancel, and before there is one, how
	// the context ended (context.Canceled or context.DeadlineExceeded).
	cancelInner context.CancelFunc
	ended       error
}

// Deadline returns the deadline.
func (c *lazyDeadline) Deadline() (time.Time, bool) { return c.deadline, true }

// Done returns the channel closed at the deadline or when the context is
// canceled, making it (and the timer) on the first call.
func (c *lazyDeadline) Done() <-chan struct{} { return c.materialize().Done() }

// Err is nil until the deadline or the cancel, then DeadlineExceeded or
// Canceled, whichever came first.
func (c *lazyDeadline) Err() error {
	if inner := c.inner.Load(); inner != nil {
		return (*inner).Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancelInner != nil { // made since the Load
		return (*c.inner.Load()).Err()
	}
	if c.ended != nil {
		return c.ended
	}
	if passed(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// Value is the parent's value for key; once made, the inner context
// answers, so that context.Cause and the contexts derived from this one
// find its cancellation as they find a context.WithDeadline's.
func (c *lazyDeadline) Value(key any) any {
	if inner := c.inner.Load(); inner != nil {
		return (*inner).Value(key)
	}
	return c.parent.Value(key)
}

// String names the context as context.WithDeadline's does.
func (c *lazyDeadline) String() string {
	return "server.withDeadline(" + c.deadline.String() + ")"
}

// materialize returns the inner context, making it on the first call.
func (c *lazyDeadline) materialize() context.Context {
	if inner := c.inner.Load(); inner != nil {
		return *inner
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if inner := c.inner.Load(); inner != nil {
		return *inner
	}
	var inner context.Context
	var cancel context.CancelFunc
	if c.ended == context.Canceled {
		// Canceled before its deadline, as Err has said since: done, with
		// Canceled, whatever the clock says now.
		inner, cancel = context.WithCancel(c.parent)
		cancel()
	} else {
		// A deadline already past makes a context done with
		// DeadlineExceeded, as Err has said since it passed.
		inner, cancel = context.WithDeadline(c.parent, c.deadline)
	}
	c.cancelInner = cancel
	c.inner.Store(&inner)
	return inner
}

// cancel ends the context: Canceled, unless its deadline passed first.
func (c *lazyDeadline) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancelInner != nil {
		c.cancelInner()
		return
	}
	if c.ended == nil {
		c.ended = context.Canceled
		if passed(c.deadline) {
			c.ended = context.DeadlineExceeded
		}
	}
}

// passed reports whether d is not after now: !time.Now().Before(d), with
// one clock read instead of two when d has a monotonic reading (time.Until
// then reads the monotonic clock alone, which Before would compare).
func passed(d time.Time) bool { return time.Until(d) <= 0 }
