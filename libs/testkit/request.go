package testkit

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// CallAPIRequest sends req as it is (several lines of one header included, which
// CallAPI's name-value pairs cannot say), reads the whole answer and checks it
// against the API contract like CallAPI.
func CallAPIRequest(t testing.TB, req *http.Request) Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	r := Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if err := CheckAnswer(req, r); err != nil {
		t.Errorf("the answer breaks the API contract (%s): %v", SpecPath, err)
	}
	return r
}

// NewRequest is http.NewRequest for tests: a JSON body when body is not
// empty, and each header line added as it comes (a name given twice is sent
// on two lines).
func NewRequest(t testing.TB, method, url, body string, headers ...string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(fmt.Errorf("new request: %w", err))
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return req
}
