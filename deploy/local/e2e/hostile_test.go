package e2e_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
)

// Every client gets the JSON 413 for a body over BODY_LIMIT_BYTES, up to at
// least 8 MiB, even one that writes its whole body before reading: directly
// from both services and through the gateway. Repeated, because a reset
// loses the answer only some of the time.
func TestOversizedBodiesGet413(t *testing.T) {
	e := startStack(t, nil)
	targets := []struct{ name, base, path string }{
		{"gateway auth", e.GatewayURL, "/api/auth/signup"},
		{"gateway movies", e.GatewayURL, "/api/movies"},
		{"auth", e.AuthURL, "/api/auth/signup"},
		{"movies", e.MoviesURL, "/api/movies"},
	}
	sizes := []int{70 << 10, 1<<20 + 1, 8 << 20}
	for _, tg := range targets {
		for _, size := range sizes {
			for _, chunked := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s %d bytes chunked=%v", tg.name, size, chunked), func(t *testing.T) {
					for range 3 {
						resp, body, err := testkit.PostWholeBody(tg.base, tg.path, size, chunked)
						if err != nil {
							t.Fatal(err)
						}
						var env apierr.Envelope
						if resp.StatusCode != 413 || json.Unmarshal(body, &env) != nil || env.Code != apierr.PayloadTooLargeError ||
							resp.Header.Get("Content-Type") != "application/json" {
							t.Fatalf("got %d %q %s, want the JSON 413 envelope", resp.StatusCode, resp.Header.Get("Content-Type"), body)
						}
					}
				})
			}
		}
	}
}

