package gateway_test

import (
	"bufio"
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/moviebag/moviebag/deploy/local/gateway"
)

// BenchmarkGateway prices the gateway's own per request work, as `make run`
// serves it (NewServer's handler: the body limit, the request id, the
// routing table, the reverse proxy and its connection pool to the
// upstream), without the HTTP server in front: the handler is called with a
// reused request and a response writer that keeps nothing. The upstream is
// a bare HTTP/1.1 responder on loopback that allocates nothing per request,
// so the allocations are the gateway's and its transport's.
func BenchmarkGateway(b *testing.B) {
	upstream := rawUpstream(b)
	u, _ := url.Parse("http://" + upstream)
	h := gateway.NewServer(gateway.New(map[gateway.Upstream]*url.URL{gateway.Auth: u, gateway.Movies: u},
		slog.New(slog.DiscardHandler)), gateway.Config{BodyLimitBytes: 65536}).Handler

	body := []byte(`{"name":" ","casts":[],"genres":["Drama"]}`)
	cases := []struct {
		name, method, path string
		body               []byte
		status             int
	}{
		{"proxied GET 200", "GET", "/.well-known/jwks.json", nil, 200},
		{"proxied POST with body", "POST", "/api/movies", body, 200},
		{"no route 404 envelope", "GET", "/nowhere", nil, 404},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			req.RemoteAddr = "127.0.0.1:40000"
			var rd bytes.Reader
			rb := &reusableBody{r: &rd}
			if tc.body != nil {
				req.Header.Set("Content-Type", "application/json")
				req.ContentLength = int64(len(tc.body))
			}
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				if tc.body != nil {
					rd.Reset(tc.body)
					req.Body = rb
				}
				clear(w.header)
				w.status = 0
				h.ServeHTTP(w, req)
				if w.status != tc.status {
					b.Fatalf("status %d, want %d", w.status, tc.status)
				}
			}
		})
	}
}

// reusableBody is a request body that can be read again after a Reset of
// its reader, so that the loop allocates none.
type reusableBody struct{ r *bytes.Reader }

func (b *reusableBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *reusableBody) Close() error               { return nil }

// discardWriter is a ResponseWriter that keeps the status and drops the body.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}
func (w *discardWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

// rawUpstream serves every request on every connection with one fixed 200
// answer, reading the request's headers and Content-Length body into
// buffers of the connection: an upstream whose own cost is next to nothing.
func rawUpstream(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	const jwks = `{"keys":[{"kid":"bench-1"}]}`
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(jwks)) + "\r\n\r\n" + jwks)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = conn.Close() }()
				r := bufio.NewReader(conn)
				for {
					length := 0
					for {
						line, err := r.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
						if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
							for _, c := range bytes.TrimSpace(v) { // no strconv: nothing allocated here
								length = length*10 + int(c-'0')
							}
						}
					}
					if _, err := r.Discard(length); err != nil {
						return
					}
					if _, err := conn.Write(answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
