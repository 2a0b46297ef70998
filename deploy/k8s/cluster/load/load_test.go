package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moviebag/moviebag/libs/testkit/poll"
)

// The tests drive the real local stack (FerretDB, Redis, both services and the gateway), run as a
// process the way `make run` runs it, on free ports: this module is outside go.work and cannot import
// deploy/local. LOAD_BASE_URL points them at a stack already running instead.

var (
	stackOnce sync.Once
	stackURL  string
	stackErr  error
	stackStop func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	if stackStop != nil {
		stackStop()
	}
	os.Exit(code)
}

// stack returns the gateway URL of the shared stack, starting it on first use.
func stack(t *testing.T) string {
	t.Helper()
	stackOnce.Do(func() {
		if u := os.Getenv("LOAD_BASE_URL"); u != "" {
			stackURL = u
			return
		}
		stackURL, stackStop, stackErr = startStack()
	})
	if stackErr != nil {
		t.Fatal(stackErr)
	}
	return stackURL
}

func startStack() (string, func(), error) {
	root, err := filepath.Abs("../../../..")
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "moviebag-load-")
	if err != nil {
		return "", nil, err
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, "moviebag-local")
	build := exec.Command(gobin, "build", "-o", bin, "./deploy/local/cmd/moviebag-local")
	build.Dir = root
	// The stack is a go.work module: build it in the workspace, whatever GOWORK this test runs with.
	build.Env = append(os.Environ(), "GOWORK="+filepath.Join(root, "go.work"), "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("building moviebag-local: %v\n%s", err, out)
	}
	env := append(os.Environ(), "MONGO_URI=", "REDIS_URL=", "DATA_DIR="+filepath.Join(dir, "data"))
	var gateway string
	for _, key := range []string{"GATEWAY_ADDR", "AUTH_ADDR", "AUTH_ADMIN_ADDR", "MOVIES_ADDR", "MOVIES_ADMIN_ADDR"} {
		addr, err := freeAddr()
		if err != nil {
			return "", nil, err
		}
		if gateway == "" {
			gateway = "http://" + addr
		}
		env = append(env, key+"="+addr)
	}
	logPath := filepath.Join(dir, "stack.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logFile, logFile
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logFile.Close()
		_ = os.RemoveAll(dir)
	}
	// Wait for the stack to serve, or no longer once it has exited.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	go func() {
		select {
		case <-exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	err = poll.Until(ctx, 300*time.Millisecond, func() error {
		resp, err := http.Get(gateway + "/api/movies")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	if err == nil {
		return gateway, stop, nil
	}
	log, _ := os.ReadFile(logPath)
	stop()
	return "", nil, fmt.Errorf("the stack did not serve %s/api/movies: %v\n%s", gateway, err, tail(log, 4000))
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// A few seconds of the mix against a healthy stack: every request answered as expected, every kind
// sent, tokens logged out and refused afterwards, the movies left behind still there.
func TestSteadyLoadHasNoFailures(t *testing.T) {
	base := stack(t)
	email, password := "steady-"+randomHex(4)+"@example.com", "secret-"+randomHex(4)
	rep, err := Run(context.Background(), Config{BaseURL: base, Rate: 20, Duration: 6 * time.Second, LogoutEvery: 2 * time.Second,
		SlowAfter: 5 * time.Second, Email: email, Password: password, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() != 0 {
		t.Errorf("%d failed requests, want 0: %s", rep.Failed(), rep)
	}
	if sent := rep.Sent(); sent < 100 || sent > 130 {
		t.Errorf("%d requests sent, want about 120 (20/s for 6 s)", sent)
	}
	for _, k := range Kinds {
		if c := rep.Kinds[k]; c.OK == 0 {
			t.Errorf("no %s request answered as expected: %+v", k, *c)
		}
	}
	if len(rep.Revoked) == 0 {
		t.Fatal("no token was logged out")
	}
	if err := CheckRevoked(context.Background(), base, rep.Revoked); err != nil {
		t.Error(err)
	}
	if err := CheckMovies(context.Background(), base, rep.Movies); err != nil {
		t.Error(err)
	}
	// The checks are not rubber stamps: a token still valid, a movie deleted.
	if err := CheckRevoked(context.Background(), base, []string{login(t, base, email, password)}); err == nil {
		t.Error("CheckRevoked passes a token that was never logged out")
	}
	if err := CheckMovies(context.Background(), base, []string{"6b06f1ebcf512d8be09e8da9"}); err == nil {
		t.Error("CheckMovies passes a movie that does not exist")
	}
	if !strings.Contains(rep.String(), " 0 failed;") {
		t.Errorf("summary %q does not say 0 failed", rep)
	}
}

func login(t *testing.T, base, email, password string) string {
	t.Helper()
	resp, err := http.Post(base+"/api/auth/login", "application/json",
		strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	tok := field(b, "token")
	if resp.StatusCode != http.StatusOK || tok == "" {
		t.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	return tok
}

// sabotage is a proxy in front of the stack that breaks chosen requests of the load (by vegeta's
// sequence number) and counts what it broke, to compare with the driver's counts.
type sabotage struct {
	next      http.Handler
	window    *Window // open while the outage phase breaks requests
	tolerable atomic.Int64
	failing   atomic.Int64
	byKind    sync.Map // Kind -> *atomic.Int64 of failing ones
}

// Phases, in requests of the load (20 a second): an outage like Redis' from 30 to 59, hard breakage from
// 80 to 99.
const (
	outageFrom, outageTo = 30, 60
	brokenFrom, brokenTo = 80, 100
)

func (s *sabotage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.Atoi(r.Header.Get("X-Vegeta-Seq"))
	if err != nil { // the driver's setup
		s.next.ServeHTTP(w, r)
		return
	}
	kind := kindOf(r.Method, r.URL.Path)
	switch {
	case seq >= outageFrom && seq < outageTo:
		s.window.Open()
		switch kind {
		case List:
			// public reads pass
		case Get: // a 503 on a public read is a failure even during a Redis outage
			s.fail(kind)
			unavailable(w)
			return
		default:
			s.tolerable.Add(1)
			unavailable(w)
			return
		}
	case seq >= outageTo && seq < brokenFrom:
		s.window.Close()
	case seq >= brokenFrom && seq < brokenTo:
		switch kind {
		case Create: // the connection dies with no answer
			s.fail(kind)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		case List: // what a proxy answers with no ready backend
			s.fail(kind)
			http.Error(w, "Bad Gateway", http.StatusBadGateway)
			return
		}
	}
	s.next.ServeHTTP(w, r)
}

func (s *sabotage) fail(k Kind) {
	s.failing.Add(1)
	n, _ := s.byKind.LoadOrStore(k, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
}

func (s *sabotage) failed(k Kind) int {
	if n, ok := s.byKind.Load(k); ok {
		return int(n.(*atomic.Int64).Load())
	}
	return 0
}

func unavailable(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(w, `{"message":"Service is temporarily unavailable, try again later","status":503,"code":"ServiceUnavailableError","request_id":"x"}`)
}

// The driver counts exactly the requests a proxy broke: 503s on writes while a declared Redis outage
// lasts are tolerated; a 503 on a public read in the same window, dropped connections and 502s are
// failures, each of its kind.
func TestCountsEveryFailure(t *testing.T) {
	target, err := url.Parse(stack(t))
	if err != nil {
		t.Fatal(err)
	}
	s := &sabotage{next: httputil.NewSingleHostReverseProxy(target), window: &Window{}}
	proxy := httptest.NewServer(s)
	defer proxy.Close()

	rep, err := Run(context.Background(), Config{BaseURL: proxy.URL, Rate: 20, Duration: 6 * time.Second, LogoutEvery: time.Second,
		Expected: []Degradation{RedisOutage(s.window)}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("proxy: %d tolerable, %d failing", s.tolerable.Load(), s.failing.Load())
	if s.tolerable.Load() == 0 || s.failing.Load() == 0 {
		t.Fatalf("the proxy broke nothing (%d tolerable, %d failing): the phases missed the load", s.tolerable.Load(), s.failing.Load())
	}
	if got, want := rep.Tolerated(), int(s.tolerable.Load()); got != want {
		t.Errorf("tolerated: %d, want %d (the 503s on writes during the outage): %s", got, want, rep)
	}
	if got, want := rep.Failed(), int(s.failing.Load()); got != want {
		t.Errorf("failed: %d, want %d (what the proxy broke): %s", got, want, rep)
	}
	for _, k := range []Kind{Get, Create, List} {
		if got, want := rep.Kinds[k].Failed, s.failed(k); got != want {
			t.Errorf("%s failed: %d, want %d", k, got, want)
		}
	}
	if rep.Causes["503 ServiceUnavailableError"] != s.failed(Get) || rep.Causes["502"] != s.failed(List) {
		t.Errorf("failures by cause: %v, want %d× 503 ServiceUnavailableError (reads) and %d× 502", rep.Causes, s.failed(Get), s.failed(List))
	}
	for _, f := range rep.Failures {
		if f.Kind == Create && f.Status != 0 {
			t.Errorf("a dropped create was seen with status %d: %s", f.Status, f)
		}
		if f.At.IsZero() || f.RequestID == "" {
			t.Errorf("failure without its time or request id: %s", f)
		}
	}
	if !strings.Contains(rep.String(), fmt.Sprintf(" %d failed;", rep.Failed())) {
		t.Errorf("summary %q does not give the failures", rep)
	}
}

// A stack that is not there: setup fails with an error, not a report.
func TestSetupFailsWithoutAStack(t *testing.T) {
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), Config{BaseURL: "http://" + addr, Duration: time.Second, Timeout: 2 * time.Second})
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Fatalf("Run against nothing: %v, want a connection error from the setup", err)
	}
}

func TestWindowCovers(t *testing.T) {
	t0 := time.Now()
	w := &Window{}
	w.OpenAt(t0.Add(time.Second))
	w.CloseAt(t0.Add(2 * time.Second))
	for _, c := range []struct {
		from, to time.Duration
		want     bool
	}{
		{0, 500 * time.Millisecond, false},
		{500 * time.Millisecond, 1500 * time.Millisecond, true}, // sent before, answered inside
		{1200 * time.Millisecond, 1300 * time.Millisecond, true},
		{1900 * time.Millisecond, 2500 * time.Millisecond, true}, // sent inside, answered after
		{2100 * time.Millisecond, 2200 * time.Millisecond, false},
	} {
		o := Outcome{At: t0.Add(c.from), Latency: c.to - c.from}
		if got := w.Covers(o); got != c.want {
			t.Errorf("request %s..%s: covered %v, want %v", c.from, c.to, got, c.want)
		}
	}
	w.OpenAt(t0.Add(3 * time.Second)) // still open
	if !w.IsOpen(t0.Add(time.Hour)) {
		t.Error("an open span does not cover later times")
	}
}
