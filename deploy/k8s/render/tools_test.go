package render

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// repoRoot is the repository root (three levels above this module); binDir holds
// the tools `make deps-k8s` installs.
var (
	repoRoot string
	binDir   string
)

func TestMain(m *testing.M) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	repoRoot = root
	binDir = filepath.Join(root, "bin")
	// helm, skaffold and actionlint call each other (and shellcheck) through PATH.
	_ = os.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	_ = os.Setenv("SKAFFOLD_COLLECT_METRICS", "false")
	_ = os.Setenv("SKAFFOLD_UPDATE_CHECK", "false")
	code := m.Run()
	stopCluster()
	os.Exit(code)
}

// tool returns the path of a required tool, or fails the test naming the make
// target that installs it. It never skips.
func tool(t testing.TB, name string) string {
	t.Helper()
	if p := filepath.Join(binDir, name); isExecutable(p) {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("%s is not installed (looked in %s and PATH): run `make deps-k8s` from the repository root", name, binDir)
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// run runs a command in dir and returns its stdout; a failure fails the test
// with the command line and its stderr.
func run(t testing.TB, dir string, name string, args ...string) []byte {
	t.Helper()
	out, err := runErr(dir, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runErr(dir string, name string, args ...string) ([]byte, error) {
	return runEnv(dir, nil, name, args...)
}

// runEnv is runErr with the given environment (nil: this process's). Builds for another architecture
// are slow on a loaded machine: the limit is 25 minutes.
func runEnv(dir string, env []string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s (in %s): %v\nstdout:\n%s\nstderr:\n%s",
			filepath.Base(name), strings.Join(args, " "), dir, err, tail(stdout.String()), stderr.String())
	}
	return stdout.Bytes(), nil
}

func tail(s string) string {
	const max = 4000
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}

var depsOnce sync.Once
var depsErr error

// chartDeps packages the umbrella's file:// dependencies into helm/moviebag/charts once.
func chartDeps(t testing.TB) {
	t.Helper()
	helm := tool(t, "helm")
	depsOnce.Do(func() {
		_, depsErr = runErr(repoRoot, helm, "dependency", "build", "helm/moviebag")
	})
	if depsErr != nil {
		t.Fatal(depsErr)
	}
}

func nopLogger() *log.Logger { return log.New(io.Discard, "", 0) }
