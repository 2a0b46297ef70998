// Package stack runs the whole moviebag stack in one process: storage (unless
// given), the auth and movies services, and the gateway. `make run` and the
// end-to-end tests use it.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/moviebag/moviebag/deploy/local/devstore"
	"github.com/moviebag/moviebag/deploy/local/gateway"
	"github.com/moviebag/moviebag/libs/config"
	authapp "github.com/moviebag/moviebag/services/auth/app"
	moviesapp "github.com/moviebag/moviebag/services/movies/app"
)

// Options configure a stack. Empty addresses get free loopback ports.
type Options struct {
	// MongoURI and RedisURL point at existing servers; empty starts local ones.
	MongoURI, RedisURL string
	// DataDir keeps the local servers' files.
	DataDir string
	// RequireRedisServer refuses the in-process Redis fallback.
	RequireRedisServer bool

	GatewayAddr, AuthAddr, AuthAdminAddr, MoviesAddr, MoviesAdminAddr string

	// Env is passed to both services on top of the stack's own settings
	// (for example LOG_LEVEL or MONGO_DATABASE).
	Env map[string]string
	// ServiceLogs receives the services' JSON logs.
	ServiceLogs io.Writer
	// Logger receives the stack's progress lines.
	Logger *slog.Logger
}

// Stack is a running stack.
type Stack struct {
	GatewayURL, AuthURL, MoviesURL, AuthAdminURL, MoviesAdminURL string
	MongoURI, RedisURL, RedisKind                                string

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	stores *devstore.Stores
	gw     *http.Server
}

// Start starts the stack and returns once both services are ready and the
// gateway listens.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ServiceLogs == nil {
		o.ServiceLogs = io.Discard
	}
	if o.DataDir == "" {
		o.DataDir = ".data"
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Stack{cancel: cancel, MongoURI: o.MongoURI, RedisURL: o.RedisURL, RedisKind: "external"}
	fail := func(err error) (*Stack, error) {
		_ = s.Stop()
		return nil, err
	}

	if o.MongoURI == "" || o.RedisURL == "" {
		stores, err := devstore.Start(ctx, devstore.Options{Dir: o.DataDir, RequireRedisServer: o.RequireRedisServer, Logger: o.Logger})
		if err != nil {
			return fail(err)
		}
		s.stores = stores
		if s.MongoURI == "" {
			s.MongoURI = stores.MongoURI
		}
		if s.RedisURL == "" {
			s.RedisURL, s.RedisKind = stores.RedisURL, stores.RedisKind
		}
	}

	addrs := []*string{&o.GatewayAddr, &o.AuthAddr, &o.AuthAdminAddr, &o.MoviesAddr, &o.MoviesAdminAddr}
	for _, a := range addrs {
		if *a == "" {
			port, err := devstore.FreePort()
			if err != nil {
				return fail(err)
			}
			*a = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
	}
	for _, a := range addrs {
		if err := checkFree(*a); err != nil {
			return fail(err)
		}
	}
	s.AuthURL, s.AuthAdminURL = "http://"+o.AuthAddr, "http://"+o.AuthAdminAddr
	s.MoviesURL, s.MoviesAdminURL = "http://"+o.MoviesAddr, "http://"+o.MoviesAdminAddr

	common := map[string]string{"MONGO_URI": s.MongoURI, "REDIS_URL": s.RedisURL}
	for k, v := range o.Env {
		common[k] = v
	}
	authEnv := merge(common, map[string]string{"HTTP_ADDR": o.AuthAddr, "ADMIN_ADDR": o.AuthAdminAddr})
	moviesEnv := merge(common, map[string]string{
		"HTTP_ADDR": o.MoviesAddr, "ADMIN_ADDR": o.MoviesAdminAddr,
		"JWKS_URL": s.AuthURL + "/.well-known/jwks.json",
	})
	s.run(ctx, "auth", func(ctx context.Context) error {
		return authapp.Run(ctx, nil, lookup(authEnv), o.ServiceLogs, o.ServiceLogs)
	})
	if err := s.waitReady(ctx, "auth", s.AuthAdminURL); err != nil {
		return fail(err)
	}
	s.run(ctx, "movies", func(ctx context.Context) error {
		return moviesapp.Run(ctx, nil, lookup(moviesEnv), o.ServiceLogs, o.ServiceLogs)
	})
	if err := s.waitReady(ctx, "movies", s.MoviesAdminURL); err != nil {
		return fail(err)
	}

	authURL, _ := url.Parse(s.AuthURL)
	moviesURL, _ := url.Parse(s.MoviesURL)
	ln, err := net.Listen("tcp", o.GatewayAddr)
	if err != nil {
		return fail(fmt.Errorf("gateway: %w", err))
	}
	s.GatewayURL = "http://" + ln.Addr().String()
	gwCfg, err := config.Load[gateway.Config](lookup(common), nil)
	if err != nil {
		_ = ln.Close()
		return fail(fmt.Errorf("gateway: %w", err))
	}
	s.gw = gateway.NewServer(
		gateway.New(map[gateway.Upstream]*url.URL{gateway.Auth: authURL, gateway.Movies: moviesURL}, o.Logger), gwCfg)
	s.run(ctx, "gateway", func(context.Context) error {
		if err := s.gw.Serve(gateway.Listen(ln)); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return s, nil
}

// run runs a part of the stack; when any part ends, the whole stack stops.
func (s *Stack) run(ctx context.Context, name string, fn func(context.Context) error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := fn(ctx); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
			s.mu.Unlock()
		}
		s.cancel()
	}()
}

func (s *Stack) waitReady(ctx context.Context, name, adminURL string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			break
		}
		resp, err := client.Get(adminURL + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Errorf("%s did not become ready: %w", name, errors.Join(append(s.errs, ctx.Err())...))
}

// Done is closed once the stack has stopped by itself (a part failed) or
// after Stop.
func (s *Stack) Done() <-chan struct{} {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	return done
}

// Stop stops the gateway, both services and the local storage, and returns
// what went wrong while the stack ran.
func (s *Stack) Stop() error {
	if s.gw != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = s.gw.Shutdown(shutdownCtx)
		cancel()
	}
	s.cancel()
	s.wg.Wait()
	if s.stores != nil {
		s.stores.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// checkFree fails early, and clearly, when another process (often an
// earlier stack) holds addr.
func checkFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is taken (is another moviebag still running?): %w", addr, err)
	}
	return l.Close()
}

func merge(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// lookup is a getenv over env, falling back to the process environment for
// everything the stack does not set itself.
func lookup(env map[string]string) func(string) string {
	return func(key string) string {
		if v, ok := env[key]; ok {
			return v
		}
		return os.Getenv(key)
	}
}
