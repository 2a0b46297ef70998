// Package service is the start-up every moviebag service shares, written
// once: signals, configuration, logger, metrics registry, the admin port,
// MongoDB and Redis, the token denylist, then serving until a signal. A
// service's Run names only what is its own in a Spec.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/moviebag/moviebag/libs/config"
	"github.com/moviebag/moviebag/libs/denylist"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/token"
)

// Config is the configuration every service shares; a service's own Config
// embeds it. README.md lists every variable.
type Config struct {
	Server server.Config
	Store  store.Config
	Token  token.Config
}

// Configuration is a service's configuration type: it embeds Config (Run
// reads that part from the same variables on its own) and checks the rules
// its tags cannot say.
type Configuration interface {
	Validate() error
}

// Spec is what a service adds to the shared start-up.
type Spec[C Configuration] struct {
	// Name is the service's name on metrics and logs.
	Name string
	// Defaults are the service's own values for variables left unset, such
	// as its ports.
	Defaults map[string]string
	// Build prepares what is the service's own (storage, indexes, keys, its
	// metrics) from the shared parts and returns its HTTP application. It
	// runs once the admin port answers /healthz (not yet /readyz) and the
	// storage clients exist; nothing has been dialled yet.
	Build func(ctx context.Context, cfg C, p Parts) (*fiber.App, error)
}

// Parts are what the shared start-up made, for Build.
type Parts struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Metrics  *metrics.Metrics
	DB       *mongo.Database
	Redis    redis.UniversalClient
	// Failures counts the storage failures and maps them to catalog errors.
	Failures store.Failures
	Denylist *denylist.Denylist
	// Clients tells the client address of a request behind the proxies of
	// TRUSTED_PROXIES, and its key for per-client limits.
	Clients *server.Clients
	tokens  token.Config
	work    *[]func(ctx context.Context)
}

// Go runs fn in a goroutine of its own once Build has returned, for as long
// as the service runs (a stream consumer): fn must return soon after its
// ctx is done. Run waits for it before it closes the storage clients.
func (p Parts) Go(fn func(ctx context.Context)) { *p.work = append(*p.work, fn) }

// Verifier returns the verifier of access tokens: signed by one of keys with
// one of algorithms, for the configured issuer and audience, not revoked.
func (p Parts) Verifier(keys func(ctx context.Context) jwt.Keyfunc, algorithms []string) *token.Verifier {
	return token.NewVerifier(keys, token.Policy{
		Issuer: p.tokens.Issuer, Audience: p.tokens.Audience, Algorithms: algorithms,
	}, p.Denylist)
}

// Run runs the service spec describes until ctx is done or SIGINT or SIGTERM
// arrives, reading its configuration through getenv and logging to stdout.
// Once it is ready, ready (when not nil) is told the addresses it listens on.
// It starts, in order: the admin port, the storage clients, the service's
// own parts (Build) and their background work (Parts.Go), the revocation
// mirror, then serves; what it started stops in reverse, and a failure to
// stop is logged.
func Run[C Configuration](ctx context.Context, getenv func(string) string, stdout io.Writer, ready func(server.Addrs), spec Spec[C]) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	cfg, err := config.Load[C](getenv, spec.Defaults)
	if err != nil {
		return err
	}
	shared, err := config.Load[Config](getenv, spec.Defaults)
	if err != nil {
		return err
	}
	if err := errors.Join(cfg.Validate(), shared.Server.Validate()); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	logger, err := server.NewLogger(stdout, shared.Server.LogLevel, spec.Name)
	if err != nil {
		return err
	}
	clients, err := server.NewClients(shared.Server)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, spec.Name)
	// Once stopping, each stop gets its own bounded time, whatever ctx says.
	stopping := func(what string, stop func(context.Context) error) {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		if err := stop(sctx); err != nil {
			logger.Warn("stop "+what, "error", err)
		}
	}

	// The admin port first: probes see a live process while it waits for its
	// dependencies.
	admin := server.NewAdmin(reg)
	if err := admin.Start(shared.Server.AdminAddr); err != nil {
		return err
	}
	defer stopping("the admin server", admin.Shutdown)

	conns, err := store.Open(shared.Store, m)
	if err != nil {
		return err
	}
	defer stopping("the MongoDB and Redis clients", conns.Close)

	deny := denylist.New(conns.Redis, shared.Store.RedisKeyPrefix, conns.Failures)
	var work []func(ctx context.Context)
	app, err := spec.Build(ctx, cfg, Parts{
		Logger: logger, Registry: reg, Metrics: m,
		DB: conns.DB, Redis: conns.Redis, Failures: conns.Failures,
		Denylist: deny,
		Clients:  clients,
		tokens:   shared.Token,
		work:     &work,
	})
	if err != nil {
		return err
	}

	// The service's background work, stopped before the clients it uses.
	workCtx, stopWork := context.WithCancel(ctx)
	var working sync.WaitGroup
	for _, fn := range work {
		working.Go(func() { fn(workCtx) })
	}
	defer func() { stopWork(); working.Wait() }()

	// Revocations are mirrored in process: a token check needs no Redis
	// round trip while the mirror is in sync.
	stopMirror := deny.Start(ctx, denylist.FollowOptions{Logger: logger})
	defer stopMirror()

	return server.Serve(ctx, logger, shared.Server, app, admin, ready)
}

// stopTimeout bounds each step of stopping that Serve does not already bound.
const stopTimeout = 5 * time.Second
