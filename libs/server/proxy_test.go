package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/linger"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/libs/testkit"
)

// Behind a reverse proxy that streams the body through, as Traefik and Go's
// httputil.ReverseProxy do, a client that writes its whole oversized body
// before reading gets the JSON 413 on a connection the proxy keeps, for
// bodies of several MiB: the service reads the body to its end before
// answering, so the proxy has passed all of it on, instead of closing its
// client's connection with the body unread (a reset that can lose the answer:
// seen through Traefik with 5 MB).
func TestOversizedBodyThroughAProxyGets413(t *testing.T) {
	app := server.New("test", server.Config{BodyLimitBytes: 64 << 10, RequestTimeout: time.Minute, ReadTimeout: time.Minute},
		slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New(prometheus.NewRegistry(), "test"))
	app.Post("/items", func(c *fiber.Ctx) error { return c.SendStatus(204) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(linger.Listen(ln, linger.DefaultTime, linger.DefaultTimeout)) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	target, err := url.Parse("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	t.Cleanup(proxy.Close)

	for _, size := range []int{70 << 10, 1<<20 + 1, 5 << 20, 8 << 20} {
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d bytes chunked=%v", size, chunked), func(t *testing.T) {
				for range 3 { // a reset loses the answer only some of the time
					resp, body, err := testkit.PostWholeBody(proxy.URL, "/items", size, chunked)
					if err != nil {
						t.Fatal(err)
					}
					var env apierr.Envelope
					if resp.StatusCode != 413 || json.Unmarshal(body, &env) != nil || env.Code != apierr.PayloadTooLargeError {
						t.Fatalf("got %d %s, want the JSON 413 envelope", resp.StatusCode, body)
					}
					if resp.Close {
						t.Fatal("the proxy closed the client's connection after the 413: it had not passed the whole body on, and a client still sending may get a reset instead of the answer")
					}
				}
			})
		}
	}
	// A body within the limit still gets through.
	resp, body, err := testkit.PostWholeBody(proxy.URL, "/items", 1000, true)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("a small chunked body: %v %v %s", err, resp, body)
	}
}
