package e2e_test

import (
	"bufio"
	"bytes"
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
)

// rawRequest writes a whole request (headers, then every byte of a body of
// size bytes, chunked or with Content-Length) before reading anything, as
// Python's http.client does, then reads the answer.
func rawRequest(base, path string, size int, chunked bool) (*http.Response, []byte, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, nil, err
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = conn.Close() }()
	if err := conn.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		return nil, nil, err
	}
	body := []byte(`{"name":"` + strings.Repeat("x", size-11) + `"}`)
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n", path, u.Host)
	if chunked {
		req.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		for rest := body; len(rest) > 0; {
			n := min(len(rest), 64<<10)
			fmt.Fprintf(&req, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		req.WriteString("0\r\n\r\n")
	} else {
		fmt.Fprintf(&req, "Content-Length: %d\r\n\r\n", len(body))
		req.Write(body)
	}
	if _, err := conn.Write(req.Bytes()); err != nil {
		return nil, nil, fmt.Errorf("write whole request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("read answer: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

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
						resp, body, err := rawRequest(tg.base, tg.path, size, chunked)
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
