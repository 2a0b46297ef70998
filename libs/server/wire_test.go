package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/request"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/libs/testkit"
)

// wireGolden holds what TestWireBytes saw; MOVIEBAG_UPDATE_GOLDEN=1 rewrites it.
const wireGolden = "testdata/wire.golden"

// TestWireBytes holds the bytes a client, a log reader and a scraper see,
// byte for byte, for the outcomes every service shares: each answer's status
// line, headers and body as sent on the connection, the access-log and
// error-log lines (LOG_LEVEL info), and the request and error metrics. Only
// what changes from run to run is masked: the Date header, generated
// request ids, times, durations and a panic's stack; of the duration
// histogram only the counts are kept. An error's own headers are compared
// in sorted order: they come from a map (apierr.Error.Headers). Rewriting the middleware for speed must leave this
// file as it is.
func TestWireBytes(t *testing.T) {
	verifier, bearer := newVerifier(t)

	logs := &testkit.SyncBuffer{}
	logger, err := server.NewLogger(logs, "info", "golden")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	app := server.New("golden", server.Config{RequestTimeout: 5 * time.Second, BodyLimitBytes: 1024, MaxConcurrentRequests: 512},
		logger, metrics.New(reg, "golden"))
	auth := server.RequireToken(verifier)
	app.Get("/items/:id", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.SendString(`{"id":"` + c.Params("id") + `"}`)
	})
	app.Put("/items/:id", func(c *fiber.Ctx) error { return c.SendStatus(204) })
	app.Post("/items", func(c *fiber.Ctx) error { return c.SendStatus(204) })
	app.Get("/panic", func(*fiber.Ctx) error { panic("secret panic value") })
	app.Get("/fail", func(*fiber.Ctx) error { return io.ErrUnexpectedEOF })
	app.Get("/conflict", func(*fiber.Ctx) error { return apierr.New(apierr.MovieAlreadyExistsError) })
	app.Get("/busy", func(*fiber.Ctx) error { return apierr.New(apierr.ServiceUnavailableError) })
	app.Get("/me", auth, func(c *fiber.Ctx) error { return c.SendString(server.TokenClaims(c).Subject) })
	app.Post("/movies", auth, func(c *fiber.Ctx) error {
		if _, err := request.DecodeValid[pathMovie](c); err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusOK)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })

	invalid := `{"name":" ","casts":[],"genres":["Drama"]}`
	requests := []struct{ method, path, headers, body string }{
		{"GET", "/items/7", "X-Request-ID: golden-1\r\n", ""},
		{"GET", "/items/7", "", ""},
		{"GET", "/items/7", "X-Request-ID: bad id\r\n", ""},
		{"HEAD", "/items/7", "X-Request-ID: golden-head\r\n", ""},
		{"GET", "/nowhere", "X-Request-ID: golden-2\r\n", ""},
		{"GET", "/nowhere", "", ""},
		{"PATCH", "/items/7", "X-Request-ID: golden-3\r\n", ""},
		{"BREW", "/items/7", "X-Request-ID: golden-4\r\n", ""},
		{"BREW", "/nowhere", "X-Request-ID: golden-5\r\n", ""},
		{"POST", "/items", "X-Request-ID: golden-6\r\nContent-Type: application/json\r\n", strings.Repeat("x", 2048)},
		{"POST", "/items", "X-Request-ID: golden-7\r\nContent-Encoding: gzip\r\n", "xx"},
		{"GET", "/panic", "X-Request-ID: golden-8\r\n", ""},
		{"GET", "/fail", "X-Request-ID: golden-9\r\n", ""},
		{"GET", "/conflict", "X-Request-ID: golden-10\r\n", ""},
		{"GET", "/busy", "X-Request-ID: golden-11\r\n", ""},
		{"GET", "/me", "X-Request-ID: golden-12\r\n", ""},
		{"GET", "/me", "X-Request-ID: golden-13\r\nAuthorization: Basic eDp5\r\n", ""},
		{"GET", "/me", "X-Request-ID: golden-14\r\nAuthorization: Bearer not.a.token\r\n", ""},
		{"GET", "/me", "X-Request-ID: golden-15\r\nAuthorization: " + bearer + "\r\n", ""},
		{"POST", "/movies", "X-Request-ID: golden-16\r\nContent-Type: application/json\r\nAuthorization: " + bearer + "\r\n", invalid},
		{"POST", "/movies", "X-Request-ID: golden-17\r\nContent-Type: text/plain\r\nAuthorization: " + bearer + "\r\n", invalid},
		{"POST", "/movies", "X-Request-ID: golden-18\r\nContent-Type: application/json\r\nAuthorization: " + bearer + "\r\n", `{"name":`},
		{"POST", "/movies", "X-Request-ID: golden-19\r\nContent-Type: application/json\r\nAuthorization: " + bearer + "\r\n",
			`{"name":null,"casts":[1],"genres":["<b>é\u2028"],"added_by":"x"}`},
		{"POST", "/movies", "X-Request-ID: \"quoted\\u0000\"\r\nContent-Type: application/json\r\nAuthorization: " + bearer + "\r\n",
			`{"name":"Heat","casts":["a"],"genres":["b"]}`},
	}
	var out bytes.Buffer
	for _, r := range requests {
		fmt.Fprintf(&out, "=== %s %s %s\n", r.method, r.path, mask(strings.ReplaceAll(strings.ReplaceAll(r.headers, bearer, "Bearer <token>"), "\r\n", "; ")))
		out.WriteString(sortHeaders(mask(rawExchange(t, ln.Addr().String(), r.method, r.path, r.headers, r.body))))
		out.WriteString("\n")
	}
	_ = app.Shutdown()
	out.WriteString("=== log\n")
	out.WriteString(mask(logs.String()))
	out.WriteString("=== metrics\n")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "http_") && f.GetName() != metrics.ErrorsName {
			continue
		}
		var b bytes.Buffer
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
		out.WriteString(mask(b.String()))
	}

	if os.Getenv("MOVIEBAG_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(wireGolden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(wireGolden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		got := strings.Split(out.String(), "\n")
		exp := strings.Split(string(want), "\n")
		for i := range max(len(got), len(exp)) {
			var g, w string
			if i < len(got) {
				g = got[i]
			}
			if i < len(exp) {
				w = exp[i]
			}
			if g != w {
				t.Fatalf("%s differs from line %d on:\n got %q\nwant %q", wireGolden, i+1, g, w)
			}
		}
	}
}

