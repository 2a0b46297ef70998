package app

import (
	"context"
	"log/slog"

	"github.com/gofiber/fiber/v2"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/libs/token"
	"github.com/moviebag/moviebag/services/auth/internal/account"
	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// UserStore is what the handlers read of the users collection themselves.
type UserStore interface {
	ByID(ctx context.Context, id bson.ObjectID) (users.User, error)
}

// KeySet publishes the keys that verify auth's tokens.
type KeySet interface {
	JWKS() []byte
}

// Deps are the auth service's dependencies.
type Deps struct {
	// Accounts are the use cases.
	Accounts account.Accounts
	Users    UserStore
	Keys     KeySet
	Verifier *token.Verifier
	// Clients tells a request's client address behind trusted proxies.
	Clients *server.Clients
}

// Service is the name on metrics and logs.
const Service = "auth"

// NewServer returns the auth service's HTTP application.
func NewServer(logger *slog.Logger, cfg Config, m *metrics.Metrics, d Deps) *fiber.App {
	app := server.New(Service, cfg.Server, logger, m)
	addRoutes(app, d)
	return app
}
