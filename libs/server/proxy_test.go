package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/linger"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/server"
)

// writeWholeThenRead sends a POST with a body of size bytes, all of it
// (chunked or with Content-Length) before reading anything, as Python's
// http.client does, then reads the answer. A failed write is not an error
// by itself: what counts is whether the answer can still be read.
func writeWholeThenRead(addr string, size int, chunked bool) (*http.Response, []byte, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = conn.Close() }()
	if err := conn.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		return nil, nil, err
	}
	body := `{"name":"` + strings.Repeat("x", size-11) + `"}`
	head := "POST /items HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
	w := bufio.NewWriterSize(conn, 64<<10)
	if chunked {
		_, _ = fmt.Fprint(w, head+"Transfer-Encoding: chunked\r\n\r\n")
		for rest := body; len(rest) > 0; {
			n := min(len(rest), 64<<10)
			_, _ = fmt.Fprintf(w, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		_, _ = fmt.Fprint(w, "0\r\n\r\n")
	} else {
		_, _ = fmt.Fprintf(w, "%sContent-Length: %d\r\n\r\n%s", head, len(body), body)
	}
	// Write errors surface through the flush: a server that refuses the body
	// may stop reading, and the answer is what counts.
	werr := w.Flush()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("read the answer (write: %v): %w", werr, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

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
	proxyAddr := strings.TrimPrefix(proxy.URL, "http://")

	for _, size := range []int{70 << 10, 1<<20 + 1, 5 << 20, 8 << 20} {
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d bytes chunked=%v", size, chunked), func(t *testing.T) {
				for range 3 { // a reset loses the answer only some of the time
					resp, body, err := writeWholeThenRead(proxyAddr, size, chunked)
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
	resp, body, err := writeWholeThenRead(proxyAddr, 1000, true)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("a small chunked body: %v %v %s", err, resp, body)
	}
}
