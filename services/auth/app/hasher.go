package app

import (
	"context"
	"fmt"
	"runtime"

	"golang.org/x/crypto/bcrypt"

	"github.com/moviebag/moviebag/libs/apierr"
)

// Hasher runs bcrypt, at most one hash per CPU at a time: past that,
// requests wait their turn (until their deadline, then 503) instead of all
// slowing down together. Signup and login share it.
type Hasher struct {
	cost  int
	slots chan struct{}
	// dummy is compared against for unknown emails, so response times do not
	// tell which emails have accounts.
	dummy []byte
	// compare is bcrypt.CompareHashAndPassword; tests count its calls.
	compare func(hash, password []byte) error
}

// NewHasher returns a Hasher at the given bcrypt cost.
func NewHasher(cost int) (*Hasher, error) {
	return newHasher(cost, bcrypt.CompareHashAndPassword)
}

func newHasher(cost int, compare func(hash, password []byte) error) (*Hasher, error) {
	dummy, err := bcrypt.GenerateFromPassword([]byte("moviebag-timing-equaliser"), cost)
	if err != nil {
		return nil, fmt.Errorf("BCRYPT_COST %d: %w", cost, err)
	}
	return &Hasher{cost: cost, slots: make(chan struct{}, runtime.GOMAXPROCS(0)), dummy: dummy, compare: compare}, nil
}

func (h *Hasher) run(ctx context.Context, fn func()) error {
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
		fn()
		return nil
	case <-ctx.Done():
		return apierr.Unavailable(fmt.Errorf("waiting to hash a password: %w", ctx.Err()))
	}
}

// Hash hashes a new password.
func (h *Hasher) Hash(ctx context.Context, password string) ([]byte, error) {
	var hash []byte
	var err error
	if werr := h.run(ctx, func() { hash, err = bcrypt.GenerateFromPassword([]byte(password), h.cost) }); werr != nil {
		return nil, werr
	}
	if err != nil {
		return nil, apierr.Wrap(apierr.InternalServerError, err)
	}
	return hash, nil
}

// Matches reports whether password matches hash; a nil hash (no such user)
// costs the same and never matches.
func (h *Hasher) Matches(ctx context.Context, hash []byte, password string) (bool, error) {
	known := hash != nil
	if !known {
		hash = h.dummy
	}
	var ok bool
	if err := h.run(ctx, func() { ok = h.compare(hash, []byte(password)) == nil }); err != nil {
		return false, err
	}
	return ok && known, nil
}
