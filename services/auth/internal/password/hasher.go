// Package password hashes and checks passwords with bcrypt, admitting only
// the work that can be done in time.
package password

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/moviebag/moviebag/libs/apierr"
)

var errHashBacklog = errors.New("password hash backlog: this one would not finish within BCRYPT_MAX_LATENCY or the request's deadline")

// Hasher runs bcrypt, at most one hash per CPU at a time, and admits a
// request's hash (Admit) only when it can be done in time: when the wait behind the hashes already
// admitted, plus its own, would pass maxLatency or what is left of the
// request's deadline, it is refused at once with a 503 whose Retry-After is
// the time the backlog takes to clear (load shedding, as CoDel and Envoy's
// adaptive concurrency do, rather than a queue that every request waits in
// until its deadline). With a CPU free a hash is always admitted. Sign-up and
// login share it.
type Hasher struct {
	cost       int
	slots      chan struct{}
	maxLatency time.Duration
	// pending counts the hashes admitted and not done: running or waiting.
	pending atomic.Int64
	// perHash is the time one hash takes, in nanoseconds: a moving average of
	// the hashes done, seeded by the dummy's.
	perHash atomic.Int64
	// dummy is compared against for unknown emails, so response times do not
	// tell which emails have accounts.
	dummy []byte
	// compare is bcrypt.CompareHashAndPassword; tests count its calls.
	compare func(hash, password []byte) error
	// admitted is told of each admission decision (metrics).
	admitted func(bool)
}

// New returns a Hasher at the given bcrypt cost that admits a hash only
// when it can expect to be done within maxLatency. compare is
// bcrypt.CompareHashAndPassword unless a test counts its calls; admitted,
// when not nil, is told of each admission decision (metrics).
func New(cost int, maxLatency time.Duration, compare func(hash, password []byte) error, admitted func(bool)) (*Hasher, error) {
	if compare == nil {
		compare = bcrypt.CompareHashAndPassword
	}
	if admitted == nil {
		admitted = func(bool) {}
	}
	start := time.Now()
	dummy, err := bcrypt.GenerateFromPassword([]byte("moviebag-timing-equaliser"), cost)
	if err != nil {
		return nil, fmt.Errorf("BCRYPT_COST %d: %w", cost, err)
	}
	h := &Hasher{
		cost: cost, slots: make(chan struct{}, runtime.GOMAXPROCS(0)), maxLatency: maxLatency,
		dummy: dummy, compare: compare, admitted: admitted,
	}
	h.perHash.Store(int64(time.Since(start)))
	return h, nil
}

// Admit admits the one password hash of a request, or refuses it at once
// with the ServiceUnavailableError to answer, before the request does any
// other work. The caller hashes through the Permit and releases it when done.
func (h *Hasher) Admit(ctx context.Context) (*Permit, error) {
	workers := int64(cap(h.slots))
	n := h.pending.Add(1) // this hash included
	if n <= workers {     // a CPU is free
		h.admitted(true)
		return &Permit{h: h}, nil
	}
	perHash := time.Duration(h.perHash.Load())
	budget := h.maxLatency
	if deadline, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(deadline))
	}
	// The hashes ahead run workers at a time; this one runs in the round
	// after theirs.
	if rounds := (n + workers - 1) / workers; time.Duration(rounds)*perHash <= budget {
		h.admitted(true)
		return &Permit{h: h}, nil
	}
	h.pending.Add(-1)
	h.admitted(false)
	backlog := time.Duration((n-1+workers-1)/workers) * perHash
	return nil, apierr.Wrap(apierr.ServiceUnavailableError, errHashBacklog).WithRetryAfter(backlog)
}

// Permit is one admitted password hash.
type Permit struct {
	h        *Hasher
	released atomic.Bool
}

// Release gives the permit's place back; it may be called more than once.
func (p *Permit) Release() {
	if p.released.CompareAndSwap(false, true) {
		p.h.pending.Add(-1)
	}
}

// run waits for a CPU, then runs fn on it.
func (p *Permit) run(ctx context.Context, fn func()) error {
	h := p.h
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
		start := time.Now()
		fn()
		h.observe(time.Since(start))
		return nil
	case <-ctx.Done():
		return apierr.Wrap(apierr.ServiceUnavailableError, fmt.Errorf("waiting to hash a password: %w", ctx.Err())).WithRetryAfter(time.Second)
	}
}

// observe moves the time per hash an eighth of the way towards took: it
// follows a machine that gets busier or quieter within a few hashes, and one
// slow hash does not swing it.
func (h *Hasher) observe(took time.Duration) {
	for {
		old := h.perHash.Load()
		avg := old + (int64(took)-old)/8
		if h.perHash.CompareAndSwap(old, avg) {
			return
		}
	}
}

// Hash hashes a new password.
func (p *Permit) Hash(ctx context.Context, password string) ([]byte, error) {
	var hash []byte
	var err error
	if werr := p.run(ctx, func() { hash, err = bcrypt.GenerateFromPassword([]byte(password), p.h.cost) }); werr != nil {
		return nil, werr
	}
	if err != nil {
		return nil, apierr.Wrap(apierr.InternalServerError, err)
	}
	return hash, nil
}

// Matches reports whether password matches hash; a nil hash (no such user)
// costs the same and never matches.
func (p *Permit) Matches(ctx context.Context, hash []byte, password string) (bool, error) {
	known := hash != nil
	if !known {
		hash = p.h.dummy
	}
	var ok bool
	if err := p.run(ctx, func() { ok = p.h.compare(hash, []byte(password)) == nil }); err != nil {
		return false, err
	}
	return ok && known, nil
}
