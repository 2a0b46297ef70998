// Package testkit is what the moviebag tests share: the real MongoDB-protocol
// storage and Redis that `make test` starts (FerretDB and redis-server on
// free ports, through deploy/local/cmd/testdeps), services started through
// their Run functions, a token issuer with its own JWKS, and HTTP helpers.
// Only tests import it.
package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/libs/testkit/poll"
)

// The variables through which `make test` hands the storage to the tests.
const (
	MongoEnv = "MOVIEBAG_TEST_MONGO_URI"
	RedisEnv = "MOVIEBAG_TEST_REDIS_URL"
	// RedisClusterEnv is the REDIS_URL of a 3-master Redis Cluster.
	RedisClusterEnv = "MOVIEBAG_TEST_REDIS_CLUSTER_URL"
	// RedisSentinelEnv is the REDIS_URL of a Sentinel-managed primary with a
	// replica (tests may fail it over).
	RedisSentinelEnv = "MOVIEBAG_TEST_REDIS_SENTINEL_URL"
)

func fromEnv(t testing.TB, key, what string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		t.Fatalf("%s is not set: this test needs a real %s. Run it with `make test`, which starts FerretDB and "+
			"redis-server on free ports, or `go run ./deploy/local/cmd/testdeps -- go test ./...` from the repository root", key, what)
	}
	return v
}

// MongoURI is the test MongoDB-protocol server; the test fails when there is none.
func MongoURI(t testing.TB) string { return fromEnv(t, MongoEnv, "MongoDB-protocol server") }

// RedisURL is the test Redis server; the test fails when there is none.
func RedisURL(t testing.TB) string { return fromEnv(t, RedisEnv, "Redis server") }

// RedisClusterURL is the test Redis Cluster; the test fails when there is none.
func RedisClusterURL(t testing.TB) string { return fromEnv(t, RedisClusterEnv, "Redis Cluster") }

// RedisSentinelURL is the test Sentinel-managed Redis; the test fails when
// there is none.
func RedisSentinelURL(t testing.TB) string {
	return fromEnv(t, RedisSentinelEnv, "Sentinel-managed Redis")
}

// RedisTopologies are the test Redis deployments by name, for a test that
// must hold on each: one server, a Redis Cluster and a Sentinel-managed
// primary. The test fails when one of them is missing.
func RedisTopologies(t testing.TB) map[string]string {
	t.Helper()
	return map[string]string{"server": RedisURL(t), "cluster": RedisClusterURL(t), "sentinel": RedisSentinelURL(t)}
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// Database returns a database name of its own for the test, so tests never
// see each other's data.
func Database(t testing.TB) string {
	name := unsafeName.ReplaceAllString(t.Name(), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	return "t_" + name + "_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
}

// FreeAddr returns a loopback address that was free a moment ago: only for
// a process started outside this one, which cannot report the port it
// bound. A service started in-process listens on ":0" and reports its
// addresses instead (Start).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// RunFunc is a service's Run.
type RunFunc func(ctx context.Context, getenv func(string) string, stdout io.Writer, ready func(server.Addrs)) error

// Service is a service started by Start.
type Service struct {
	URL      string // API base URL
	AdminURL string
	Logs     *SyncBuffer
	stop     context.CancelFunc
	done     chan error
}

// Start runs a service through its Run function with env as its whole
// environment (HTTP_ADDR and ADMIN_ADDR default to loopback port 0), waits
// until Run reports it ready and stops it when the test ends.
func Start(t testing.TB, run RunFunc, env map[string]string) *Service {
	t.Helper()
	env = clone(env)
	for _, k := range []string{"HTTP_ADDR", "ADMIN_ADDR"} {
		if env[k] == "" {
			env[k] = "127.0.0.1:0"
		}
	}
	if env["LOG_LEVEL"] == "" {
		env["LOG_LEVEL"] = "warn"
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{Logs: &SyncBuffer{}, stop: cancel, done: make(chan error, 1)}
	ready := make(chan server.Addrs, 1)
	go func() {
		s.done <- run(ctx, func(k string) string { return env[k] }, s.Logs, func(a server.Addrs) { ready <- a })
	}()
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("service stopped with an error: %v\nlogs:\n%s", err, s.Logs)
		}
	})
	select {
	case a := <-ready:
		s.URL, s.AdminURL = "http://"+a.HTTP, "http://"+a.Admin
		return s
	case err := <-s.done:
		cancel()
		s.stop = nil // Run has returned: nothing to stop
		t.Fatalf("service exited before it was ready: %v\nlogs:\n%s", err, s.Logs)
	case <-time.After(startTimeout):
		t.Fatalf("service not ready after %v\nlogs:\n%s", startTimeout, s.Logs)
	}
	return nil
}

