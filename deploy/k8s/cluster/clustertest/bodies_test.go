package clustertest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// writeWholeThenRead posts a body of size bytes to base+path, all of it (chunked or with Content-Length)
// before reading anything, as Python's http.client does, then reads the answer. A failed write is no
// error by itself: the answer may still be there to read.
func writeWholeThenRead(base, path string, size int, chunked bool) (int, []byte, error) {
	u, err := url.Parse(base)
	if err != nil {
		return 0, nil, err
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = conn.Close() }()
	if err := conn.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		return 0, nil, err
	}
	body := `{"name":"` + strings.Repeat("x", size-11) + `"}`
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
		fmt.Fprintf(&req, "Content-Length: %d\r\n\r\n%s", len(body), body)
	}
	_, werr := conn.Write(req.Bytes())
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, nil, fmt.Errorf("read the answer (the write: %v): %w", werr, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// TestClusterOversizedBodies: through the Gateway and through the Ingress (Traefik; the Ingress only on a
// shape without the Gateway API), a client that writes
// its whole body before reading gets the JSON 413 for bodies of 1, 5 and 8 MB, with and without
// Content-Length, at both services (a 5 MB body was a connection reset through Traefik while the services
// refused it without reading it).
func TestClusterOversizedBodies(t *testing.T) {
	for _, via := range waysIn() {
		base := env(t, via)
		for _, path := range []string{"/api/movies", "/api/auth/signup"} {
			for _, size := range []int{1 << 20, 5 << 20, 8 << 20} {
				for _, chunked := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s %s %d bytes chunked=%v", via, path, size, chunked), func(t *testing.T) {
						status, body, err := writeWholeThenRead(base, path, size, chunked)
						if err != nil {
							t.Fatal(err)
						}
						if status != 413 || !bytes.Contains(body, []byte(`"code":"PayloadTooLargeError"`)) {
							t.Fatalf("got %d %s, want the JSON 413 envelope", status, body)
						}
					})
				}
			}
		}
	}
}
