package app

import (
	"context"
	"log/slog"

	"github.com/gofiber/fiber/v2"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/libs/token"
	"github.com/moviebag/moviebag/services/movies/internal/movies"
)

// MovieStore is what the handlers need of the movies collection.
type MovieStore interface {
	Create(ctx context.Context, m movies.Movie) (movies.Movie, error)
	Get(ctx context.Context, id bson.ObjectID) (movies.Movie, error)
	List(ctx context.Context, after bson.ObjectID, limit int) ([]movies.Movie, error)
	Update(ctx context.Context, id bson.ObjectID, owner string, p movies.Patch) (movies.Movie, error)
	Delete(ctx context.Context, id bson.ObjectID, owner string) error
}

// Deps are the movies service's dependencies.
type Deps struct {
	Movies   MovieStore
	Verifier *token.Verifier
}

// Service is the name on metrics and logs.
const Service = "movies"

// NewServer returns the movies service's HTTP application.
func NewServer(logger *slog.Logger, cfg Config, m *metrics.Metrics, d Deps) *fiber.App {
	app := server.New(Service, cfg.Server, logger, m)
	addRoutes(app, d)
	return app
}
