// Package devstore starts MongoDB-protocol storage and Redis on free
// loopback ports for local runs and tests: FerretDB embedded as a library
// (SQLite backend), and redis-server from PATH or, where there is none and
// the caller allows it, an in-process miniredis.
package devstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/alicebob/miniredis/v2"
)

// Options say where to keep data and which Redis is acceptable.
type Options struct {
	// Dir holds FerretDB's SQLite files and redis-server's working directory.
	Dir string
	// RequireRedisServer refuses the in-process fallback (tests want a real Redis).
	RequireRedisServer bool
	// Logger receives progress lines and FerretDB's own errors.
	Logger *slog.Logger
}

// Stores are the running storage servers.
type Stores struct {
	MongoURI string
	RedisURL string
	// RedisKind says what serves RedisURL: "redis-server" or "miniredis".
	RedisKind string
	stop      []func()
}

// Close stops everything Start started, in reverse order.
func (s *Stores) Close() {
	for i := len(s.stop) - 1; i >= 0; i-- {
		s.stop[i]()
	}
}

// Start starts FerretDB and Redis; Close stops them.
func Start(ctx context.Context, o Options) (*Stores, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Stores{}
	uri, stop, err := StartMongo(ctx, filepath.Join(o.Dir, "ferretdb"), o.Logger)
	if err != nil {
		return nil, err
	}
	s.MongoURI = uri
	s.stop = append(s.stop, stop)

	redisURL, kind, stop, err := StartRedis(ctx, filepath.Join(o.Dir, "redis"), o.RequireRedisServer, o.Logger)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.RedisURL, s.RedisKind = redisURL, kind
	s.stop = append(s.stop, stop)
	return s, nil
}

// StartMongo runs an embedded FerretDB with its SQLite files in dir, on a
// free port.
func StartMongo(ctx context.Context, dir string, logger *slog.Logger) (uri string, stop func(), err error) {
	return StartMongoOn(ctx, "127.0.0.1:0", dir, logger)
}

// StartMongoOn runs an embedded FerretDB on addr with its SQLite files in
// dir; started again on the same addr and dir it serves the same data.
func StartMongoOn(ctx context.Context, addr, dir string, logger *slog.Logger) (uri string, stop func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("FerretDB data dir: %w", err)
	}
	quiet := slog.New(levelFilter{logger.Handler(), slog.LevelError})
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    quiet,
	})
	if err != nil {
		return "", nil, fmt.Errorf("start FerretDB: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(runCtx)
	}()
	uri = f.MongoDBURI()
	logger.Info("FerretDB (MongoDB protocol, SQLite backend) started", "uri", uri, "dir", dir)
	return uri, func() { cancel(); <-done }, nil
}

// StartRedis runs redis-server on a free port, or miniredis when there is
// no redis-server and requireServer is false.
func StartRedis(ctx context.Context, dir string, requireServer bool, logger *slog.Logger) (url, kind string, stop func(), err error) {
	bin, lookErr := exec.LookPath("redis-server")
	if lookErr != nil {
		if requireServer {
			return "", "", nil, errors.New("redis-server is not on PATH: install it (Debian: apt-get install redis-server) or run 'make deps'")
		}
		logger.Warn("redis-server is not on PATH: falling back to an in-process miniredis (install redis-server for a real one)")
		mr, err := miniredis.Run()
		if err != nil {
			return "", "", nil, fmt.Errorf("start miniredis: %w", err)
		}
		return "redis://" + mr.Addr() + "/0", "miniredis", mr.Close, nil
	}
	port, err := FreePort()
	if err != nil {
		return "", "", nil, err
	}
	url, stop, err = StartRedisServer(ctx, bin, port, dir, logger)
	if err != nil {
		return "", "", nil, err
	}
	return url, "redis-server", stop, nil
}

// StartRedisServer runs the redis-server binary bin on port, keeping nothing
// on disk; its log goes to dir/redis.log.
func StartRedisServer(ctx context.Context, bin string, port int, dir string, logger *slog.Logger) (url string, stop func(), err error) {
	stop, err = startRedisProcess(ctx, bin, port, dir, logger)
	if err != nil {
		return "", nil, err
	}
	return "redis://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/0", stop, nil
}

// startRedisProcess runs redis-server on port with extra arguments, keeping
// nothing on disk but what those ask for; its log goes to dir/redis.log. It
// returns once the port accepts connections.
func startRedisProcess(ctx context.Context, bin string, port int, dir string, logger *slog.Logger, extra ...string) (stop func(), err error) {
	// redis-server changes into --dir before it opens --logfile: both absolute.
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("redis data dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("redis data dir: %w", err)
	}
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"), "--loglevel", "warning"}, extra...)
	cmd := exec.CommandContext(context.WithoutCancel(ctx), bin, args...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitTCP(ctx, addr, 10*time.Second); err != nil {
		stop()
		return nil, fmt.Errorf("redis-server on %s: %w", addr, err)
	}
	logger.Info("redis-server started", "addr", addr)
	return stop, nil
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	return waitUntil(ctx, timeout, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// waitUntil calls try every 50 ms until it succeeds, ctx is done or timeout
// has passed, and returns try's last error.
func waitUntil(ctx context.Context, timeout time.Duration, try func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := try()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// levelFilter drops records below min, to keep FerretDB's chatter out.
type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (h levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFilter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelFilter{h.Handler.WithAttrs(attrs), h.min}
}

func (h levelFilter) WithGroup(name string) slog.Handler {
	return levelFilter{h.Handler.WithGroup(name), h.min}
}
