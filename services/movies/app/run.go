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
	"github.com/moviebag/moviebag/libs/userevents"
	"github.com/moviebag/moviebag/services/movies/internal/movies"
)

// Run runs the movies service until ctx is done or a signal comes; see service.Run.
func Run(ctx context.Context, getenv func(string) string, stdout io.Writer, ready func(server.Addrs)) error {
	return service.Run(ctx, getenv, stdout, ready, service.Spec[Config]{Name: Service, Defaults: defaults, Build: build})
}

// build makes what is the movies service's own: its metrics, the cache of
// the auth service's keys, the movies collection and the consumer of
// auth's account events.
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
	movieStore := movies.New(p.DB, p.Failures)
	if err := store.Retry(ctx, p.Logger, "create movies indexes", movieStore.EnsureIndexes); err != nil {
		return nil, err
	}
	if err := store.Retry(ctx, p.Logger, "give every movie the key of its name", func(ctx context.Context) error {
		return movieStore.Rekey(ctx, p.Logger)
	}); err != nil {
		return nil, err
	}
	// The movies of deleted accounts go, also those deleted while no
	// replica ran.
	events := userevents.Stream(p.Redis, p.Failures, cfg.Store.RedisKeyPrefix)
	e := &eraser{movies: movieStore, logger: p.Logger, m: m}
	p.Go(func(ctx context.Context) {
		if err := events.Consume(ctx, e.consumer()); err != nil {
			p.Logger.Error("account events are not consumed", "error", err)
		}
	})
	return NewServer(p.Logger, cfg, p.Metrics, Deps{
		Movies:   movieStore,
		Verifier: p.Verifier(keys, cfg.Algorithms),
	}), nil
}
