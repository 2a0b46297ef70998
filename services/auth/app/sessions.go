package app

import (
	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/request"
	"github.com/moviebag/moviebag/libs/server"
	"github.com/moviebag/moviebag/services/auth/internal/account"
)

// tokenAnswer is the body of a login and of a refresh: an access token and
// the session's refresh token, kept out of every cache.
func tokenAnswer(c *fiber.Ctx, tok account.Token) error {
	noStore(c)
	return c.JSON(fiber.Map{
		"token":         tok.Value,
		"token_type":    "Bearer",
		"expires_in":    int(tok.TTL.Seconds()),
		"refresh_token": tok.RefreshToken,
	})
}

// refreshRequest is the body of a refresh. A refresh token is its session's
// id, a dot and 43 characters (80 in all); one of another form is refused
// by the use case like an unknown one (RefreshTokenInvalidError), one over
// 2048 characters is a field too long (SchemaValidationError).
type refreshRequest struct {
	RefreshToken string `json:"refresh_token" validate:"required,max=2048"`
}

func handleRefresh(refresh *account.Refresh) fiber.Handler {
	return func(c *fiber.Ctx) error {
		noStore(c)
		in, err := request.DecodeValid[refreshRequest](c)
		if err != nil {
			return err
		}
		tok, err := refresh.Handle(c.UserContext(), in.RefreshToken)
		if err != nil {
			return err
		}
		return tokenAnswer(c, tok)
	}
}

func handleLogout(logout *account.Logout) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if err := logout.Handle(c.UserContext(), server.TokenClaims(c)); err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusNoContent)
	}
}

// deleteRequest is the body of an account deletion: the password again.
type deleteRequest struct {
	Password string `json:"password" validate:"required,maxbytes=72"`
}

func handleDeleteMe(del *account.DeleteAccount) fiber.Handler {
	return func(c *fiber.Ctx) error {
		in, err := request.DecodeValid[deleteRequest](c)
		if err != nil {
			return err
		}
		if err := del.Handle(c.UserContext(), account.DeleteAccountCommand{
			UserID: server.TokenClaims(c).Subject, Password: in.Password,
		}); err != nil {
			return err
		}
		return c.SendStatus(fiber.StatusNoContent)
	}
}
