// Package jwks fetches the auth service's published keys (its JWKS) for a
// verifying service: cached, refreshed in the background and on an unknown
// kid, and kept while auth cannot be reached.
package jwks

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// Options configure the JWKS cache of a verifying service.
type Options struct {
	URL string
	// RefreshInterval is how often the key set is fetched in the background.
	RefreshInterval time.Duration
	// UnknownKIDInterval is the least time between two fetches caused by a
	// token whose kid is not in the cache (a rotated key).
	UnknownKIDInterval time.Duration
	// OnFetch, when set, is told the result of every fetch (for metrics).
	OnFetch func(ok bool)
	Logger  *slog.Logger
}

// New returns a key source backed by a JWKS cache: fetched at start
// (a failure there is logged, not fatal: auth may start later), refreshed in
// the background and on an unknown kid, and kept while the JWKS is
// unreachable. It stops refreshing when ctx is done.
func New(ctx context.Context, o Options) (func(ctx context.Context) jwt.Keyfunc, error) {
	const fetchTimeout = 5 * time.Second
	client := &http.Client{Timeout: fetchTimeout, Transport: countingTransport{next: http.DefaultTransport, onFetch: o.OnFetch}}
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{o.URL}, keyfunc.Override{
		Client:          client,
		HTTPTimeout:     fetchTimeout,
		RefreshInterval: o.RefreshInterval,
		// The fetched set is asked first: the given set is empty, and a
		// lookup that misses in it formats an error (two allocations) on
		// every request's key lookup.
		PrioritizeHTTP: true,
		// jwkset bounds the wait for the rate limit and the fetch that follows
		// with this one deadline (under the request's own), so it is the fetch
		// timeout: a shorter one would fail on-demand fetches that cross a
		// network. Past it, an unknown kid is simply unknown.
		RateLimitWaitMax:  fetchTimeout,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(o.UnknownKIDInterval), 1),
		RefreshErrorHandlerFunc: func(u string) func(ctx context.Context, err error) {
			return func(ctx context.Context, err error) {
				o.Logger.WarnContext(ctx, "JWKS refresh failed; verifying with the cached keys", "url", u, "error", err)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", o.URL, err)
	}
	return coalesce(kf.KeyfuncCtx), nil
}

// coalesce makes concurrent lookups of a kid not yet seen wait for one
// lookup (and the one JWKS refresh it may cause), instead of each racing for
// the refresh rate limit and all but one failing: that is what happens to
// every request in flight when a new signing key starts to be used.
func coalesce(keys func(ctx context.Context) jwt.Keyfunc) func(ctx context.Context) jwt.Keyfunc {
	var (
		known sync.Map // kid → struct{}: found in the cache before
		group singleflight.Group
	)
	return func(ctx context.Context) jwt.Keyfunc {
		inner := keys(ctx)
		return func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			if _, ok := known.Load(kid); ok || kid == "" {
				return inner(t)
			}
			key, err, _ := group.Do(kid, func() (any, error) {
				key, err := inner(t)
				if err == nil {
					known.Store(kid, struct{}{})
				}
				return key, err
			})
			return key, err
		}
	}
}

// countingTransport reports the result of every JWKS fetch.
type countingTransport struct {
	next    http.RoundTripper
	onFetch func(ok bool)
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if t.onFetch != nil {
		t.onFetch(err == nil && resp.StatusCode == http.StatusOK)
	}
	return resp, err
}
