package token

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// JWKSOptions configure the JWKS cache of a verifying service.
type JWKSOptions struct {
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

// NewJWKS returns a key source backed by a JWKS cache: fetched at start
// (a failure there is logged, not fatal: auth may start later), refreshed in
// the background and on an unknown kid, and kept while the JWKS is
// unreachable. It stops refreshing when ctx is done.
func NewJWKS(ctx context.Context, o JWKSOptions) (func(ctx context.Context) jwt.Keyfunc, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: countingTransport{next: http.DefaultTransport, onFetch: o.OnFetch}}
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{o.URL}, keyfunc.Override{
		Client:          client,
		HTTPTimeout:     5 * time.Second,
		RefreshInterval: o.RefreshInterval,
		// A request never waits for the rate limit: past it, an unknown kid is
		// simply unknown.
		RateLimitWaitMax:  time.Millisecond,
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
	return kf.KeyfuncCtx, nil
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
