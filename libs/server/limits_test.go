package server_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/libs/testkit"
)

func listen(t *testing.T, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	return ln.Addr().String()
}

// getOK asks url and returns an error unless it answers 200; it does not
// touch a testing.T, so any goroutine may call it.
func getOK(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read the body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%d %s", resp.StatusCode, body)
	}
	return nil
}

// Past MAX_CONCURRENT_REQUESTS, requests are shed at once with a 503
// envelope instead of queueing.
func TestConcurrencyLimitSheds(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry(), "test")
	app := server.New("test", server.Config{BodyLimitBytes: 1024, RequestTimeout: time.Minute, MaxConcurrentRequests: 2},
		slog.New(slog.NewTextHandler(io.Discard, nil)), m)
	entered, unblock := make(chan struct{}, 2), make(chan struct{})
	app.Get("/slow", func(c *fiber.Ctx) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-unblock
		return c.SendString("done")
	})
	addr := listen(t, app)

	// The two in-flight requests report to the test's goroutine, which
	// checks them (t.Fatal from any other goroutine does not stop the test).
	inFlight := make(chan error, 2)
	for range 2 {
		go func() { inFlight <- getOK("http://" + addr + "/slow") }()
	}
	release := sync.OnceFunc(func() { close(unblock) })
	defer release()
	for range 2 {
		select {
		case <-entered:
		case err := <-inFlight:
			t.Fatalf("in-flight request ended before its handler ran: %v", err)
		}
	}
	r := testkit.CallUnchecked(t, "GET", "http://"+addr+"/slow", "")
	release()
	for range 2 {
		if err := <-inFlight; err != nil {
			t.Errorf("in-flight request: %v", err)
		}
	}
	testkit.Envelope(t, r, apierr.ServiceUnavailableError)
	if r.Header.Get("Retry-After") == "" {
		t.Error("shed request without Retry-After")
	}
	if got := testutil.ToFloat64(m.Requests.WithLabelValues("GET", metrics.RejectedRoute, "503")); got != 1 {
		t.Errorf("shed requests counted %v, want 1", got)
	}
	// The slots are given back (unblock is closed: the handler returns at once).
	for range 3 {
		if r := testkit.CallUnchecked(t, "GET", "http://"+addr+"/slow", ""); r.Status != 200 {
			t.Errorf("after the load: %d %s", r.Status, r.Body)
		}
	}
}

// A client that sends its headers or body too slowly is cut off by
// READ_TIMEOUT: near the setting, neither before it nor long after.
func TestSlowClientIsCutOff(t *testing.T) {
	const readTimeout = 300 * time.Millisecond
	app := server.New("test", server.Config{BodyLimitBytes: 1024, RequestTimeout: time.Minute, ReadTimeout: readTimeout},
		slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New(prometheus.NewRegistry(), "test"))
	app.Post("/echo", func(c *fiber.Ctx) error { return c.Send(c.Body()) })
	addr := listen(t, app)

	for _, tt := range []struct{ name, partial string }{
		{"slow headers (slowloris)", "GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: "},
		{"slow body", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now() // before the server can start its timer
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			if _, err := io.WriteString(conn, tt.partial); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode < 400 {
					t.Fatalf("slow client answered %d %s", resp.StatusCode, body)
				}
				if !strings.Contains(string(body), `"code"`) {
					t.Errorf("answer to a slow client is not an envelope: %s", body)
				}
			}
			// The lower bound is exact (the server's timer starts after the
			// dial began); the upper one leaves room for a busy machine.
			if elapsed := time.Since(start); elapsed < readTimeout || elapsed > 5*readTimeout {
				t.Errorf("cut off after %v, want about READ_TIMEOUT (%v)", elapsed, readTimeout)
			}
		})
	}
}

// The admin port is up before the service is ready: /healthz 200, /readyz 503.
func TestAdminBeforeReady(t *testing.T) {
	admin := server.NewAdmin(prometheus.NewRegistry())
	if err := admin.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Shutdown(t.Context()) }()
	base := "http://" + admin.Addr()
	if r := testkit.CallAPI(t, "GET", base+"/healthz", ""); r.Status != 200 {
		t.Errorf("healthz %d", r.Status)
	}
	if r := testkit.CallAPI(t, "GET", base+"/readyz", ""); r.Status != 503 {
		t.Errorf("readyz before ready: %d", r.Status)
	}
	admin.SetReady(true)
	if r := testkit.CallAPI(t, "GET", base+"/readyz", ""); r.Status != 200 {
		t.Errorf("readyz when ready: %d", r.Status)
	}
	if r := testkit.CallAPI(t, "GET", base+"/metrics", ""); r.Status != 200 {
		t.Errorf("metrics %d", r.Status)
	}
}

