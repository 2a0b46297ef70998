package app

import (
	"errors"

	"github.com/gofiber/fiber/v2"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/request"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/services/auth/internal/account"
	"github.com/moviebag/moviebag/services/auth/internal/email"
	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// credentials is the body of signup and login.
type credentials struct {
	Email    string `json:"email" validate:"required,max=254,email"`
	Password string `json:"password" validate:"required,min=6,maxbytes=72"`
}

func handleJWKS(keys KeySet) fiber.Handler {
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

func handleSignup(signup *account.Signup, clients *server.Clients) fiber.Handler {
	return func(c *fiber.Ctx) error {
		in, err := decodeCredentials(c)
		if err != nil {
			return err
		}
		u, err := signup.Handle(c.UserContext(), account.SignupCommand{
			ClientKey: clients.Key(c), Email: in.Email, Password: in.Password,
		})
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"id": u.ID.Hex()})
	}
}

func handleLogin(login *account.Login, clients *server.Clients) fiber.Handler {
	return func(c *fiber.Ctx) error {
		noStore(c)
		in, err := decodeCredentials(c)
		if err != nil {
			return err
		}
		tok, err := login.Handle(c.UserContext(), account.LoginCommand{
			ClientKey: clients.Key(c), Email: in.Email, Password: in.Password,
		})
		if err != nil {
			return err
		}
		return tokenAnswer(c, tok)
	}
}

// noStore keeps an answer that carries a token out of every cache (RFC 6749
// §5.1; Pragma for HTTP/1.0 caches).
func noStore(c *fiber.Ctx) {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderPragma, "no-cache")
}

func handleLogoutAll(logoutAll *account.LogoutAll) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if err := logoutAll.Handle(c.UserContext(), server.TokenClaims(c).Subject); err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusNoContent)
	}
}

// passwordChange is the body of a password change: the new password has
// sign-up's rules.
type passwordChange struct {
	CurrentPassword string `json:"current_password" validate:"required,maxbytes=72"`
	NewPassword     string `json:"new_password" validate:"required,min=6,maxbytes=72"`
}

func handleChangePassword(change *account.ChangePassword) fiber.Handler {
	return func(c *fiber.Ctx) error {
		in, err := request.DecodeValid[passwordChange](c)
		if err != nil {
			return err
		}
		claims := server.TokenClaims(c)
		if err := change.Handle(c.UserContext(), account.ChangePasswordCommand{
			UserID: claims.Subject, SessionID: claims.SessionID, Current: in.CurrentPassword, New: in.NewPassword,
		}); err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusNoContent)
	}
}

func handleMe(store UserStore) fiber.Handler {
	return func(c *fiber.Ctx) error {
		claims := server.TokenClaims(c)
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
