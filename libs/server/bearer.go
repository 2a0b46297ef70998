package server

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/token"
)

// claimsKey holds a request's verified claims in its locals.
const claimsKey = "moviebag.claims"

// RequireToken is middleware that lets a request through only with a valid
// `Authorization: Bearer <token>` header, sent once: a request with two
// Authorization headers is TokenInvalidError (neither is guessed to be the
// one meant, so a client's header never wins over one an intermediary
// added). Handlers read the claims with TokenClaims.
func RequireToken(v *token.Verifier) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if n := len(c.Request().Header.PeekAll(fiber.HeaderAuthorization)); n > 1 {
			return apierr.Wrap(apierr.TokenInvalidError, fmt.Errorf("%d Authorization headers", n))
		}
		raw, err := bearer(c.Get(fiber.HeaderAuthorization))
		if err != nil {
			return err
		}
		claims, err := v.Verify(c.UserContext(), raw)
		if err != nil {
			return err
		}
		c.Locals(claimsKey, claims)
		return c.Next()
	}
}

// TokenClaims returns the claims of the request's verified access token,
// stored by RequireToken; nil outside RequireToken.
func TokenClaims(c *fiber.Ctx) *token.Claims {
	claims, _ := c.Locals(claimsKey).(*token.Claims)
	return claims
}

// bearer extracts the token of an Authorization header. A missing header is
// TokenMissingError; another scheme or an empty token is TokenInvalidError.
func bearer(header string) (string, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return "", apierr.New(apierr.TokenMissingError)
	}
	scheme, raw, ok := strings.Cut(header, " ")
	raw = strings.TrimSpace(raw)
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return "", apierr.Wrap(apierr.TokenInvalidError, errors.New("authorization header is not a bearer token"))
	}
	return raw, nil
}
