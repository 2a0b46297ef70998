// Package app is the movies service: the movie catalogue, readable by
// anyone, changed only by the user who added each movie, with tokens
// verified against the auth service's published keys.
package app

import (
	"context"
	"io"

	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/jwks"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/libs/service"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/services/movies/internal/movies"
)

// Run runs the movies service until ctx is done or a signal comes; see service.Run.
func Run(ctx context.Context, getenv func(string) string, stdout io.Writer, ready func(server.Addrs)) error {
	return service.Run(ctx, getenv, stdout, ready, service.Spec[Config]{Name: Service, Defaults: defaults, Build: build})
}

// build makes what is the movies service's own: its metrics, the cache of
// the auth service's keys and the movies collection.
func build(ctx context.Context, cfg Config, p service.Parts) (*fiber.App, error) {
	m := NewMetrics(p.Registry, p.Metrics)
	keys, err := jwks.New(ctx, jwks.Options{
		URL:                cfg.JWKSURL,
		RefreshInterval:    cfg.JWKSRefreshInterval,
		UnknownKIDInterval: cfg.JWKSUnknownKIDInterval,
		OnFetch:            m.jwksFetched,
		Logger:             p.Logger,
	})
	if err != nil {
		return nil, err
	}
	movieStore := movies.New(p.DB, p.Errors)
	if err := store.Retry(ctx, p.Logger, "create movies indexes", func(ctx context.Context) error {
		return movieStore.EnsureIndexes(ctx, p.Logger)
	}); err != nil {
		return nil, err
	}
	return NewServer(p.Logger, cfg, p.Metrics, Deps{
		Movies:   movieStore,
		Verifier: p.Verifier(keys, cfg.Algorithms),
	}), nil
}
