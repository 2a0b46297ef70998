// Package token verifies moviebag's access tokens: RS256 (or the configured
// algorithms) JWTs from the auth service, checked for issuer, audience and
// lifetime, and refused once their id is on the Redis denylist.
package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
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
	strict := &strictClaims{}
	if _, err := v.parser.ParseWithClaims(raw, strict, checkHeader(v.keys(ctx))); err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, apierr.Wrap(apierr.TokenExpiredError, err)
		}
		return nil, apierr.Wrap(apierr.TokenInvalidError, err)
	}
	claims := &strict.RegisteredClaims
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

// checkHeader refuses, before any key is looked up, a header without a kid
// (every moviebag token names its key: trying each published key instead
// would accept what the issuer never signed that way) and one with crit: no
// extension is understood here, and RFC 7515 §4.1.11 says a token whose
// critical extensions are not understood must be refused.
func checkHeader(keys jwt.Keyfunc) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid == "" {
			return nil, errors.New("header has no kid")
		}
		if _, ok := t.Header["crit"]; ok {
			return nil, errors.New("header has crit extensions, none of which are understood")
		}
		return keys(t)
	}
}

// strictClaims decodes the registered claims with the types RFC 7519 gives
// them: exp, nbf and iat numbers (the jwt library also takes a numeric
// string), aud a string or an array of strings, every name once.
type strictClaims struct {
	jwt.RegisteredClaims
}

// UnmarshalJSON checks the claim types, then decodes the registered claims.
func (c *strictClaims) UnmarshalJSON(b []byte) error {
	if !jsontext.Value(b).IsValid() {
		return errors.New("claims are not JSON with unique names in valid UTF-8")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		if v, ok := raw[name]; ok && jsontext.Value(v).Kind() != '0' {
			return fmt.Errorf("claim %s is not a number", name)
		}
	}
	if v, ok := raw["aud"]; ok {
		if k := jsontext.Value(v).Kind(); k != '"' && k != '[' {
			return errors.New("claim aud is neither a string nor an array")
		}
	}
	return json.Unmarshal(b, &c.RegisteredClaims)
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
