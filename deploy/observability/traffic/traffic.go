// Package traffic sends requests through the API's way in (the local gateway, or a cluster's Gateway) the
// way the monitoring checks need them: single requests whose answer is read as the error envelope's code,
// and whole user sessions with requests meant to fail among them, so that every series the dashboard and
// the rules read exists and the codes answered are known. deploy/observability's TestLivePrometheus (the
// local stack) and deploy/k8s/cluster's TestClusterMonitoring (the test cluster) drive their traffic with it,
// and deploy/k8s/cluster/load its one-off requests. It needs nothing but the standard library.
package traffic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// Client sends requests to one base URL.
type Client struct {
	// Base is the way in, such as http://127.0.0.1:8080.
	Base string
	// HTTP is the client the requests go through; nil: one with Timeout.
	HTTP *http.Client
	// Timeout bounds each request (default 10 s).
	Timeout time.Duration
	seq     atomic.Uint64 // sessions run, in their users' emails
}

// Answer is what a request got back.
type Answer struct {
	Status int
	Code   string         // the error envelope's code; "" for none
	Body   map[string]any // the body decoded as a JSON object; nil for anything else
}

// Call sends one request, its body JSON-encoded unless nil, with the bearer token unless empty. The error is
// for a request that got no answer.
func (c *Client) Call(ctx context.Context, method, path, token string, body any) (Answer, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Answer{}, err
		}
		rd = bytes.NewReader(b)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return Answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	a := Answer{Status: resp.StatusCode}
	if json.Unmarshal(raw, &a.Body) == nil {
		a.Code, _ = a.Body["code"].(string)
	}
	return a, nil
}

// Token signs the user up (an existing one is fine) and logs in.
func (c *Client) Token(ctx context.Context, email, password string) (string, error) {
	creds := map[string]string{"email": email, "password": password}
	a, err := c.Call(ctx, http.MethodPost, "/api/auth/signup", "", creds)
	if err != nil {
		return "", fmt.Errorf("signup: %w", err)
	}
	if a.Status != http.StatusOK && a.Code != "EmailAlreadyExistsError" {
		return "", fmt.Errorf("signup: %d %s", a.Status, a.Code)
	}
	if a, err = c.Call(ctx, http.MethodPost, "/api/auth/login", "", creds); err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	if tok, _ := a.Body["token"].(string); a.Status == http.StatusOK && tok != "" {
		return tok, nil
	}
	return "", fmt.Errorf("login: %d %s", a.Status, a.Code)
}

// SessionCodes are the error codes each round of Session is meant to produce, once each.
var SessionCodes = []string{"NotFoundError", "SchemaValidationError", "TokenMissingError", "MovieNotExistsError",
	"UnauthorizedError", "TokenRevokedError"}

// Session runs rounds of a new user's session on both services: sign-up, login, me, the JWKS, a movie
// created, read and deleted, the list; then a request for each of SessionCodes: an unknown route, an empty
// sign-up, a create without a token, a malformed movie id, a wrong password, and after the logout the
// revoked token. It returns how many requests it sent and how often each envelope code was answered. An
// answer other than the one meant goes to logf (the API's behaviour is other tests' to prove; this makes
// series); the error is for a request that got no answer.
func (c *Client) Session(ctx context.Context, rounds int, logf func(format string, args ...any)) (sent int, codes map[string]int, err error) {
	codes = map[string]int{}
	var failed error
	do := func(what string, wantStatus int, wantCode, method, path, token string, body any) map[string]any {
		if failed != nil {
			return nil
		}
		sent++
		a, err := c.Call(ctx, method, path, token, body)
		if err != nil {
			failed = fmt.Errorf("%s: %w", what, err)
			return nil
		}
		if a.Code != "" {
			codes[a.Code]++
		}
		if a.Status != wantStatus || a.Code != wantCode {
			logf("%s: %s %s answered %d %q, meant to get %d %q", what, method, path, a.Status, a.Code, wantStatus, wantCode)
		}
		return a.Body
	}
	for i := range rounds {
		email := fmt.Sprintf("traffic-%d-%d-%d@example.com", time.Now().UnixNano(), c.seq.Add(1), i)
		creds := map[string]string{"email": email, "password": "traffic-password"}
		do("signup", 200, "", http.MethodPost, "/api/auth/signup", "", creds)
		token, _ := do("login", 200, "", http.MethodPost, "/api/auth/login", "", creds)["token"].(string)
		do("me", 200, "", http.MethodGet, "/api/auth/me", token, nil)
		do("JWKS", 200, "", http.MethodGet, "/.well-known/jwks.json", "", nil)
		created := do("create a movie", 200, "", http.MethodPost, "/api/movies", token, map[string]any{
			"name": "traffic " + strconv.FormatInt(time.Now().UnixNano(), 36), "casts": []string{"Someone"}, "genres": []string{"Drama"},
		})
		if id, ok := created["id"].(string); ok {
			do("get the movie", 200, "", http.MethodGet, "/api/movies/"+url.PathEscape(id), "", nil)
			do("delete the movie", 204, "", http.MethodDelete, "/api/movies/"+url.PathEscape(id), token, nil)
		}
		do("list movies", 200, "", http.MethodGet, "/api/movies", "", nil)
		// One request for each of SessionCodes.
		do("an unknown route", 404, "NotFoundError", http.MethodGet, "/api/auth/no-such-route", "", nil)
		do("an empty sign-up", 400, "SchemaValidationError", http.MethodPost, "/api/auth/signup", "", map[string]any{})
		do("a create without a token", 401, "TokenMissingError", http.MethodPost, "/api/movies", "",
			map[string]any{"name": "x", "casts": []string{"a"}, "genres": []string{"b"}})
		do("a malformed movie id", 400, "MovieNotExistsError", http.MethodGet, "/api/movies/zzz", "", nil)
		do("login with a wrong password", 401, "UnauthorizedError", http.MethodPost, "/api/auth/login", "",
			map[string]string{"email": email, "password": "wrong-password"})
		do("logout", 204, "", http.MethodPost, "/api/auth/logout", token, nil)
		do("me with the revoked token", 401, "TokenRevokedError", http.MethodGet, "/api/auth/me", token, nil)
		if failed != nil {
			return sent, codes, failed
		}
	}
	return sent, codes, nil
}
