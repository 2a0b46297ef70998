package testkit

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// PostWholeBody posts a JSON body of exactly size bytes to baseURL+path,
// writing all of it (chunked, or with Content-Length) before reading
// anything, as Python's http.client does, then reads the answer. A failed
// write is no error by itself: a server that refused the body may stop
// reading it, and what counts is whether the answer can still be read.
func PostWholeBody(baseURL, path string, size int, chunked bool) (*http.Response, []byte, error) {
	u, err := url.Parse(baseURL)
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
	body := `{"name":"` + strings.Repeat("x", size-11) + `"}`
	w := bufio.NewWriterSize(conn, 64<<10)
	_, _ = fmt.Fprintf(w, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n", path, u.Host)
	if chunked {
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		for rest := body; len(rest) > 0; {
			n := min(len(rest), 64<<10)
			_, _ = fmt.Fprintf(w, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		_, _ = w.WriteString("0\r\n\r\n")
	} else {
		_, _ = fmt.Fprintf(w, "Content-Length: %d\r\n\r\n%s", len(body), body)
	}
	werr := w.Flush() // write errors surface here
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("read the answer (the write: %v): %w", werr, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}
