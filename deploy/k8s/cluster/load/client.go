// The client: the transport that puts the current token on each request, the single requests of the
// setup, and the checks after a run (through deploy/observability/traffic, the one client of single requests).

package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/moviebag/moviebag/deploy/observability/traffic"
)

// authMarker asks the transport to add the current token when it sends the request.
const authMarker = "X-Load-Bearer"

// transport puts the current token on the requests that need one at the moment it sends them, and counts
// them in flight until their answer, so that a token is logged out only when nothing carries it.
type transport struct {
	d    *driver
	next http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	d := t.d
	if seq := req.Header.Get("X-Vegeta-Seq"); seq != "" {
		if n, err := strconv.ParseUint(seq, 10, 64); err == nil {
			d.requestIDs.Store(n, req.Header.Get("X-Request-ID"))
		}
	}
	if req.URL.Path == "/api/auth/logout" {
		resp, err := t.next.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusNoContent {
			d.mu.Lock()
			d.revoked = append(d.revoked, strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "))
			d.mu.Unlock()
		}
		return resp, err
	}
	if req.Header.Get(authMarker) == "" {
		return t.next.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	req.Header.Del(authMarker)
	d.mu.Lock()
	tok := d.token
	d.inFlight[tok]++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if d.inFlight[tok]--; d.inFlight[tok] <= 0 {
			delete(d.inFlight, tok)
		}
		d.mu.Unlock()
	}()
	req.Header.Set("Authorization", "Bearer "+tok)
	return t.next.RoundTrip(req)
}

func (d *driver) do(ctx context.Context, method, path, token string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, d.cfg.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("X-Request-ID", fmt.Sprintf("load-%s-setup-%d", d.run, d.seq.Add(1)))
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// envelopeCode is the code of an error envelope, "" if the body is not one.
func envelopeCode(body []byte) string { return field(body, "code") }

func field(body []byte, name string) string {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}

// CheckRevoked asks both services with each token (auth: GET /api/auth/me; movies: POST /api/movies) and
// returns an error naming every answer that is not 401: after a Redis restart, the denylist must still
// refuse the tokens a run logged out (Report.Revoked).
func CheckRevoked(ctx context.Context, baseURL string, tokens []string) error {
	var errs []error
	c := &traffic.Client{Base: baseURL}
	for i, tok := range tokens {
		for _, r := range []struct{ method, path string }{{http.MethodGet, "/api/auth/me"}, {http.MethodPost, "/api/movies"}} {
			a, err := c.Call(ctx, r.method, r.path, tok, map[string]any{"name": "revoked", "casts": []string{}, "genres": []string{}})
			if err == nil && a.Status != http.StatusUnauthorized {
				err = fmt.Errorf("%d, want 401", a.Status)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("revoked token %d: %s %s: %w", i, r.method, r.path, err))
			}
		}
	}
	return errors.Join(errs...)
}

// CheckMovies reads each movie back (GET /api/movies/{id}) and returns an error naming every one that is
// not there: after a MongoDB restart, every movie a run left (Report.Movies) must still be there.
func CheckMovies(ctx context.Context, baseURL string, ids []string) error {
	var errs []error
	c := &traffic.Client{Base: baseURL}
	for _, id := range ids {
		a, err := c.Call(ctx, http.MethodGet, "/api/movies/"+id, "", nil)
		if err == nil && a.Status != http.StatusOK {
			err = fmt.Errorf("%d, want 200", a.Status)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("movie %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}