// The gateway cuts off a client dripping its body after READ_TIMEOUT with a
// 408 envelope, and closes idle keep-alive connections after IDLE_TIMEOUT.
func TestGatewayTimesOutSlowClients(t *testing.T) {
	e := startStack(t, map[string]string{"READ_TIMEOUT": "1s", "WRITE_TIMEOUT": "10s", "IDLE_TIMEOUT": "1s"})
	u, _ := url.Parse(e.GatewayURL)

	t.Run("dripped body", func(t *testing.T) {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Fprintf(conn, "POST /api/auth/signup HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", u.Host); err != nil {
			t.Fatal(err)
		}
		answered := make(chan struct{})
		go func() { // one byte at a time until the gateway answers or the connection breaks
			for {
				select {
				case <-answered:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		close(answered)
		if err != nil {
			t.Fatalf("no answer to a dripped body: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		var env apierr.Envelope
		if resp.StatusCode != 408 || json.Unmarshal(body, &env) != nil || env.Code != apierr.RequestTimeoutError {
			t.Fatalf("got %d %s, want the 408 envelope", resp.StatusCode, body)
		}
	})

	t.Run("idle keep-alive", func(t *testing.T) {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Fprintf(conn, "GET /api/movies HTTP/1.1\r\nHost: %s\r\n\r\n", u.Host); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		// Nothing more is sent: the gateway must close the connection (EOF) well before the deadline.
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("idle connection not closed by the gateway: %v", err)
		}
	})
}

// gzipLayers compresses b with gzip n times over.
func gzipLayers(t *testing.T, b []byte, n int) []byte {
	t.Helper()
	for range n {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		b = buf.Bytes()
	}
	return b
}

// bytesAllocated is the stack process's total of heap bytes ever allocated,
// from a service's metrics endpoint (the whole stack runs in this process).
func bytesAllocated(t *testing.T, adminURL string) float64 {
	t.Helper()
	series := testkit.Series("go_memstats_alloc_bytes_total", "service", "auth")
	v, ok := testkit.Scrape(t, adminURL+"/metrics")[series]
	if !ok {
		t.Fatalf("%s/metrics has no %s", adminURL, series)
	}
	return v
}

// Decompression bombs are refused with the 415 envelope, at each service and
// through the gateway, without ever being inflated: a gzip body of about 8 KB
// that inflates to 8 MB of JSON and a stacked `gzip, gzip` body of a few
// hundred bytes that inflates to 50 MB cost the process no more than a few
// MiB of allocation in all (inflated, they would cost 58 MB a request).
func TestCompressedBombsAreRefused(t *testing.T) {
	e := startStack(t, nil)
	e.signup(t, "bomber@example.com")
	token := e.login(t, "bomber@example.com")
	json8MB := []byte(`{"email":"` + strings.Repeat("x", 8<<20) + `@example.com","password":"secret123"}`)
	json50MB := []byte(`{"name":"` + strings.Repeat("x", 50<<20) + `","casts":["a"],"genres":["b"]}`)
	bombs := []struct {
		name, encoding string
		body           []byte
	}{
		{"gzip 8 MB", "gzip", gzipLayers(t, json8MB, 1)},
		{"gzip, gzip 50 MB", "gzip, gzip", gzipLayers(t, json50MB, 2)},
	}
	t.Logf("bombs on the wire: %d and %d bytes", len(bombs[0].body), len(bombs[1].body))
	targets := []struct{ name, url string }{
		{"auth", e.AuthURL + "/api/auth/signup"},
		{"movies", e.MoviesURL + "/api/movies"},
		{"gateway auth", e.GatewayURL + "/api/auth/signup"},
		{"gateway movies", e.GatewayURL + "/api/movies"},
	}
	before := bytesAllocated(t, e.AuthAdminURL)
	for _, tg := range targets {
		for _, b := range bombs {
			r := testkit.CallAPI(t, "POST", tg.url, string(b.body), append(testkit.Bearer(token),
				"Content-Type", "application/json", "Content-Encoding", b.encoding)...)
			if r.Status != 415 {
				t.Fatalf("%s, %s: got %d %s, want the 415 envelope", tg.name, b.name, r.Status, r.Body)
			}
			testkit.Envelope(t, r, apierr.UnsupportedMediaTypeError)
			if got := r.Header.Get("Accept-Encoding"); got != "identity" {
				t.Errorf("%s, %s: Accept-Encoding = %q, want identity", tg.name, b.name, got)
			}
		}
	}
	const budget = 8 << 20 // for 8 requests, their answers and the scrapes: far below one inflated bomb
	if grew := bytesAllocated(t, e.AuthAdminURL) - before; grew > budget {
		t.Fatalf("the bombs cost %.1f MiB of allocation (budget %d MiB): a body was inflated", grew/(1<<20), budget>>20)
	}
}

// A body is taken as application/json with no parameter but charset=utf-8,
// and nothing else: JSON-based types of other meaning and forms get the 415
// envelope (a multipart body used to be parsed first and answered 400), at
// each service and through the gateway; a plain JSON body still gets through.
func TestOnlyPlainJSONBodiesAreAccepted(t *testing.T) {
	e := startStack(t, nil)
	const form = "--b\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nx@example.com\r\n--b--\r\n"
	refused := []struct{ contentType, body string }{
		{"multipart/form-data; boundary=b", form},
		{"multipart/form-data; boundary=other", form}, // not parsable as a form at all
		{"application/x-www-form-urlencoded", "email=x%40example.com&password=secret123"},
		{"application/json-patch+json", `{"email":"p@example.com","password":"secret123"}`},
		{"application/vnd.api+json", `{"email":"v@example.com","password":"secret123"}`},
		{"application/json; charset=latin1", `{"email":"l@example.com","password":"secret123"}`},
		{"text/plain", `{"email":"t@example.com","password":"secret123"}`},
	}
	for _, base := range []string{e.AuthURL, e.GatewayURL} {
		for _, tt := range refused {
			r := testkit.CallAPI(t, "POST", base+"/api/auth/signup", tt.body, "Content-Type", tt.contentType)
			if r.Status != 415 {
				t.Fatalf("%s with %q: got %d %s, want the 415 envelope", base, tt.contentType, r.Status, r.Body)
			}
			testkit.Envelope(t, r, apierr.UnsupportedMediaTypeError)
		}
	}
	r := testkit.CallAPI(t, "POST", e.GatewayURL+"/api/auth/signup", `{"email":"ok@example.com","password":"secret123"}`,
		"Content-Type", "application/json; charset=UTF-8")
	if r.Status != 200 {
		t.Fatalf("plain JSON with charset=UTF-8: got %d %s, want 200", r.Status, r.Body)
	}
	token := e.login(t, "ok@example.com")
	for _, base := range []string{e.MoviesURL, e.GatewayURL} {
		r := testkit.CallAPI(t, "POST", base+"/api/movies", form, append(testkit.Bearer(token), "Content-Type", "multipart/form-data; boundary=b")...)
		if r.Status != 415 {
			t.Fatalf("movies at %s with a form: got %d %s, want the 415 envelope", base, r.Status, r.Body)
		}
		testkit.Envelope(t, r, apierr.UnsupportedMediaTypeError)
	}
}
