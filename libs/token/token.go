// Package token verifies moviebag's access tokens: RS256 (or the configured
// algorithms) JWTs from the auth service, checked for issuer, audience and
// lifetime, and refused once their id is on the Redis denylist.
package token

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/moviebag/moviebag/libs/apierr"
)

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 30 * time.Second

// Claims are the claims of a moviebag access token: sub is the user's id.
type Claims = jwt.RegisteredClaims

// Checker answers whether a token id has been revoked.
type Checker interface {
	Revoked(ctx context.Context, jti string) (bool, error)
}

// Verifier checks access tokens.
type Verifier struct {
	keys     func(ctx context.Context) jwt.Keyfunc
	parser   *jwt.Parser
	denylist Checker
}

// Policy is what a valid token must satisfy.
type Policy struct {
	Issuer     string
	Audience   string
	Algorithms []string
}

// NewVerifier returns a verifier that finds keys with keys (for example a
// JWKS cache) and refuses tokens revoked in denylist.
func NewVerifier(keys func(ctx context.Context) jwt.Keyfunc, p Policy, denylist Checker) *Verifier {
	return &Verifier{
		keys: keys,
		parser: jwt.NewParser(
			jwt.WithValidMethods(p.Algorithms),
			jwt.WithIssuer(p.Issuer),
			jwt.WithAudience(p.Audience),
			jwt.WithLeeway(Leeway),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
		),
		denylist: denylist,
	}
}

// Verify parses and checks raw, returning its claims or an apierr error:
// TokenExpiredError, TokenRevokedError, TokenInvalidError for anything else
// wrong with the token, and the denylist's error when it cannot be read
// (fail closed: ServiceUnavailableError when Redis is down).
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	claims := &Claims{}
	if _, err := v.parser.ParseWithClaims(raw, claims, v.keys(ctx)); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, apierr.Wrap(apierr.TokenExpiredError, err)
		}
		return nil, apierr.Wrap(apierr.TokenInvalidError, err)
	}
	if claims.Subject == "" || claims.ID == "" {
		return nil, apierr.Wrap(apierr.TokenInvalidError, errors.New("token lacks sub or jti"))
	}
	revoked, err := v.denylist.Revoked(ctx, claims.ID)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, apierr.New(apierr.TokenRevokedError)
	}
	return claims, nil
}

const claimsKey = "moviebag.claims"

// Require is middleware that lets a request through only with a valid
// `Authorization: Bearer <token>` header; handlers read the claims with From.
func Require(v *Verifier) fiber.Handler {
	return func(c *fiber.Ctx) error {
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

// From returns the claims Require stored; nil outside Require.
func From(c *fiber.Ctx) *Claims {
	claims, _ := c.Locals(claimsKey).(*Claims)
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
