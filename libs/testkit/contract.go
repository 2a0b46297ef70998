package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/moviebag/moviebag/libs/requestid"
)

// ContractDirEnv names a directory where every test binary records which
// operations and statuses of the spec it saw answered, and any answer that
// broke the spec; `make test` sets it and checks the records afterwards
// (every documented operation and status exercised, no violation).
const ContractDirEnv = "MOVIEBAG_CONTRACT_DIR"

// SpecPath is the API contract, relative to the repository root.
const SpecPath = "api/openapi.yaml"

// notAPI are paths that are not part of the public API: the admin port's
// probes and metrics, and the local gateway's copy of the spec and its page.
var notAPI = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "/docs": true, "/openapi.yaml": true}

// Contract is the API spec loaded for checking answers against it.
type Contract struct {
	Doc    *openapi3.T
	router routers.Router
}

// API returns the API spec of the repository the test runs in, loaded once.
func API() (*Contract, error) { return loadContract() }

var loadContract = sync.OnceValues(func() (*Contract, error) {
	path, err := findSpec()
	if err != nil {
		return nil, err
	}
	return LoadContract(path)
})

// findSpec walks up from the working directory (a test's package) to the
// repository root's api/openapi.yaml.
func findSpec() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find %s: %w", SpecPath, err)
	}
	for {
		p := filepath.Join(dir, SpecPath)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s above the working directory", SpecPath)
		}
		dir = parent
	}
}

// LoadContract loads and validates the spec at path.
func LoadContract(path string) (*Contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("validate %s: %w", path, err)
	}
	// Answers come from services on any host and port: match paths only.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", path, err)
	}
	return &Contract{Doc: doc, router: router}, nil
}

// Exercised is one documented answer seen: an operation and a status.
type Exercised struct {
	OperationID string
	Status      int
}

// Check reports how the answer to req breaks the spec, nil when it keeps
// it: the status is documented for the operation, the headers it requires
// are present and valid (X-Request-ID always), and the body is valid against
// the schema. A path the spec does not have must answer the NotFoundError
// envelope; a path asked with a method it has no operation for, the 405
// envelope with Allow. It also returns the operations the answer exercised.
func (c *Contract) Check(req *http.Request, r Response) ([]Exercised, error) {
	if notAPI[req.URL.Path] {
		return nil, nil
	}
	if r.Header.Get(requestid.Header) == "" {
		return nil, fmt.Errorf("%s %s answered %d without %s", req.Method, req.URL.Path, r.Status, requestid.Header)
	}
	if err := sameRequestID(req, r); err != nil {
		return nil, err
	}
	route, params, err := c.router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		return nil, c.checkEnvelope(req, r, http.StatusNotFound, "NotFoundError")
	case errors.Is(err, routers.ErrMethodNotAllowed):
		return c.checkMethodNotAllowed(req, r)
	case err != nil:
		return nil, fmt.Errorf("%s %s: find the operation: %w", req.Method, req.URL.Path, err)
	}
	if err := c.validate(req, route, params, r); err != nil {
		return nil, err
	}
	return []Exercised{{route.Operation.OperationID, r.Status}}, nil
}

