package server_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
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

func newApp(t *testing.T) (*fiber.App, *metrics.Metrics, *testkit.SyncBuffer) {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	m := metrics.New(prometheus.NewRegistry(), "test")
	app := server.New("test", server.Config{BodyLimitBytes: 1024, RequestTimeout: 1e9}, logger, m)
	app.Get("/items/:id", func(c *fiber.Ctx) error { return c.SendString("item " + c.Params("id")) })
	app.Put("/items/:id", func(c *fiber.Ctx) error { return c.SendStatus(204) })
	app.Post("/items", func(c *fiber.Ctx) error { return c.SendStatus(204) })
	app.Get("/panic", func(*fiber.Ctx) error { panic("secret panic value") })
	app.Get("/fail", func(*fiber.Ctx) error { return io.ErrUnexpectedEOF })
	app.Get("/conflict", func(*fiber.Ctx) error { return apierr.New(apierr.MovieAlreadyExistsError) })
	return app, m, logs
}

// do serves app on a real loopback listener (so body limits and peer
// addresses are the server's own) and sends req to it.
func do(t *testing.T, app *fiber.App, req *http.Request) testkit.Response {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	defer func() { _ = app.Shutdown() }()
	req.URL.Scheme, req.URL.Host, req.RequestURI = "http", ln.Addr().String(), ""
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return testkit.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

func TestEveryFailureIsAnEnvelope(t *testing.T) {
	tests := []struct {
		name   string
		req    *http.Request
		code   apierr.Code
		header string
		want   string
	}{
		{"unknown route", httptest.NewRequest("GET", "/nowhere", nil), apierr.NotFoundError, "", ""},
		{"wrong method", httptest.NewRequest("PATCH", "/items/7", nil), apierr.MethodNotAllowedError, "Allow", "GET, HEAD, PUT"},
		{"unknown method", httptest.NewRequest("BREW", "/items/7", nil), apierr.MethodNotAllowedError, "Allow", "GET, HEAD, PUT"},
		{"body too large", httptest.NewRequest("POST", "/items", strings.NewReader(strings.Repeat("x", 4096))), apierr.PayloadTooLargeError, "", ""},
		{"panic", httptest.NewRequest("GET", "/panic", nil), apierr.InternalServerError, "", ""},
		{"plain error", httptest.NewRequest("GET", "/fail", nil), apierr.InternalServerError, "", ""},
		{"catalog error", httptest.NewRequest("GET", "/conflict", nil), apierr.MovieAlreadyExistsError, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, m, logs := newApp(t)
			r := do(t, app, tt.req)
			testkit.Envelope(t, r, tt.code)
			if tt.header != "" && r.Header.Get(tt.header) != tt.want {
				t.Errorf("%s = %q, want %q", tt.header, r.Header.Get(tt.header), tt.want)
			}
			if strings.Contains(string(r.Body), "secret") || strings.Contains(string(r.Body), "EOF") {
				t.Errorf("body leaks internals: %s", r.Body)
			}
			if got := testutil.ToFloat64(m.Errors.WithLabelValues(string(tt.code), itoa(tt.code.Status()))); got != 1 {
				t.Errorf("moviebag_errors_total{code=%s} = %v, want 1", tt.code, got)
			}
			if tt.code == apierr.InternalServerError && !strings.Contains(logs.String(), r.Header.Get("X-Request-ID")) {
				t.Errorf("the 500's cause is not logged with its request id: %s", logs)
			}
		})
	}
}

func TestPanicIsLoggedWithStack(t *testing.T) {
	app, _, logs := newApp(t)
	do(t, app, httptest.NewRequest("GET", "/panic", nil))
	if !strings.Contains(logs.String(), "secret panic value") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("panic value and stack not in the log: %s", logs)
	}
}

func TestRequestID(t *testing.T) {
	app, _, _ := newApp(t)
	for _, tt := range []struct{ sent, want string }{
		{"abc-123", "abc-123"},
		{"", ""},
		{"bad id with spaces", ""},
		{strings.Repeat("a", 200), ""},
	} {
		req := httptest.NewRequest("GET", "/nowhere", nil)
		if tt.sent != "" {
			req.Header.Set("X-Request-ID", tt.sent)
		}
		r := do(t, app, req)
		env := testkit.Envelope(t, r, apierr.NotFoundError)
		if tt.want != "" && env.RequestID != tt.want {
			t.Errorf("sent %q, got %q", tt.sent, env.RequestID)
		}
		if tt.want == "" && (env.RequestID == tt.sent || len(env.RequestID) != 36) {
			t.Errorf("sent %q, got %q: want a fresh UUID", tt.sent, env.RequestID)
		}
	}
}

