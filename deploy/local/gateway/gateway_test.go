package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moviebag/moviebag/deploy/local/gateway"
	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		path string
		want gateway.Upstream
	}{
		{"/api/auth/signup", gateway.Auth},
		{"/api/auth/login", gateway.Auth},
		{"/api/auth", gateway.Auth},
		{"/.well-known/jwks.json", gateway.Auth},
		{"/api/movies", gateway.Movies},
		{"/api/movies/6b06f1ebcf512d8be09e8da8", gateway.Movies},
		{"/api/moviesx", ""},
		{"/api/authz", ""},
		{"/.well-known/other", ""},
		{"/", ""},
		{"/metrics", ""},
	}
	for _, tt := range tests {
		got, ok := gateway.Match(tt.path)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("Match(%q) = %q, %v; want %q", tt.path, got, ok, tt.want)
		}
	}
}

func TestProxy(t *testing.T) {
	var seen http.Header
	movies := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		_, _ = io.WriteString(w, "movies:"+r.URL.Path)
	}))
	defer movies.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // auth is down
	mu, _ := url.Parse(movies.URL)
	du, _ := url.Parse(down.URL)
	gw := httptest.NewServer(gateway.New(map[gateway.Upstream]*url.URL{gateway.Auth: du, gateway.Movies: mu},
		slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer gw.Close()

	r := testkit.CallUnchecked(t, "GET", gw.URL+"/api/movies/1", "", "X-Request-ID", "trace-1") // a fake upstream
	if r.Status != 200 || string(r.Body) != "movies:/api/movies/1" {
		t.Fatalf("proxied: %d %s", r.Status, r.Body)
	}
	if seen.Get("X-Request-ID") != "trace-1" || seen.Get("X-Forwarded-For") == "" {
		t.Errorf("upstream saw %v", seen)
	}
	testkit.Envelope(t, testkit.CallAPI(t, "GET", gw.URL+"/nowhere", ""), apierr.NotFoundError)
	unavailable := testkit.CallAPI(t, "POST", gw.URL+"/api/auth/login", `{}`)
	testkit.Envelope(t, unavailable, apierr.ServiceUnavailableError)
	if unavailable.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

// Traffic goes only to ready backends, round-robin, as a Service follows readiness.
func TestBalancedFollowsReadiness(t *testing.T) {
	var readyB atomic.Bool
	mk := func(name string, ready func() bool) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/readyz" {
				if !ready() {
					w.WriteHeader(503)
				}
				return
			}
			_, _ = io.WriteString(w, name)
		}))
	}
	a := mk("a", func() bool { return true })
	defer a.Close()
	b := mk("b", readyB.Load)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	au, _ := url.Parse(a.URL)
	bu, _ := url.Parse(b.URL)
	gw := httptest.NewServer(gateway.NewBalanced(ctx, map[gateway.Upstream][]gateway.Backend{
		gateway.Movies: {{URL: au, ReadyURL: a.URL + "/readyz"}, {URL: bu, ReadyURL: b.URL + "/readyz"}},
	}, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer gw.Close()

	get := func() string {
		return string(testkit.CallUnchecked(t, "GET", gw.URL+"/api/movies", "").Body) // fake upstreams
	}
	count := func(n int) map[string]int {
		seen := map[string]int{}
		for range n {
			seen[get()]++
		}
		return seen
	}
	answers := func(want string) func() error {
		return func() error {
			if got := get(); got != want {
				return fmt.Errorf("answered %q, want %q", got, want)
			}
			return nil
		}
	}
	// Backends start not ready until a readiness poll says otherwise. On a
	// busy machine a poll may time out and take a backend out for a moment:
	// the checks below allow for that, not for traffic to a backend that
	// never said it was ready.
	testkit.Eventually(t, 10*time.Second, answers("a"))
	if seen := count(10); seen["b"] != 0 || seen["a"] == 0 {
		t.Errorf("with b not ready: %v", seen)
	}
	readyB.Store(true)
	testkit.Eventually(t, 10*time.Second, answers("b"))
	if seen := count(20); seen["a"] < 5 || seen["b"] < 5 {
		t.Errorf("with both ready, want round-robin (10 each, at least 5): %v", seen)
	}
	a.Close()
	b.Close()
	testkit.Eventually(t, 10*time.Second, func() error {
		if r := testkit.CallUnchecked(t, "GET", gw.URL+"/api/movies", ""); r.Status != http.StatusServiceUnavailable {
			return fmt.Errorf("answered %d %s, want 503", r.Status, r.Body)
		}
		return nil
	})
	testkit.Envelope(t, testkit.CallAPI(t, "GET", gw.URL+"/api/movies", ""), apierr.ServiceUnavailableError)
}

// A body the gateway stops reading at BODY_LIMIT_BYTES (chunked, so not
// refused by its declared length) is the client's fault: 413, not the 503 of
// an upstream that failed; one within the limit reaches the upstream whole.
func TestBodyOverTheLimitWhileProxied(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		_, _ = fmt.Fprintf(w, "got %d bytes", len(body))
	}))
	defer upstream.Close()
	u, _ := url.Parse(upstream.URL)
	gw := httptest.NewServer(gateway.NewServer(gateway.New(map[gateway.Upstream]*url.URL{gateway.Auth: u, gateway.Movies: u},
		slog.New(slog.NewTextHandler(io.Discard, nil))), gateway.Config{BodyLimitBytes: 16}).Handler)
	defer gw.Close()

	post := func(body string) *http.Response {
		t.Helper()
		// An io.Reader that is not a strings.Reader: sent chunked, no length.
		req, err := http.NewRequest("POST", gw.URL+"/api/movies", io.MultiReader(strings.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Request-ID", "limit-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post(strings.Repeat("x", 100))
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	env := testkit.Envelope(t, testkit.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, apierr.PayloadTooLargeError)
	if env.RequestID != "limit-1" || resp.Header.Get("X-Request-ID") != "limit-1" {
		t.Errorf("request id %q, header %q: want limit-1", env.RequestID, resp.Header.Get("X-Request-ID"))
	}
	resp = post("0123456789")
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "got 10 bytes" {
		t.Errorf("within the limit: %d %s", resp.StatusCode, body)
	}
}

// The same body is over the limit, and the answer is 413, when the upstream
// closes the connection before the gateway has read that far: the round trip
// fails on the upstream's side first, while the transport still waits for
// the client's next bytes. Which of the two stops first must not turn the
// client's 413 into the 503 of an upstream that failed.
func TestBodyOverTheLimitWhenTheUpstreamClosesFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	closed := make(chan struct{})
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		// The request's head, then the connection closed with a reset.
		_, _ = bufio.NewReader(conn).ReadString('\n')
		_ = conn.(*net.TCPConn).SetLinger(0)
		_ = conn.Close()
		close(closed)
	}()
	u, _ := url.Parse("http://" + ln.Addr().String())
	gw := httptest.NewServer(gateway.NewServer(gateway.New(map[gateway.Upstream]*url.URL{gateway.Auth: u, gateway.Movies: u},
		slog.New(slog.NewTextHandler(io.Discard, nil))), gateway.Config{BodyLimitBytes: 64 << 10}).Handler)
	defer gw.Close()

	body, w := io.Pipe()
	go func() {
		_, _ = w.Write([]byte("01234567")) // within the limit: sent on
		<-closed
		time.Sleep(100 * time.Millisecond) // the round trip has failed by now
		// More than the transport buffers: its write to the closed
		// connection fails before the gateway reads past the limit.
		_, _ = w.Write([]byte(strings.Repeat("x", 100<<10)))
		_ = w.Close()
	}()
	req, err := http.NewRequest("POST", gw.URL+"/api/movies", body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	testkit.Envelope(t, testkit.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, apierr.PayloadTooLargeError)
}
