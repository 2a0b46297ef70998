package token_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/denylist"
	"github.com/moviebag/moviebag/libs/jwks"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/testkit"
	"github.com/moviebag/moviebag/libs/token"
)

// userID is a user id, the only form of sub a verifier accepts.
const userID = "6b06f1ebcf512d8be09e8da8"

func newRedis(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opts.DialTimeout, opts.MaxRetries = 500*time.Millisecond, 0
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func newVerifier(t *testing.T, iss *testkit.Issuer, redisURL string) (*token.Verifier, *denylist.Denylist) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	keys, err := jwks.New(ctx, jwks.Options{
		URL: iss.JWKSURL, RefreshInterval: time.Minute, UnknownKIDInterval: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	errs := store.NewFailures(metrics.New(prometheus.NewRegistry(), "test"))
	deny := denylist.New(newRedis(t, redisURL), "test:"+t.Name()+":", errs)
	return token.NewVerifier(keys, token.Policy{Issuer: iss.Iss, Audience: iss.Aud, Algorithms: []string{"RS256"}}, deny), deny
}

// TestVerify is the table of token checks: every way a token can be wrong
// gets its own code, and only well-signed, current tokens pass.
func TestVerify(t *testing.T) {
	iss := testkit.NewIssuer(t)
	v, deny := newVerifier(t, iss, testkit.RedisURL(t))
	other := testkit.NewIssuer(t) // a key the verifier has never seen

	pubDER, err := x509.MarshalPKIXPublicKey(&iss.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	sign := func(method jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
		tok := jwt.NewWithClaims(method, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	with := func(f func(c *jwt.RegisteredClaims)) jwt.RegisteredClaims {
		c := iss.Claims("6b06f1ebcf512d8be09e8da8")
		f(&c)
		return c
	}
	revoked := iss.Claims("6b06f1ebcf512d8be09e8da8")
	if err := deny.Revoke(context.Background(), revoked.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	valid := iss.Token(t, "6b06f1ebcf512d8be09e8da8")
	parts := strings.Split(valid, ".")
	weak, _ := rsa.GenerateKey(rand.Reader, 2048)

	tests := []struct {
		name  string
		token string
		want  apierr.Code // "" = valid
	}{
		{"valid", valid, ""},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, iss.KID, iss.Claims(userID)), apierr.TokenInvalidError},
		{"HS256 signed with the public key", sign(jwt.SigningMethodHS256, pubPEM, iss.KID, iss.Claims(userID)), apierr.TokenInvalidError},
		{"RS512 not configured", sign(jwt.SigningMethodRS512, iss.Key, iss.KID, iss.Claims(userID)), apierr.TokenInvalidError},
		{"tampered payload", parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2], apierr.TokenInvalidError},
		{"signature of another key, same kid", sign(jwt.SigningMethodRS256, weak, iss.KID, iss.Claims(userID)), apierr.TokenInvalidError},
		{"expired", iss.Sign(t, with(func(c *jwt.RegisteredClaims) {
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
		})), apierr.TokenExpiredError},
		{"no expiry", iss.Sign(t, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })), apierr.TokenInvalidError},
		{"not yet valid", iss.Sign(t, with(func(c *jwt.RegisteredClaims) {
			c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour))
		})), apierr.TokenInvalidError},
		{"wrong issuer", iss.Sign(t, with(func(c *jwt.RegisteredClaims) { c.Issuer = "evil" })), apierr.TokenInvalidError},
		{"wrong audience", iss.Sign(t, with(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"other"} })), apierr.TokenInvalidError},
		{"no subject", iss.Sign(t, with(func(c *jwt.RegisteredClaims) { c.Subject = "" })), apierr.TokenInvalidError},
		{"no jti", iss.Sign(t, with(func(c *jwt.RegisteredClaims) { c.ID = "" })), apierr.TokenInvalidError},
		{"sub not a user id", iss.Sign(t, with(func(c *jwt.RegisteredClaims) { c.Subject = "admin" })), apierr.TokenInvalidError},
		{"sub in upper-case hex", iss.Sign(t, with(func(c *jwt.RegisteredClaims) { c.Subject = "6B06F1EBCF512D8BE09E8DA8" })), apierr.TokenInvalidError},
		{"unknown kid", other.Token(t, userID), apierr.TokenInvalidError},
		{"revoked", iss.Sign(t, revoked), apierr.TokenRevokedError},
		{"garbage", "not.a.token", apierr.TokenInvalidError},
		{"empty", "", apierr.TokenInvalidError},
	}
	for name, tok := range iss.MalformedTokens(t, "6b06f1ebcf512d8be09e8da8") {
		tests = append(tests, struct {
			name  string
			token string
			want  apierr.Code
		}{name, tok, apierr.TokenInvalidError})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, err := v.Verify(context.Background(), tt.token)
			if tt.want == "" {
				if err != nil || claims.Subject == "" {
					t.Fatalf("valid token refused: %v", err)
				}
				return
			}
			if !apierr.Is(err, tt.want) {
				t.Fatalf("got %v, want %s", err, tt.want)
			}
		})
	}
}

// A verifier whose Redis is down fails closed with a 503.
func TestVerifyRedisDownFailsClosed(t *testing.T) {
	iss := testkit.NewIssuer(t)
	v, _ := newVerifier(t, iss, "redis://"+testkit.FreeAddr(t)+"/0")
	_, err := v.Verify(context.Background(), iss.Token(t, userID))
	if !apierr.Is(err, apierr.ServiceUnavailableError) {
		t.Fatalf("got %v, want ServiceUnavailableError", err)
	}
}