func TestMetricsUseRouteTemplates(t *testing.T) {
	app, m, _ := newApp(t)
	for _, p := range []string{"/items/1", "/items/2", "/x/1", "/x/2"} {
		do(t, app, httptest.NewRequest("GET", p, nil))
	}
	if got := testutil.ToFloat64(m.Requests.WithLabelValues("GET", "/items/:id", "200")); got != 2 {
		t.Errorf("requests{route=/items/:id} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.Requests.WithLabelValues("GET", metrics.UnmatchedRoute, "404")); got != 2 {
		t.Errorf("requests{route=unmatched} = %v, want 2", got)
	}
	if n := testutil.CollectAndCount(m.Requests); n != 2 {
		t.Errorf("%d request series, want 2 (no raw paths)", n)
	}
}

func TestClientIP(t *testing.T) {
	for _, cfg := range []server.Config{
		{TrustedProxies: []string{"not-a-cidr"}, ClientIPv6Prefix: 64},
		{ClientIPv6Prefix: 0},
		{ClientIPv6Prefix: 129},
	} {
		if _, err := server.NewClients(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	clients := func(prefix int, trusted ...string) *server.Clients {
		cl, err := server.NewClients(server.Config{TrustedProxies: trusted, ClientIPv6Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	loopback := clients(64, "10.0.0.0/8", "127.0.0.0/8")
	elsewhere := clients(64, "10.0.0.0/8")
	tests := []struct {
		name    string
		clients *server.Clients
		xff     []string
		want    string
	}{
		{"untrusted peer: header ignored", elsewhere, []string{"1.2.3.4"}, "127.0.0.1"},
		{"through one proxy", loopback, []string{"198.51.100.7"}, "198.51.100.7"},
		{"spoofed left-most entry skipped", loopback, []string{"6.6.6.6, 198.51.100.7, 10.2.2.2"}, "198.51.100.7"},
		{"no header", loopback, nil, "127.0.0.1"},
		{"garbage header", loopback, []string{"not-an-ip"}, "127.0.0.1"},
		{"garbage behind a trusted hop", loopback, []string{"not-an-ip, 10.2.2.2"}, "10.2.2.2"},
		{"several lines are one list", loopback, []string{"6.6.6.6", "198.51.100.7, 10.2.2.2", "10.3.3.3"}, "198.51.100.7"},
		{"ip:port", loopback, []string{"198.51.100.7:4711, 10.2.2.2:80"}, "198.51.100.7"},
		{"[v6]:port", loopback, []string{"[2001:db8::7]:443"}, "2001:db8::/64"},
		{"[v6]", loopback, []string{"[2001:db8::7]"}, "2001:db8::/64"},
		{"IPv6 by /64", loopback, []string{"2001:db8:0:5:aaaa::1"}, "2001:db8:0:5::/64"},
		{"IPv6 by /128", clients(128, "127.0.0.0/8"), []string{"2001:db8:0:5:aaaa::1"}, "2001:db8:0:5:aaaa::1/128"},
		{"IPv4-mapped IPv6", loopback, []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := fiber.New()
			app.Get("/", func(c *fiber.Ctx) error { return c.SendString(tt.clients.Key(c)) })
			req := httptest.NewRequest("GET", "/", nil)
			for _, line := range tt.xff {
				req.Header.Add("X-Forwarded-For", line)
			}
			if r := do(t, app, req); string(r.Body) != tt.want {
				t.Errorf("got %s, want %s", r.Body, tt.want)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestAccessLogTimes holds the access-log line's time and duration_ms, and
// the duration histogram, to the clock: the duration runs from when the
// server began reading the request to when it was counted, and the line's
// time is when the duration ends.
func TestAccessLogTimes(t *testing.T) {
	const nap = 20 * time.Millisecond
	logs := &testkit.SyncBuffer{}
	reg := prometheus.NewRegistry()
	app := server.New("test", server.Config{BodyLimitBytes: 1024, RequestTimeout: time.Second},
		slog.New(slog.NewJSONHandler(logs, nil)), metrics.New(reg, "test"))
	app.Get("/nap", func(c *fiber.Ctx) error {
		time.Sleep(nap)
		return c.SendStatus(204)
	})
	before := time.Now()
	if r := do(t, app, httptest.NewRequest(http.MethodGet, "/nap", nil)); r.Status != 204 {
		t.Fatalf("status %d", r.Status)
	}
	took := time.Since(before)
	var line struct {
		Time       time.Time `json:"time"`
		Msg        string    `json:"msg"`
		DurationMS float64   `json:"duration_ms"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &line); err != nil || line.Msg != "request" {
		t.Fatalf("access log %q: %v", logs.String(), err)
	}
	// After the handler's nap; the line's time has milliseconds.
	if lo, hi := before.Add(nap).Truncate(time.Millisecond), before.Add(took); line.Time.Before(lo) || line.Time.After(hi) {
		t.Errorf("access log time %v, want %v to %v", line.Time, lo, hi)
	}
	if d := time.Duration(line.DurationMS * float64(time.Millisecond)); d < nap || d > took {
		t.Errorf("duration_ms %v, want %v to %v", line.DurationMS, nap, took)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == metrics.DurationName {
			h := f.GetMetric()[0].GetHistogram()
			if s := time.Duration(h.GetSampleSum() * float64(time.Second)); h.GetSampleCount() != 1 || s < nap || s > took {
				t.Errorf("%s: %d requests, %v in all; want 1, %v to %v", metrics.DurationName, h.GetSampleCount(), s, nap, took)
			}
		}
	}
}
