// The window: the failures a test expects, and when.

package load

import (
	"net/http"
	"slices"
	"sync"
	"time"
)

// Degradation declares outcomes that are expected, not failures: those Allow accepts, while Window (nil:
// the whole run) covers them.
type Degradation struct {
	Name   string
	Window *Window
	Allow  func(Outcome) bool
}

func (d Degradation) allows(o Outcome) bool {
	return (d.Window == nil || d.Window.Covers(o)) && d.Allow != nil && d.Allow(o)
}

// Unavailable allows the answer of a dependency being down on the given kinds: 503 with an error
// envelope and a Retry-After header.
func Unavailable(kinds ...Kind) func(Outcome) bool {
	return func(o Outcome) bool {
		return o.Status == http.StatusServiceUnavailable && o.Code != "" && o.RetryAfter != "" && slices.Contains(kinds, o.Kind)
	}
}

// RedisOutage is what clients may see while Redis is away: 503 with Retry-After on authenticated writes,
// logins and logouts; the public reads must still pass.
func RedisOutage(w *Window) Degradation {
	return Degradation{Name: "Redis outage", Window: w, Allow: Unavailable(Writes...)}
}

// MongoOutage is what clients may see while MongoDB is away: 503 with Retry-After on anything.
func MongoOutage(w *Window) Degradation {
	return Degradation{Name: "MongoDB outage", Window: w, Allow: Unavailable(Kinds...)}
}

// Window is a set of time spans a test opens and closes while the load runs (for example from the
// deletion of the Redis pod to 30 s after the new one is Ready). It is safe for concurrent use.
type Window struct {
	mu    sync.Mutex
	spans []span
}

type span struct{ from, to time.Time } // zero to: still open

// Open opens a span now (a no-op while one is open).
func (w *Window) Open() { w.OpenAt(time.Now()) }

// OpenAt opens a span at t.
func (w *Window) OpenAt(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.spans); n > 0 && w.spans[n-1].to.IsZero() {
		return
	}
	w.spans = append(w.spans, span{from: t})
}

// Close closes the open span now.
func (w *Window) Close() { w.CloseAt(time.Now()) }

// CloseAt closes the open span at t, which may be in the future ("30 s after Ready").
func (w *Window) CloseAt(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.spans); n > 0 && w.spans[n-1].to.IsZero() {
		w.spans[n-1].to = t
	}
}

// IsOpen reports whether t is inside a span.
func (w *Window) IsOpen(t time.Time) bool {
	return w.overlaps(t, t)
}

// Covers reports whether the request's life, from sending to answer, overlaps a span.
func (w *Window) Covers(o Outcome) bool { return w.overlaps(o.At, o.End()) }

func (w *Window) overlaps(from, to time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.spans {
		if !to.Before(s.from) && (s.to.IsZero() || !from.After(s.to)) {
			return true
		}
	}
	return false
}
