// Package token verifies moviebag's access tokens: RS256 (or the configured
// algorithms) JWTs from the auth service, checked for issuer, audience and
// lifetime, then asked of a RevocationChecker (package denylist). Keys come
// from a key source such as package jwks; the HTTP middleware that reads the
// Authorization header is in package server.
package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/moviebag/moviebag/libs/apierr"
)

// Leeway is the clock skew tolerated on exp, nbf and iat: a token is
// accepted until Leeway past its exp, so whatever revokes it must last as long.
const Leeway = 30 * time.Second

// Config is what both services agree on about tokens.
type Config struct {
	Issuer   string `env:"JWT_ISSUER" envDefault:"moviebag-auth"`
	Audience string `env:"JWT_AUDIENCE" envDefault:"moviebag"`
}

// Claims are the claims of a moviebag access token: sub is the user's id,
// sid the login session the token belongs to (empty in a token issued
// before sessions had ids).
type Claims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid,omitempty"`
}

// RevocationChecker answers whether a verified token has been revoked: its
// id, or every token of its user issued before a time.
type RevocationChecker interface {
	Denies(ctx context.Context, claims *Claims) (bool, error)
}

// Verifier checks access tokens.
type Verifier struct {
	keys     func(ctx context.Context) jwt.Keyfunc
	parser   *jwt.Parser
	denylist RevocationChecker
	// verified remembers tokens whose signature and claims passed, keyed by
	// the SHA-256 of the token, so a token seen before costs no signature
	// check; nil when caching is off.
	verified *lru.Cache[[sha256.Size]byte, verified]
	now      func() time.Time // the clock of every time check (tests move it)
}

// verified is a token that passed every check but the denylist.
type verified struct {
	claims *Claims
	exp    time.Time  // the token's exp: the entry is worthless from then on
	probe  *jwt.Token // header (kid, alg) to ask the key source whether the key is still published
	key    any        // the key that verified it
}

// DefaultCacheSize is how many verified tokens a Verifier remembers unless
// told otherwise: a few hundred bytes each.
const DefaultCacheSize = 4096

// Option changes a Verifier.
type Option func(*Verifier)

// WithCacheSize bounds the cache of verified tokens to n entries (0: no
// cache, every token's signature is checked on every request).
func WithCacheSize(n int) Option {
	return func(v *Verifier) {
		v.verified = nil
		if n > 0 {
			v.verified, _ = lru.New[[sha256.Size]byte, verified](n)
		}
	}
}

// Policy is what a valid token must satisfy.
type Policy struct {
	Issuer     string
	Audience   string
	Algorithms []string
}

