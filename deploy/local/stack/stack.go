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
	"path/filepath"
	"sync"
	"time"

	"github.com/moviebag/moviebag/deploy/local/apidocs"
	"github.com/moviebag/moviebag/deploy/local/devstore"
	"github.com/moviebag/moviebag/deploy/local/gateway"
	"github.com/moviebag/moviebag/libs/config"
	"github.com/moviebag/moviebag/libs/server"
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
	// SMTPURL points at an existing mail server; empty starts a Mailpit,
	// its SMTP on MailSMTPAddr and its API on MailAPIAddr (empty: free
	// loopback ports).
	SMTPURL                   string
	MailSMTPAddr, MailAPIAddr string

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
	// SMTPURL is auth's mail server; MailAPIURL the API of the Mailpit the
	// stack started ("" with an existing mail server).
	SMTPURL, MailAPIURL string

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	stores *devstore.Stores
	mail   *devstore.Mailpit
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

	s.SMTPURL = o.SMTPURL
	if s.SMTPURL == "" {
		mp, err := devstore.StartMailpit(ctx, filepath.Join(o.DataDir, "mailpit"), o.MailSMTPAddr, o.MailAPIAddr, o.Logger)
		if err != nil {
			return fail(err)
		}
		s.mail, s.SMTPURL, s.MailAPIURL = mp, mp.SMTPURL, mp.APIURL
	}

	for _, a := range []*string{&o.GatewayAddr, &o.AuthAddr, &o.AuthAdminAddr, &o.MoviesAddr, &o.MoviesAdminAddr} {
		if *a == "" {
			*a = "127.0.0.1:0" // the services report the ports they bound
			continue
		}
		if err := checkFree(*a); err != nil {
			return fail(err)
		}
	}

	// The gateway's address first: reset links in mails start with it.
	ln, err := net.Listen("tcp", o.GatewayAddr)
	if err != nil {
		return fail(fmt.Errorf("gateway: %w", err))
	}
	s.GatewayURL = "http://" + ln.Addr().String()
	closeLn := func(err error) (*Stack, error) { _ = ln.Close(); return fail(err) }

	common := map[string]string{"MONGO_URI": s.MongoURI, "REDIS_URL": s.RedisURL}
	for k, v := range o.Env {
		common[k] = v
	}
	mailEnv := map[string]string{"SMTP_URL": s.SMTPURL, "PUBLIC_BASE_URL": s.GatewayURL}
	if s.mail != nil {
		mailEnv["SMTP_STARTTLS"] = "none" // a loopback Mailpit offers no TLS
	}
	authEnv := merge(merge(mailEnv, common), map[string]string{"HTTP_ADDR": o.AuthAddr, "ADMIN_ADDR": o.AuthAdminAddr})
	authAddrs, err := s.runService(ctx, "auth", authapp.Run, authEnv, o.ServiceLogs)
	if err != nil {
		return closeLn(err)
	}
	s.AuthURL, s.AuthAdminURL = "http://"+authAddrs.HTTP, "http://"+authAddrs.Admin
	moviesEnv := merge(common, map[string]string{
		"HTTP_ADDR": o.MoviesAddr, "ADMIN_ADDR": o.MoviesAdminAddr,
		"JWKS_URL": s.AuthURL + "/.well-known/jwks.json",
	})
	moviesAddrs, err := s.runService(ctx, "movies", moviesapp.Run, moviesEnv, o.ServiceLogs)
	if err != nil {
		return closeLn(err)
	}
	s.MoviesURL, s.MoviesAdminURL = "http://"+moviesAddrs.HTTP, "http://"+moviesAddrs.Admin

	authURL, _ := url.Parse(s.AuthURL)
	moviesURL, _ := url.Parse(s.MoviesURL)
	gwCfg, err := config.Load[gateway.Config](lookup(common), nil)
	if err != nil {
		_ = ln.Close()
		return fail(fmt.Errorf("gateway: %w", err))
	}
	s.gw = gateway.NewServer(apidocs.Handler(
		gateway.New(map[gateway.Upstream]*url.URL{gateway.Auth: authURL, gateway.Movies: moviesURL}, o.Logger)), gwCfg)
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

// runService runs a service of the stack through its Run function and
// returns the addresses it reports once it is ready.
func (s *Stack) runService(ctx context.Context, name string, run func(context.Context, func(string) string, io.Writer, func(server.Addrs)) error,
	env map[string]string, logs io.Writer) (server.Addrs, error) {
	ready := make(chan server.Addrs, 1)
	s.run(ctx, name, func(ctx context.Context) error {
		return run(ctx, lookup(env), logs, func(a server.Addrs) { ready <- a })
	})
	select {
	case a := <-ready:
		return a, nil
	case <-ctx.Done(): // the service (or another part) ended, or the caller gave up
	case <-time.After(60 * time.Second):
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return server.Addrs{}, fmt.Errorf("%s did not become ready: %w", name, errors.Join(append(s.errs, ctx.Err())...))
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
	if s.mail != nil {
		s.mail.Stop()
	}
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
