package password

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/moviebag/moviebag/libs/apierr"
)

// permit admits one hash of h; admission cannot fail with a CPU free.
func permit(t *testing.T, h *Hasher) *Permit {
	t.Helper()
	p, err := h.Admit(context.Background())
	if err != nil {
		t.Fatalf("Admit with nothing pending: %v", err)
	}
	t.Cleanup(p.Release)
	return p
}

// occupy takes every hashing slot of h, as that many slow hashes would, and
// returns the function that gives one back.
func occupy(h *Hasher) (release func()) {
	for range cap(h.slots) {
		h.slots <- struct{}{}
	}
	return func() { <-h.slots }
}

// With every slot busy a hash waits for one; it runs as soon as one is
// free, and it answers 503 (with Retry-After) when its deadline comes first.
func TestHasherWaitsThenUnavailable(t *testing.T) {
	h, err := New(bcrypt.MinCost, time.Minute, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	release := occupy(h)
	p := permit(t, h)

	done := make(chan error, 1)
	go func() {
		_, err := p.Hash(context.Background(), "secret123")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Hash returned (%v) while every slot was busy, want it to wait", err)
	case <-time.After(100 * time.Millisecond):
	}
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Hash once a slot was free: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Hash still waiting after a slot was freed")
	}

	h.slots <- struct{}{} // the freed slot again: every slot is busy
	for name, call := range map[string]func(ctx context.Context) error{
		"Hash":    func(ctx context.Context) error { _, err := p.Hash(ctx, "secret123"); return err },
		"Matches": func(ctx context.Context) error { _, err := p.Matches(ctx, nil, "secret123"); return err },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := call(ctx)
		cancel()
		var e *apierr.Error
		if !apierr.Is(err, apierr.ServiceUnavailableError) || !errors.As(err, &e) || e.RetryAfter <= 0 {
			t.Errorf("%s past its deadline with every slot busy: %v, want ServiceUnavailableError with Retry-After", name, err)
		}
	}
}

// Matches compares an unknown user's password against the dummy hash, so
// that it costs what a known user's does; it never matches.
func TestMatchesUnknownUserRunsBcrypt(t *testing.T) {
	var compared [][]byte
	h, err := New(bcrypt.MinCost, time.Minute, func(hash, password []byte) error {
		compared = append(compared, hash)
		return bcrypt.CompareHashAndPassword(hash, password)
	}, func(bool) {})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := permit(t, h)
	ok, err := p.Matches(ctx, nil, "moviebag-timing-equaliser") // the dummy's own password
	if err != nil || ok {
		t.Errorf("unknown user: match %v, %v; want false", ok, err)
	}
	if len(compared) != 1 || string(compared[0]) != string(h.dummy) {
		t.Errorf("unknown user compared against %q, want once against the dummy hash", compared)
	}
	hash, err := p.Hash(ctx, "secret123")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.Matches(ctx, hash, "secret123"); err != nil || !ok {
		t.Errorf("right password: %v, %v", ok, err)
	}
	if ok, err := p.Matches(ctx, hash, "wrong-one"); err != nil || ok {
		t.Errorf("wrong password: %v, %v", ok, err)
	}
}

// Admit refuses a hash that would wait past maxLatency or the request's
// deadline behind those already admitted, at once and with the backlog's
// time as Retry-After; with a CPU free it always admits; a release makes
// room again.
func TestAdmitRefusesWhatCannotBeDoneInTime(t *testing.T) {
	var decisions []bool
	h, err := New(bcrypt.MinCost, time.Second, bcrypt.CompareHashAndPassword, func(ok bool) { decisions = append(decisions, ok) })
	if err != nil {
		t.Fatal(err)
	}
	h.perHash.Store(int64(300 * time.Millisecond))
	workers := cap(h.slots)
	ctx := context.Background()

	// Three rounds of 300 ms fit in a second: the CPUs' worth, then two more rounds.
	var permits []*Permit
	for i := range 3 * workers {
		p, err := h.Admit(ctx)
		if err != nil {
			t.Fatalf("admission %d of %d (three rounds of 300 ms within 1 s): %v", i+1, 3*workers, err)
		}
		permits = append(permits, p)
	}
	// A fourth round would end at 1.2 s.
	_, err = h.Admit(ctx)
	var e *apierr.Error
	if !errors.As(err, &e) || e.Code != apierr.ServiceUnavailableError || e.RetryAfter != 900*time.Millisecond {
		t.Fatalf("a fourth round: %v (Retry-After %v), want ServiceUnavailableError after the 900 ms backlog", err, e)
	}
	// A deadline nearer than maxLatency counts: with 200 ms left not even a second round fits.
	permits[len(permits)-1].Release()
	permits[len(permits)-1].Release() // twice: no effect
	for _, p := range permits[workers:] {
		p.Release()
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := h.Admit(short); !apierr.Is(err, apierr.ServiceUnavailableError) {
		t.Fatalf("a second round with 200 ms left: %v, want ServiceUnavailableError", err)
	}
	for _, p := range permits[:workers] {
		p.Release()
	}
	// Every CPU free again: admitted whatever the deadline.
	p, err := h.Admit(short)
	if err != nil {
		t.Fatalf("with every CPU free: %v", err)
	}
	p.Release()
	if h.pending.Load() != 0 {
		t.Errorf("%d hashes still pending after every release", h.pending.Load())
	}
	refused := 0
	for _, ok := range decisions {
		if !ok {
			refused++
		}
	}
	if refused != 2 || len(decisions) != 3*workers+3 {
		t.Errorf("decisions %v: want %d admissions and 2 refusals counted", decisions, 3*workers+1)
	}
}
