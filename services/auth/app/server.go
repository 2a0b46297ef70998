package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/libs/token"
	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// UserStore is what the handlers need of the users collection.
type UserStore interface {
	Create(ctx context.Context, email string, passwordHash []byte) (users.User, error)
	ByEmail(ctx context.Context, email string) (users.User, error)
	ByID(ctx context.Context, id bson.ObjectID) (users.User, error)
}

// Signer signs tokens and publishes the keys that verify them.
type Signer interface {
	Sign(claims jwt.Claims) (string, error)
	JWKS() []byte
}

// Revoker puts a token id on the denylist; ttl is the time until the
// token's exp, negative for a token inside the verifiers' leeway, which the
// denylist covers too.
type Revoker interface {
	Revoke(ctx context.Context, jti string, ttl time.Duration) error
}

// Limiter is a rate limit keyed by client address or email. Hit counts an
// event atomically and reports whether it is within the limit and, if not,
// when to retry; Forgive takes one counted event back.
type Limiter interface {
	Hit(ctx context.Context, key string) (allowed bool, retryAfter time.Duration, err error)
	Forgive(ctx context.Context, key string) error
}

// PasswordHasher admits the password hash of a request, or refuses it at
// once when it could not be done in time (see Hasher).
type PasswordHasher interface {
	Admit(ctx context.Context) (*Permit, error)
}

// Deps are the auth service's dependencies.
type Deps struct {
	Users       UserStore
	Keys        Signer
	Verifier    *token.Verifier
	Denylist    Revoker
	IPLimit     Limiter
	EmailLimit  Limiter
	SignupLimit Limiter
	// Clients tells a request's client address behind trusted proxies.
	Clients *server.Clients
	Hasher  PasswordHasher
	Metrics *Metrics
}

// Service is the name on metrics and logs.
const Service = "auth"

// NewServer returns the auth service's HTTP application.
func NewServer(logger *slog.Logger, cfg Config, m *metrics.Metrics, d Deps) *fiber.App {
	app := server.New(Service, cfg.Server, logger, m)
	addRoutes(app, cfg, d)
	return app
}
