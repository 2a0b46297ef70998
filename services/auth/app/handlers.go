package app

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/request"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/libs/token"
	"github.com/moviebag/moviebag/services/auth/internal/email"
	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// credentials is the body of signup and login.
type credentials struct {
	Email    string `json:"email" validate:"required,max=254,email"`
	Password string `json:"password" validate:"required,min=6,maxbytes=72"`
}

func handleJWKS(keys Signer) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "public, max-age=300")
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(keys.JWKS())
	}
}

// decodeCredentials reads the body of signup and login, the email in the
// form it is stored in.
func decodeCredentials(c *fiber.Ctx) (credentials, error) {
	in, err := request.DecodeValid[credentials](c)
	if err != nil {
		return in, err
	}
	in.Email, err = email.Canonical(in.Email)
	return in, err
}

func handleSignup(store UserStore, h PasswordHasher, limit Limiter, clients *server.Clients) fiber.Handler {
	return func(c *fiber.Ctx) error {
		// Shed first, when the hash could not be done in time: a refusal
		// costs no Redis or MongoDB call, which a storm would queue for too.
		permit, err := h.Admit(c.UserContext())
		if err != nil {
			return err
		}
		defer permit.Release()
		// Counted before anything else: each sign-up costs a bcrypt hash.
		if err := checkLimit(c.UserContext(), limit.Hit, clients.Key(c)); err != nil {
			return err
		}
		in, err := decodeCredentials(c)
		if err != nil {
			return err
		}
		hash, err := permit.Hash(c.UserContext(), in.Password)
		if err != nil {
			return err
		}
		u, err := store.Create(c.UserContext(), in.Email, hash)
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"id": u.ID.Hex()})
	}
}

func handleLogin(store UserStore, h PasswordHasher, keys Signer, ipLimit, emailLimit Limiter, clients *server.Clients, cfg Config, m *Metrics) fiber.Handler {
	attempt := m.loginAttempt
	return func(c *fiber.Ctx) error {
		noStore(c)
		ctx := c.UserContext()
		// Shed first, when the hash could not be done in time: a refusal
		// costs no Redis or MongoDB call (which a storm would queue for too),
		// counts no attempt and checks no password.
		permit, err := h.Admit(ctx)
		if err != nil {
			return err
		}
		defer permit.Release()
		if err := checkLimit(ctx, ipLimit.Hit, clients.Key(c)); err != nil {
			attempt(limitResult(err))
			return err
		}
		in, err := decodeCredentials(c)
		if err != nil {
			return err
		}
		addr := in.Email
		// Counted before the password is checked, so that concurrent guesses
		// cannot all pass a check made before any of them was counted; given
		// back below unless the password was wrong.
		if err := checkLimit(ctx, emailLimit.Hit, addr); err != nil {
			attempt(limitResult(err))
			return err
		}
		guessed := false
		defer func() {
			if !guessed {
				// Best effort: when Redis fails here the event simply ages out.
				_ = emailLimit.Forgive(ctx, addr)
			}
		}()
		u, err := store.ByEmail(ctx, addr)
		if err != nil && !errors.Is(err, users.ErrNotFound) {
			attempt(loginError)
			return err
		}
		ok, err := permit.Matches(ctx, u.PasswordHash, in.Password) // a zero User has no hash
		if err != nil {
			attempt(loginError)
			return err
		}
		if !ok {
			attempt(loginInvalidCredentials)
			guessed = true
			return apierr.New(apierr.UnauthorizedError)
		}
		now := time.Now()
		signed, err := keys.Sign(token.Claims{
			Issuer:    cfg.Token.Issuer,
			Subject:   u.ID.Hex(),
			Audience:  jwt.ClaimStrings{cfg.Token.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(cfg.TokenTTL)),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ID:        uuid.NewString(),
		})
		if err != nil {
			attempt(loginError)
			return apierr.Wrap(apierr.InternalServerError, err)
		}
		attempt(loginSuccess)
		return c.JSON(fiber.Map{
			"token":      signed,
			"token_type": "Bearer",
			"expires_in": int(cfg.TokenTTL.Seconds()),
		})
	}
}

// noStore keeps an answer that carries a token out of every cache (RFC 6749
// §5.1; Pragma for HTTP/1.0 caches).
func noStore(c *fiber.Ctx) {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderPragma, "no-cache")
}

// checkLimit turns a limiter's verdict into a TooManyRequestsError.
func checkLimit(ctx context.Context, check func(context.Context, string) (bool, time.Duration, error), key string) error {
	allowed, retryAfter, err := check(ctx, key)
	if err != nil {
		return err
	}
	if !allowed {
		return &apierr.Error{Code: apierr.TooManyRequestsError, RetryAfter: retryAfter}
	}
	return nil
}

func limitResult(err error) loginResult {
	if apierr.Is(err, apierr.TooManyRequestsError) {
		return loginRateLimited
	}
	return loginError
}

func handleLogout(denylist Revoker, m *Metrics) fiber.Handler {
	return func(c *fiber.Ctx) error {
		claims := token.From(c)
		if err := denylist.Revoke(c.UserContext(), claims.ID, time.Until(claims.ExpiresAt.Time)); err != nil {
			return err
		}
		m.tokenRevoked()
		return c.SendStatus(fiber.StatusNoContent)
	}
}

func handleMe(store UserStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		claims := token.From(c)
		id, err := bson.ObjectIDFromHex(claims.Subject)
		if err != nil {
			return apierr.Wrap(apierr.TokenInvalidError, err)
		}
		u, err := store.ByID(c.UserContext(), id)
		if errors.Is(err, users.ErrNotFound) {
			return apierr.Wrap(apierr.TokenInvalidError, err)
		}
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"id": u.ID.Hex(), "email": u.Email, "created_at": u.CreatedAt})
	}
}