// rawExchange sends one request on a connection of its own and returns the
// answer as read from the connection.
func rawExchange(t *testing.T, addr, method, path, headers, body string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	req := method + " " + path + " HTTP/1.1\r\nHost: golden\r\nConnection: close\r\n" + headers
	if body != "" {
		req += fmt.Sprintf("Content-Length: %d\r\n", len(body))
	}
	if _, err := io.WriteString(conn, req+"\r\n"+body); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(conn)
	if err != nil && len(answer) == 0 {
		t.Fatal(err)
	}
	return string(answer)
}

var masks = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?m)^Date: .*\r$`), "Date: <date>\r"},
	{regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`), "<uuid4>"},
	{regexp.MustCompile(`"time":"[^"]*"`), `"time":"<time>"`},
	{regexp.MustCompile(`"duration_ms":[0-9.e+-]+`), `"duration_ms":<ms>`},
	{regexp.MustCompile(`(panic: secret panic value)\\n[^"]*`), `$1\n<stack>`},
	{regexp.MustCompile(`(?m)^http_request_duration_seconds_(bucket|sum)\{.*\n`), ""},
}

// sortHeaders puts an answer's header lines in order: an error's own
// headers (apierr.Error.Headers) come from a map, in no fixed order.
func sortHeaders(answer string) string {
	head, body, ok := strings.Cut(answer, "\r\n\r\n")
	if !ok {
		return answer
	}
	lines := strings.Split(head, "\r\n")
	slices.Sort(lines[1:])
	return strings.Join(lines, "\r\n") + "\r\n\r\n" + body
}

// mask replaces what changes from run to run.
func mask(s string) string {
	for _, m := range masks {
		s = m.re.ReplaceAllString(s, m.with)
	}
	return s
}
