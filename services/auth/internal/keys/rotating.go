package keys

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Rotating is a key set read from a directory and read again at an
// interval, so a key added to the directory (a Kubernetes Secret update) is
// published and takes over signing without a restart.
//
// A new key is published at once but signs only once this replica has
// published it for the sign delay. Replicas see a Secret update at different
// times (kubelet refreshes each pod's volume on its own sync, up to a minute
// apart, and each replica reads at its own reload interval); a replica that
// signed with a key the moment it saw it would hand out tokens that a
// verifier cannot check yet, because its JWKS fetch may reach a replica that
// does not publish the key. With a delay longer than that skew, every
// replica publishes a key before any signs with it.
//
// The signer is the greatest key (by name) published for at least the delay;
// when none has been (at start, every key is new), the least, which by the
// naming rule is the oldest and the one most likely published everywhere.
// A single key signs at once: there is nothing else to sign with.
type Rotating struct {
	dir   string
	delay time.Duration
	now   func() time.Time

	mu      sync.Mutex           // serialises Reload
	seen    map[string]time.Time // kid → when this replica first published it
	current atomic.Pointer[Set]
}

// LoadRotating loads dir; Watch keeps it current. signDelay is how long a new
// key is published before it signs (0: it signs as soon as it is read).
func LoadRotating(dir string, signDelay time.Duration) (*Rotating, error) {
	return loadRotating(dir, signDelay, time.Now)
}

func loadRotating(dir string, signDelay time.Duration, now func() time.Time) (*Rotating, error) {
	r := &Rotating{dir: dir, delay: signDelay, now: now, seen: map[string]time.Time{}}
	if _, err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Watch reloads the directory every interval until ctx is done. A directory
// that fails to load is logged and the keys in use are kept.
func (r *Rotating) Watch(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := r.Reload()
		if err != nil {
			logger.Warn("signing keys not reloaded; keeping the current ones", "error", err)
			continue
		}
		if changed {
			logger.Info("signing keys reloaded", "signer", r.SignerID(), "published", r.published())
		}
	}
}

// Reload reads the directory again, and picks the signer again (a key may
// have been published long enough since the last call). It reports whether
// the published keys or the signer changed.
func (r *Rotating) Reload() (changed bool, err error) {
	ks, err := readDir(r.dir)
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.ID
		if _, ok := r.seen[k.ID]; !ok {
			r.seen[k.ID] = now
		}
	}
	for id := range r.seen {
		if !slices.Contains(ids, id) {
			delete(r.seen, id)
		}
	}
	signer := 0 // ks is sorted by id: the least, unless a greater one is ready
	for i := len(ks) - 1; i > 0; i-- {
		if now.Sub(r.seen[ks[i].ID]) >= r.delay {
			signer = i
			break
		}
	}
	next, err := newSet(ks, signer)
	if err != nil {
		return false, err
	}
	cur := r.current.Load()
	if cur != nil && next.SignerID() == cur.SignerID() && slices.Equal(next.JWKS(), cur.JWKS()) {
		return false, nil
	}
	r.current.Store(next)
	return true, nil
}

func (r *Rotating) published() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.seen))
	for id := range r.seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// SignerID is the kid of the current signing key.
func (r *Rotating) SignerID() string { return r.current.Load().SignerID() }

// Sign signs with the current signing key.
func (r *Rotating) Sign(claims jwt.Claims) (string, error) { return r.current.Load().Sign(claims) }

// JWKS is the current published key set.
func (r *Rotating) JWKS() []byte { return r.current.Load().JWKS() }

// Keyfunc verifies with the current keys.
func (r *Rotating) Keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) { return r.current.Load().Keyfunc(ctx)(t) }
}
