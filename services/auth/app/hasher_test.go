package app

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/moviebag/moviebag/libs/apierr"
)

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
	h, err := NewHasher(bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	release := occupy(h)

	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(context.Background(), "secret123")
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
		"Hash":    func(ctx context.Context) error { _, err := h.Hash(ctx, "secret123"); return err },
		"Matches": func(ctx context.Context) error { _, err := h.Matches(ctx, nil, "secret123"); return err },
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
	h, err := newHasher(bcrypt.MinCost, func(hash, password []byte) error {
		compared = append(compared, hash)
		return bcrypt.CompareHashAndPassword(hash, password)
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ok, err := h.Matches(ctx, nil, "moviebag-timing-equaliser") // the dummy's own password
	if err != nil || ok {
		t.Errorf("unknown user: match %v, %v; want false", ok, err)
	}
	if len(compared) != 1 || string(compared[0]) != string(h.dummy) {
		t.Errorf("unknown user compared against %q, want once against the dummy hash", compared)
	}
	hash, err := h.Hash(ctx, "secret123")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.Matches(ctx, hash, "secret123"); err != nil || !ok {
		t.Errorf("right password: %v, %v", ok, err)
	}
	if ok, err := h.Matches(ctx, hash, "wrong-one"); err != nil || ok {
		t.Errorf("wrong password: %v, %v", ok, err)
	}
}
