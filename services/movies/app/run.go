// Package app is the movies service: the movie catalogue, readable by
// anyone, changed only by the user who added each movie, with tokens
// verified against the auth service's published keys.
package app

import (
	"context"
	"io"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moviebag/moviebag/libs/config"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/token"
	"github.com/moviebag/moviebag/services/movies/internal/movies"
)

// Service is the name on metrics and logs.
const Service = "movies"

// Run runs the movies service until ctx is done or SIGINT/SIGTERM arrives.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	cfg, err := config.Load[Config](getenv, defaults)
	if err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	logger, err := server.NewLogger(stdout, cfg.LogLevel, Service)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	m := metrics.New(reg, Service)
	m.InitJWKSRefreshes()
	// Probes see a live process while it waits for its dependencies.
	admin := server.NewAdmin(reg)
	if err := admin.Start(cfg.AdminAddr); err != nil {
		return err
	}
	defer func() { _ = admin.Shutdown(context.WithoutCancel(ctx)) }()

	keys, err := token.NewJWKS(ctx, token.JWKSOptions{
		URL:                cfg.JWKSURL,
		RefreshInterval:    cfg.JWKSRefreshInterval,
		UnknownKIDInterval: cfg.JWKSUnknownKIDInterval,
		OnFetch: func(ok bool) {
			result := "success"
			if !ok {
				result = "failure"
			}
			m.JWKSRefreshes.WithLabelValues(result).Inc()
		},
		Logger: logger,
	})
	if err != nil {
		return err
	}

	conns, err := store.Open(cfg.Stores, m)
	if err != nil {
		return err
	}
	defer func() { _ = conns.Close(ctx) }()
	db, rdb, errs := conns.DB, conns.Redis, conns.Errors

	movieStore := movies.New(db, errs)
	if err := store.Retry(ctx, logger, "create movies indexes", func(ctx context.Context) error {
		return movieStore.EnsureIndexes(ctx, logger)
	}); err != nil {
		return err
	}
	// Revocations are mirrored in process: a token check needs no Redis
	// round trip while the mirror is in sync.
	denylist := token.NewDenylist(rdb, cfg.RedisKeyPrefix, errs)
	defer denylist.Start(ctx, token.FollowOptions{Logger: logger})()
	verifier := token.NewVerifier(keys, token.Policy{
		Issuer: cfg.Issuer, Audience: cfg.Audience, Algorithms: cfg.Algorithms,
	}, denylist)

	app := NewServer(logger, cfg, m, movieStore, verifier)
	return server.Serve(ctx, logger, cfg.Config, app, admin)
}