// NewVerifier returns a verifier that finds keys with keys (for example a
// JWKS cache) and refuses tokens revoked in denylist. It remembers up to
// DefaultCacheSize verified tokens unless an option says otherwise.
func NewVerifier(keys func(ctx context.Context) jwt.Keyfunc, p Policy, denylist RevocationChecker, opts ...Option) *Verifier {
	v := &Verifier{keys: keys, denylist: denylist, now: time.Now}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(p.Algorithms),
		jwt.WithIssuer(p.Issuer),
		jwt.WithAudience(p.Audience),
		jwt.WithLeeway(Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	WithCacheSize(DefaultCacheSize)(v)
	for _, o := range opts {
		o(v)
	}
	return v
}

// Verify parses and checks raw, returning its claims or an apierr error:
// TokenExpiredError, TokenRevokedError, TokenInvalidError for anything else
// wrong with the token, and the denylist's error when it cannot be read
// (fail closed: ServiceUnavailableError when Redis is down).
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	claims, err := v.check(ctx, raw)
	if err != nil {
		return nil, err
	}
	revoked, err := v.denylist.Denies(ctx, claims)
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

// strictClaims decodes the claims with the types RFC 7519 gives them: exp,
// nbf and iat numbers (the jwt library also takes a numeric string), aud a
// string or an array of strings, sid a string, every name once.
type strictClaims struct {
	Claims
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
	if v, ok := raw["sid"]; ok && jsontext.Value(v).Kind() != '"' {
		return errors.New("claim sid is not a string")
	}
	if v, ok := raw["aud"]; ok {
		if k := jsontext.Value(v).Kind(); k != '"' && k != '[' {
			return errors.New("claim aud is neither a string nor an array")
		}
	}
	return json.Unmarshal(b, &c.Claims)
}

// check verifies everything but the denylist: from the cache when the token
// passed before, is not past its exp and its key is still published, else
// by parsing it (and then remembering it). The claims returned may be shared
// with other requests: read them, never change them.
func (v *Verifier) check(ctx context.Context, raw string) (*Claims, error) {
	var sum [sha256.Size]byte
	if v.verified != nil {
		sum = sha256.Sum256(bytesOf(raw))
		if e, ok := v.verified.Get(sum); ok {
			if v.now().Before(e.exp) {
				if key, ok := v.stillPublished(ctx, e); ok {
					if key != nil { // published again by a refresh: remember that object
						e.key = key
						v.verified.Add(sum, e)
					}
					return e.claims, nil
				}
			}
			// Expired (the full check below says so, with its leeway) or
			// its key left the key set: never answer from this entry again.
			v.verified.Remove(sum)
		}
	}
	strict := &strictClaims{}
	keyfunc := checkHeader(v.keys(ctx))
	var key any
	tok, err := v.parser.ParseWithClaims(raw, strict, func(t *jwt.Token) (any, error) {
		k, err := keyfunc(t)
		key = k
		return k, err
	})
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, apierr.Wrap(apierr.TokenExpiredError, err)
		}
		return nil, apierr.Wrap(apierr.TokenInvalidError, err)
	}
	claims := &strict.Claims
	if claims.ID == "" {
		return nil, apierr.Wrap(apierr.TokenInvalidError, errors.New("token lacks jti"))
	}
	if !IsUserID(claims.Subject) {
		return nil, apierr.Wrap(apierr.TokenInvalidError, errors.New("sub is not a user id"))
	}
	if v.verified != nil && claims.ExpiresAt != nil && v.now().Before(claims.ExpiresAt.Time) {
		kid, _ := tok.Header["kid"].(string)
		v.verified.Add(sum, verified{
			claims: claims,
			exp:    claims.ExpiresAt.Time,
			probe:  &jwt.Token{Header: map[string]any{"kid": kid, "alg": tok.Method.Alg()}, Method: tok.Method},
			key:    key,
		})
	}
	return claims, nil
}

// bytesOf is s's bytes, not copied: only for a function that reads them and
// keeps nothing (sha256.Sum256). []byte(raw) copied the token (about 600
// bytes) into a new allocation on every request: 640 of the 1,849 bytes an
// authenticated invalid create allocated, and 640 of a token check's 833.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// stillPublished asks the key source whether the key that verified e is
// still the one published under its kid (a key removed from the JWKS, or
// replaced, ends the entry). The source hands out the same key object until
// a refresh of the key set parses it again: that one is taken as is
// (comparing two RSA keys with Equal allocates twice and reads 2048 bits);
// an equal key in a new object is returned, for the entry to keep.
func (v *Verifier) stillPublished(ctx context.Context, e verified) (renewed any, ok bool) {
	k, err := v.keys(ctx)(e.probe)
	if err != nil {
		return nil, false
	}
	if sameObject(k, e.key) {
		return nil, true
	}
	pub, ok := k.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(e.key) {
		return nil, false
	}
	return k, true
}

// sameObject reports whether a and b are the same RSA or ECDSA public key
// object (other key types, such as ed25519's slices, are never compared
// here: == on them would panic).
func sameObject(a, b any) bool {
	switch a := a.(type) {
	case *rsa.PublicKey:
		b, ok := b.(*rsa.PublicKey)
		return ok && a == b
	case *ecdsa.PublicKey:
		b, ok := b.(*ecdsa.PublicKey)
		return ok && a == b
	}
	return false
}

// IsUserID reports whether sub has the form of the user ids auth issues
// tokens for: an ObjectID in 24 lower-case hex digits. Any other sub
// ("admin", upper-case hex naming the same id) is one auth never signs, and
// would make one user two owners.
func IsUserID(sub string) bool {
	if len(sub) != 24 {
		return false
	}
	for i := range len(sub) {
		if c := sub[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
