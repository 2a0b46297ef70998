package e2e_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/moviebag/moviebag/deploy/local/gateway"
	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
)

// operation is one operation of the spec with a concrete path to call.
type operation struct {
	id, method, path string
	summary, tag     string
	secured, hasBody bool
	pathMethods      []string
}

// specOperations lists the spec's operations, {id} filled with a movie id
// that names no movie.
func specOperations(t *testing.T) []operation {
	t.Helper()
	c, err := testkit.API()
	if err != nil {
		t.Fatal(err)
	}
	var ops []operation
	for path, item := range c.Doc.Paths.Map() {
		concrete := strings.ReplaceAll(path, "{id}", "6b06f1ebcf512d8be09e0000")
		var methods []string
		for m := range item.Operations() {
			methods = append(methods, m)
		}
		for m, op := range item.Operations() {
			ops = append(ops, operation{
				id: op.OperationID, method: m, path: concrete, pathMethods: methods, summary: op.Summary, tag: firstTag(op),
				secured: secured(c.Doc, op), hasBody: op.RequestBody != nil,
			})
		}
	}
	slices.SortFunc(ops, func(a, b operation) int { return strings.Compare(a.id, b.id) })
	return ops
}

func firstTag(op *openapi3.Operation) string {
	if len(op.Tags) == 0 {
		return ""
	}
	return op.Tags[0]
}

func secured(doc *openapi3.T, op *openapi3.Operation) bool {
	reqs := doc.Security
	if op.Security != nil {
		reqs = *op.Security
	}
	return len(reqs) > 0 && len(reqs[0]) > 0
}

// Every operation, through the gateway, answers what any request can meet
// as the spec documents it: 405 for a method its path lacks, 413 for a body
// over BODY_LIMIT_BYTES, 431 for headers over what the server reads, 401
// without a token where one is needed, 400 and 415 for a body that is not
// JSON; directly, 408 for a body sent too slowly. Every answer passes
// through testkit's check against the spec.
func TestEveryOperationAnswersRequestErrors(t *testing.T) {
	e := startStack(t, map[string]string{"READ_TIMEOUT": "2s"})
	g := e.GatewayURL
	for _, op := range specOperations(t) {
		t.Run(op.id, func(t *testing.T) {
			if !slices.Contains(op.pathMethods, "PATCH") {
				r := testkit.CallAPI(t, "PATCH", g+op.path, "")
				testkit.Envelope(t, r, apierr.MethodNotAllowedError)
				for _, m := range op.pathMethods {
					if !strings.Contains(r.Header.Get("Allow"), m) {
						t.Errorf("Allow %q lacks %s", r.Header.Get("Allow"), m)
					}
				}
			}
			testkit.Envelope(t, testkit.CallAPI(t, op.method, g+op.path, `{"pad":"`+strings.Repeat("a", 70000)+`"}`), apierr.PayloadTooLargeError)
			testkit.Envelope(t, testkit.CallAPI(t, op.method, g+op.path, "", "X-Padding", strings.Repeat("a", 8192)), apierr.RequestHeadersTooLargeError)
			if op.secured {
				testkit.Envelope(t, testkit.CallAPI(t, op.method, g+op.path, ""), apierr.TokenMissingError)
			}
			if op.hasBody && !op.secured {
				testkit.Envelope(t, testkit.CallAPI(t, op.method, g+op.path, `{"email":`), apierr.InvalidJSONError)
				testkit.Envelope(t, testkit.CallAPI(t, op.method, g+op.path, `{}`, "Content-Type", "text/plain"), apierr.UnsupportedMediaTypeError)
			}
			base := e.AuthURL
			if strings.HasPrefix(op.path, "/api/movies") {
				base = e.MoviesURL
			}
			slowBody(t, base, op)
		})
	}
}

// slowBody sends op's request with only part of its body and checks the
// answer the server gives once READ_TIMEOUT has passed.
func slowBody(t *testing.T, base string, op operation) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	partial := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":", op.method, op.path, u.Host)
	if _, err := io.WriteString(conn, partial); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s sent slowly: no answer: %v", op.method, op.path, err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(op.method, base+op.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := testkit.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if err := testkit.CheckAnswer(req, r); err != nil {
		t.Errorf("the answer breaks the API contract: %v", err)
	}
	testkit.Envelope(t, r, apierr.RequestTimeoutError)
}

// With the services down, the gateway answers every operation with the 503
// envelope and Retry-After, as the spec documents.
func TestEveryOperationWhileTheServicesAreDown(t *testing.T) {
	down := &url.URL{Scheme: "http", Host: testkit.FreeAddr(t)} // nothing listens there
	gw := httptest.NewServer(gateway.New(map[gateway.Upstream]*url.URL{gateway.Auth: down, gateway.Movies: down},
		slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer gw.Close()
	for _, op := range specOperations(t) {
		t.Run(op.id, func(t *testing.T) {
			body := ""
			if op.hasBody {
				body = `{}`
			}
			r := testkit.CallAPI(t, op.method, gw.URL+op.path, body)
			testkit.Envelope(t, r, apierr.ServiceUnavailableError)
			if r.Header.Get("Retry-After") == "" || !bytes.Contains(r.Body, []byte(`"request_id"`)) {
				t.Errorf("503 without Retry-After: %v %s", r.Header, r.Body)
			}
		})
	}
}