// sameRequestID checks that an error envelope names the request id its
// X-Request-ID header does.
func sameRequestID(req *http.Request, r Response) error {
	if r.Status < 400 {
		return nil
	}
	var env struct {
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(r.Body, &env); err != nil || env.RequestID != r.Header.Get(requestid.Header) {
		return fmt.Errorf("%s %s answered %d %s with %s %q: want the envelope's request_id in the header",
			req.Method, req.URL.Path, r.Status, r.Body, requestid.Header, r.Header.Get(requestid.Header))
	}
	return nil
}

func (c *Contract) validate(req *http.Request, route *routers.Route, params map[string]string, r Response) error {
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.Status,
		Header:                 r.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(r.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return fmt.Errorf("%s %s (operation %s) answered %d %s %s\nwhich the spec does not allow: %w",
			req.Method, req.URL.Path, route.Operation.OperationID, r.Status, headerLine(r.Header), r.Body, err)
	}
	if r.Status == http.StatusNoContent && len(r.Body) > 0 {
		return fmt.Errorf("%s %s answered 204 with a body %q", req.Method, req.URL.Path, r.Body)
	}
	return nil
}

// checkMethodNotAllowed validates a 405 as every operation of the path
// documents it, and counts it for each of them.
func (c *Contract) checkMethodNotAllowed(req *http.Request, r Response) ([]Exercised, error) {
	var ops []Exercised
	var first *routers.Route
	var params map[string]string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		alt := req.Clone(context.Background())
		alt.Method = m
		route, p, err := c.router.FindRoute(alt)
		if err != nil {
			continue
		}
		if first == nil {
			first, params = route, p
		}
		ops = append(ops, Exercised{route.Operation.OperationID, r.Status})
	}
	if first == nil {
		return nil, fmt.Errorf("%s %s: the spec has the path but no operation on it", req.Method, req.URL.Path)
	}
	if r.Status != http.StatusMethodNotAllowed {
		return nil, fmt.Errorf("%s %s: the spec has no such operation, yet it answered %d %s", req.Method, req.URL.Path, r.Status, r.Body)
	}
	alt := req.Clone(context.Background())
	alt.Method = first.Method
	if err := c.validate(alt, first, params, r); err != nil {
		return nil, err
	}
	return ops, nil
}

// checkEnvelope checks an answer outside every operation: the envelope of
// the given code and status.
func (c *Contract) checkEnvelope(req *http.Request, r Response, status int, code string) error {
	if r.Status != status {
		return fmt.Errorf("%s %s is no path of the spec, yet it answered %d %s", req.Method, req.URL.Path, r.Status, r.Body)
	}
	ref := c.Doc.Components.Schemas["Error"]
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		return fmt.Errorf("%s %s answered %d with a body that is not JSON: %q", req.Method, req.URL.Path, r.Status, r.Body)
	}
	if err := ref.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
		return fmt.Errorf("%s %s answered %d %s, not the error envelope: %w", req.Method, req.URL.Path, r.Status, r.Body, err)
	}
	if m, _ := v.(map[string]any); m["code"] != code {
		return fmt.Errorf("%s %s answered %s, want code %s", req.Method, req.URL.Path, r.Body, code)
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return fmt.Errorf("%s %s answered %d with Content-Type %q", req.Method, req.URL.Path, r.Status, r.Header.Get("Content-Type"))
	}
	return nil
}

func headerLine(h http.Header) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString("[")
	for i, k := range keys {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(k + ": " + strings.Join(h[k], ", "))
	}
	b.WriteString("]")
	return b.String()
}

// contractRecorder writes this test binary's records into ContractDirEnv.
type contractRecorder struct {
	mu   sync.Mutex
	seen map[Exercised]bool
}

var recorder = &contractRecorder{seen: map[Exercised]bool{}}

// CheckAnswer checks r, the answer to req, against the API spec and records
// what it exercised; the returned error says how it broke the spec. CallAPI,
// CallAPIRequest and TryAPI call it for every answer; call it for answers read another way.
func CheckAnswer(req *http.Request, r Response) error {
	c, err := loadContract()
	if err != nil {
		return err
	}
	ops, err := c.Check(req, r)
	recorder.record(ops, err)
	return err
}

func (rec *contractRecorder) record(ops []Exercised, violation error) {
	dir := os.Getenv(ContractDirEnv)
	if dir == "" {
		return
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var lines bytes.Buffer
	for _, o := range ops {
		if !rec.seen[o] {
			rec.seen[o] = true
			fmt.Fprintf(&lines, "exercised %s %d\n", o.OperationID, o.Status)
		}
	}
	if violation != nil {
		fmt.Fprintf(&lines, "violation %s\n", strconv.Quote(violation.Error()))
	}
	if lines.Len() == 0 {
		return
	}
	name := filepath.Join(dir, "answers-"+strconv.Itoa(os.Getpid())+".txt")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testkit: record contract answers: %v\n", err)
		return
	}
	defer func() { _ = f.Close() }()
	if _, err := io.Copy(f, &lines); err != nil {
		fmt.Fprintf(os.Stderr, "testkit: record contract answers: %v\n", err)
	}
}
