package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// binaries are the release builds `make bench` runs, each in its own process.
type binaries struct{ auth, movies, gateway, storage, framework, storageCeiling string }

// releaseTags are the build tags of a release build, as RELEASE_TAGS in the
// Makefile: validator_novalidatefn leaves out go-playground/validator's
// validateFn check, whose reflect MethodByName makes the linker keep every
// exported method of every type (a 29 MB binary instead of 18, and 5 MiB
// more of it resident).
const releaseTags = "validator_novalidatefn"

// build compiles the services and the bench programs as releases
// (-trimpath -tags releaseTags -ldflags "-s -w", outside go.work) into dir.
func build(ctx context.Context, repo, dir string) (binaries, error) {
	b := binaries{
		auth:           filepath.Join(dir, "auth"),
		movies:         filepath.Join(dir, "movies"),
		gateway:        filepath.Join(dir, "gateway"),
		storage:        filepath.Join(dir, "storage"),
		framework:      filepath.Join(dir, "ceiling-framework"),
		storageCeiling: filepath.Join(dir, "ceiling-storage"),
	}
	jobs := []struct{ moduleDir, pkg, out string }{
		{"services/auth", ".", b.auth},
		{"services/movies", ".", b.movies},
		{"bench", "./cmd/gateway", b.gateway},
		{"bench", "./cmd/storage", b.storage},
		{"bench", "./ceiling/framework", b.framework},
		{"bench", "./ceiling/storage", b.storageCeiling},
	}
	for _, j := range jobs {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", releaseTags, "-ldflags", "-s -w", "-o", j.out, j.pkg)
		cmd.Dir = filepath.Join(repo, j.moduleDir)
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s in %s: %w\n%s", j.pkg, j.moduleDir, err, out)
		}
	}
	return b, nil
}

// proc is a child process whose output goes to a log file.
type proc struct {
	name  string
	cmd   *exec.Cmd
	log   string
	stdin io.WriteCloser
	done  chan struct{}
}

// runtimeEnv are the Go runtime's settings a run passes on from the
// driver's own environment to every process it starts, so a setting can be
// measured without a code change (GOGC=50 make bench).
var runtimeEnv = []string{"GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS"}

// runtimeEnvSet is runtimeEnv as set in the driver's environment, as K=V.
func runtimeEnvSet() []string {
	var set []string
	for _, k := range runtimeEnv {
		if v, ok := os.LookupEnv(k); ok {
			set = append(set, k+"="+v)
		}
	}
	return set
}

// runtimeSettings lists the runtimeEnv a run passes on, for the report.
func runtimeSettings() string {
	if set := runtimeEnvSet(); len(set) > 0 {
		return strings.Join(set, " ")
	}
	return "none (the defaults)"
}

// start runs bin with args and env (on top of a minimal environment and
// runtimeEnv), its stdout and stderr to dir/name.log. The child's stdin stays open: a
// child that watches it (storage) stops when the driver dies.
func start(dir, name, bin string, args []string, env map[string]string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	cmd.Env = append(cmd.Env, runtimeEnvSet()...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = f, f
	// Our own process group: a Ctrl-C at the terminal reaches the driver,
	// which stops the children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, stdin: stdin, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = f.Close(); close(p.done) }()
	return p, nil
}

// stop sends SIGTERM and waits up to 15 s before killing.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the last lines of the process's log, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// waitHTTP polls url until it answers with want, the process dies or
// timeout passes.
func (p *proc) waitHTTP(url string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		if p.exited() {
			return fmt.Errorf("%s exited before it was ready:\n%s", p.name, p.tail())
		}
		if resp, err := client.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s (%s):\n%s", p.name, timeout, url, p.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// storageReady starts the storage process and reads its ready line.
func startStorage(dir, bin, backend, pgURL string) (*proc, storageInfo, error) {
	logPath := filepath.Join(dir, "storage.log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, storageInfo{}, err
	}
	cmd := exec.Command(bin, "-backend", backend, "-postgres", pgURL, "-dir", filepath.Join(dir, "sqlite"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, storageInfo{}, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, storageInfo{}, err
	}
	if err := cmd.Start(); err != nil {
		return nil, storageInfo{}, fmt.Errorf("start storage: %w", err)
	}
	p := &proc{name: "storage", cmd: cmd, log: logPath, stdin: stdin, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(f, stdout)
	}()
	go func() { _ = cmd.Wait(); _ = f.Close(); close(p.done) }()
	var info storageInfo
	select {
	case line, ok := <-lines:
		if !ok {
			<-p.done
			return nil, info, fmt.Errorf("storage exited before it was ready:\n%s", p.tail())
		}
		if err := json.Unmarshal([]byte(line), &info); err != nil {
			p.stop()
			return nil, info, fmt.Errorf("storage ready line %q: %w", line, err)
		}
	case <-time.After(60 * time.Second):
		p.stop()
		return nil, info, errors.New("storage not ready after 60s:\n" + p.tail())
	}
	return p, info, nil
}

// storageInfo is the storage process's ready line.
type storageInfo struct {
	MongoURI string `json:"mongo_uri"`
	Backend  string `json:"backend"`
	Note     string `json:"note"`
}

// resident is a process's resident memory, from /proc/PID/status, in bytes.
type resident struct {
	RSS  int64 // VmRSS
	Peak int64 // VmHWM
	File int64 // RssFile: pages of the executable (and other files) read in
}

// rss returns the resident memory of pid.
func rss(pid int) (resident, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return resident{}, err
	}
	var r resident
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			r.RSS = n * 1024
		case "VmHWM":
			r.Peak = n * 1024
		case "RssFile":
			r.File = n * 1024
		}
	}
	return r, nil
}

// freeAddr returns a free loopback address.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

// rss is p's resident memory now; zero if it cannot be read.
func (p *proc) rss() resident {
	r, _ := rss(p.cmd.Process.Pid)
	return r
}