// startTimeout bounds a service's start in tests: generous, for a busy
// machine.
const startTimeout = 60 * time.Second

// Stop stops the service (as SIGTERM would) and returns Run's error.
func (s *Service) Stop() error {
	if s.stop == nil {
		return nil
	}
	s.stop()
	s.stop = nil
	select {
	case err := <-s.done:
		return err
	case <-time.After(30 * time.Second):
		return context.DeadlineExceeded
	}
}

// Eventually calls cond until it returns nil or timeout has passed, then
// fails the test with cond's last error. It is the one way tests wait for a
// condition: poll with a deadline instead of sleeping. Call it only from
// the test's goroutine.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("not within %v: %v", timeout, err)
	}
}

// Poll calls cond until it returns nil or timeout has passed, and returns
// cond's last error; for callers that are not the test's goroutine, or that
// expect the condition may never hold. It is poll.Within at pollInterval.
func Poll(timeout time.Duration, cond func() error) error {
	return poll.Within(timeout, pollInterval, cond)
}

// pollInterval is how often Eventually and Poll try their condition.
const pollInterval = 20 * time.Millisecond

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+3)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Response is an HTTP answer read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// CallAPI sends a request to a service of the API and reads the whole
// answer, failing the test when there is none and when it breaks the API
// contract (SpecPath). headers alternate names and values; a body is sent as
// application/json unless a Content-Type is given.
func CallAPI(t testing.TB, method, url, body string, headers ...string) Response {
	t.Helper()
	r, req, err := send(method, url, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckAnswer(req, r); err != nil {
		t.Errorf("the answer breaks the API contract (%s): %v", SpecPath, err)
	}
	return r
}

// CallUnchecked is CallAPI without the contract check, for answers that are
// not the API's: those of stand-ins such as a fake upstream behind the
// gateway. Every answer of a real service goes through CallAPI, TryAPI or
// CallAPIRequest, which check it against the spec.
func CallUnchecked(t testing.TB, method, url, body string, headers ...string) Response {
	t.Helper()
	r, _, err := send(method, url, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TryAPI is CallAPI without a testing.T, for callers that expect no answer
// at times (a server being restarted) or run outside the test goroutine. An answer that breaks the
// API contract is returned with an error wrapping ErrContract (and recorded
// for `make test`'s contract check, which fails on it too).
func TryAPI(method, url, body string, headers ...string) (Response, error) {
	r, req, err := send(method, url, body, headers...)
	if err != nil {
		return r, err
	}
	if err := CheckAnswer(req, r); err != nil {
		return r, fmt.Errorf("%w (%s): %w", ErrContract, SpecPath, err)
	}
	return r, nil
}

// ErrContract is wrapped by TryAPI's error for an answer that breaks the API
// contract.
var ErrContract = errors.New("the answer breaks the API contract")

func send(method, url, body string, headers ...string) (Response, *http.Request, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return Response{}, nil, fmt.Errorf("new request: %w", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Response{}, req, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, req, fmt.Errorf("%s %s: read body: %w", method, url, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, req, nil
}

// Bearer is the Authorization header pair for a token, for CallAPI and TryAPI.
func Bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// JSON decodes the body into a T, failing the test when it is not JSON of that shape.
func JSON[T any](t testing.TB, r Response) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("body %q (status %d) is not a %T: %v", r.Body, r.Status, v, err)
	}
	return v
}

// Envelope checks that r is a well-formed error envelope of the given code
// (status, message, content type, request id echoed in the header) and
// returns it.
func Envelope(t testing.TB, r Response, code apierr.Code) apierr.Envelope {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json (body %q)", ct, r.Body)
	}
	env := JSON[apierr.Envelope](t, r)
	if env.Code != code || env.Status != code.Status() || env.Message != code.Message() || r.Status != code.Status() {
		t.Fatalf("got HTTP %d %s, want %d envelope of %s", r.Status, r.Body, code.Status(), code)
	}
	if env.RequestID == "" || env.RequestID != r.Header.Get("X-Request-ID") {
		t.Errorf("request_id %q, X-Request-ID header %q: want the same, non-empty", env.RequestID, r.Header.Get("X-Request-ID"))
	}
	return env
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers, for logs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// MongoDatabase connects to the test MongoDB-protocol server and returns a
// database of the test's own (named by Database), for a test that writes
// documents as an older release did before starting the service on them
// (MONGO_DATABASE: its Name()). The client is disconnected when the test ends.
func MongoDatabase(t testing.TB) *mongo.Database {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(MongoURI(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client.Database(Database(t))
}