// gzipped compresses b with gzip.
func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A body with any content coding but identity is refused with the 415
// envelope before a handler can read it: nothing is ever decompressed, so
// BODY_LIMIT_BYTES bounds what a handler sees (a gzip body of 1 KiB can
// inflate to 1 MiB and more).
func TestEncodedBodiesAreRefused(t *testing.T) {
	plain := []byte(`{"name":"` + strings.Repeat("x", 256<<10) + `"}`) // gzips to under the test's 1 KiB limit
	bomb := gzipped(t, plain)
	stacked := gzipped(t, bomb)
	tests := []struct {
		name     string
		encoding []string // one Content-Encoding line each
		body     []byte
		want     int
	}{
		{"gzip", []string{"gzip"}, bomb, 415},
		{"gzip upper case", []string{"GZIP"}, bomb, 415},
		{"stacked gzip", []string{"gzip, gzip"}, stacked, 415},
		{"stacked on two lines", []string{"gzip", "gzip"}, stacked, 415},
		{"identity then gzip", []string{"identity, gzip"}, bomb, 415},
		{"deflate", []string{"deflate"}, bomb, 415},
		{"br", []string{"br"}, bomb, 415},
		{"compress", []string{"compress"}, bomb, 415},
		{"unknown coding", []string{"bogus"}, []byte(`{}`), 415},
		{"identity", []string{"identity"}, []byte(`{}`), 204},
		{"identity listed twice", []string{"identity", "Identity"}, []byte(`{}`), 204},
		{"empty header", []string{""}, []byte(`{}`), 204},
		{"no header", nil, []byte(`{}`), 204},
		{"gzip but no body", []string{"gzip"}, nil, 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, _, _ := newApp(t)
			var seen int
			app.Post("/echo", func(c *fiber.Ctx) error {
				seen = len(c.Body()) // the call that would inflate
				return c.SendStatus(204)
			})
			req := httptest.NewRequest("POST", "/echo", bytes.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			for _, e := range tt.encoding {
				req.Header.Add("Content-Encoding", e)
			}
			r := do(t, app, req)
			if r.Status != tt.want {
				t.Fatalf("got %d %s, want %d (handler saw %d bytes)", r.Status, r.Body, tt.want, seen)
			}
			if tt.want == 415 {
				testkit.Envelope(t, r, apierr.UnsupportedMediaTypeError)
				if got := r.Header.Get("Accept-Encoding"); got != "identity" {
					t.Errorf("Accept-Encoding = %q, want identity", got)
				}
				if seen != 0 {
					t.Errorf("the handler ran and saw %d bytes", seen)
				}
			}
		})
	}
}

// A body declared past what the server reads through (16 MiB) is refused on
// its Content-Length with the 413 envelope and Connection: close once its
// first bytes arrive, without reading the rest; one declared within it but
// never sent ends in a 408 at READ_TIMEOUT.
func TestDeclaredBodies(t *testing.T) {
	const readTimeout = 2 * time.Second
	app := server.New("test", server.Config{BodyLimitBytes: 1024, RequestTimeout: time.Minute, ReadTimeout: readTimeout},
		slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New(prometheus.NewRegistry(), "test"))
	app.Post("/echo", func(c *fiber.Ctx) error { return c.SendStatus(204) })
	addr := listen(t, app)
	for _, tt := range []struct {
		name     string
		declared int
		sent     int
		code     apierr.Code
	}{
		{"past the drain limit", 32 << 20, 64 << 10, apierr.PayloadTooLargeError},
		{"within it, never sent", 4 << 20, 0, apierr.RequestTimeoutError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := fmt.Fprintf(conn, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				tt.declared, strings.Repeat("x", tt.sent)); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			testkit.Envelope(t, testkit.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, tt.code)
			if !resp.Close {
				t.Errorf("%d answered on a connection left open: want Connection: close", resp.StatusCode)
			}
			if tt.code == apierr.PayloadTooLargeError && time.Since(start) >= readTimeout {
				t.Errorf("answered after %v: it waited for the body instead of refusing it on its length", time.Since(start))
			}
		})
	}
}
