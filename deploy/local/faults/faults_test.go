// Package faults_test runs the services as real processes (release-style
// binaries built once), stops and restarts their dependencies and the
// services themselves, and checks that clients see bounded, precise answers
// and that everything recovers by itself.
package faults_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moviebag/moviebag/libs/testkit"
)

// binDir holds the service binaries built by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "moviebag-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, svc := range []string{"auth", "movies"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, svc), "github.com/moviebag/moviebag/services/"+svc)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", svc, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// proc is a service running as its own process.
type proc struct {
	t        *testing.T
	bin      string
	env      map[string]string
	URL      string
	AdminURL string
	cmd      *exec.Cmd
	logs     *testkit.SyncBuffer
	exited   chan error
}

// startProc starts bin with env (plus free HTTP and admin ports) and waits
// until it is ready; the test's end stops it.
func startProc(t *testing.T, bin string, env map[string]string) *proc {
	t.Helper()
	p := &proc{t: t, bin: bin, env: map[string]string{"LOG_LEVEL": "warn"}, logs: &testkit.SyncBuffer{}}
	for k, v := range env {
		p.env[k] = v
	}
	p.env["HTTP_ADDR"], p.env["ADMIN_ADDR"] = testkit.FreeAddr(t), testkit.FreeAddr(t)
	p.URL, p.AdminURL = "http://"+p.env["HTTP_ADDR"], "http://"+p.env["ADMIN_ADDR"]
	p.start()
	t.Cleanup(func() {
		if p.cmd != nil {
			_ = p.cmd.Process.Kill()
			if err := <-p.exited; err != nil {
				t.Logf("%s killed at the end of the test: %v", p.bin, err)
			}
		}
	})
	return p
}

func (p *proc) start() {
	p.t.Helper()
	p.cmd = exec.Command(filepath.Join(binDir, p.bin))
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	for k, v := range p.env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.bin, err)
	}
	p.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan error) { exited <- cmd.Wait() }(p.cmd, p.exited)
	waitFor(p.t, 30*time.Second, p.bin+" ready", func() bool {
		select {
		case err := <-p.exited:
			p.t.Fatalf("%s exited at start: %v\n%s", p.bin, err, p.logs)
		default:
		}
		r, err := testkit.TryAPI("GET", p.AdminURL+"/readyz", "")
		return err == nil && r.Status == 200
	})
}

// term sends SIGTERM and waits for a clean exit.
func (p *proc) term() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			p.t.Fatalf("%s exited with %v after SIGTERM\n%s", p.bin, err, p.logs)
		}
	case <-time.After(30 * time.Second):
		p.t.Fatalf("%s still running 30s after SIGTERM", p.bin)
	}
	p.cmd = nil
}

// waitFor is testkit.Eventually for a condition that holds or not; what
// names it in the failure.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, timeout, func() error {
		if !cond() {
			return fmt.Errorf("waiting for %s", what)
		}
		return nil
	})
}

// keyDir writes one signing key and returns its directory.
func keyDir(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		writeKey(t, dir, n)
	}
	return dir
}

// writeKey writes a key atomically (as a Secret update swaps its files).
func writeKey(t *testing.T, dir, name string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name+".pem")); err != nil {
		t.Fatal(err)
	}
}

// pair is auth and movies as processes sharing storage.
type pair struct{ auth, movies *proc }

func startPair(t *testing.T, mongoURI, redisURL string, authEnv, moviesEnv map[string]string) pair {
	t.Helper()
	db := testkit.Database(t)
	common := map[string]string{
		"MONGO_URI": mongoURI, "MONGO_DATABASE": db, "REDIS_URL": redisURL, "REDIS_KEY_PREFIX": db + ":",
		"DEPENDENCY_DIAL_TIMEOUT": "300ms", "REQUEST_TIMEOUT": "2s",
	}
	a := merge(common, map[string]string{"BCRYPT_COST": "4", "JWT_KEYS_DIR": keyDir(t, "k1"), "LOGIN_LIMIT_PER_IP": "100000"}, authEnv)
	auth := startProc(t, "auth", a)
	m := merge(common, map[string]string{"JWKS_URL": auth.URL + "/.well-known/jwks.json"}, moviesEnv)
	return pair{auth: auth, movies: startProc(t, "movies", m)}
}

func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func (p pair) user(t *testing.T, email string) string {
	t.Helper()
	body := `{"email":"` + email + `","password":"secret123"}`
	if r := testkit.CallAPI(t, "POST", p.auth.URL+"/api/auth/signup", body); r.Status != 200 {
		t.Fatalf("signup: %d %s", r.Status, r.Body)
	}
	return p.login(t, body)
}

func (p pair) login(t *testing.T, body string) string {
	t.Helper()
	r := testkit.CallAPI(t, "POST", p.auth.URL+"/api/auth/login", body)
	if r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	return testkit.JSON[struct{ Token string }](t, r).Token
}

// timed runs a request and fails the test when the answer took too long:
// an outage must fail fast, not hang clients.
func timed(t *testing.T, limit time.Duration, f func() testkit.Response) testkit.Response {
	t.Helper()
	start := time.Now()
	r := f()
	if d := time.Since(start); d > limit {
		t.Errorf("answer took %v, want under %v (%d %s)", d, limit, r.Status, r.Body)
	}
	return r
}

func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(testkit.FreeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

func mustContain(t *testing.T, body []byte, want string) {
	t.Helper()
	if !strings.Contains(string(body), want) {
		t.Errorf("%s does not contain %s", body, want)
	}
}
