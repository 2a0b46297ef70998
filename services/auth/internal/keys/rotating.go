package keys

import (
	"bytes"
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Rotating is a key set read from a directory and read again at an
// interval, so a key added to the directory (a Kubernetes Secret update) is
// published and takes over signing without a restart.
type Rotating struct {
	dir     string
	current atomic.Pointer[Set]
}

// LoadRotating loads dir; Watch keeps it current.
func LoadRotating(dir string) (*Rotating, error) {
	s, err := Load(dir)
	if err != nil {
		return nil, err
	}
	r := &Rotating{dir: dir}
	r.current.Store(s)
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
			logger.Info("signing keys reloaded", "signer", r.SignerID())
		}
	}
}

// Reload reads the directory again and switches to it when it changed.
func (r *Rotating) Reload() (changed bool, err error) {
	next, err := Load(r.dir)
	if err != nil {
		return false, err
	}
	cur := r.current.Load()
	if next.SignerID() == cur.SignerID() && bytes.Equal(next.JWKS(), cur.JWKS()) {
		return false, nil
	}
	r.current.Store(next)
	return true, nil
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
