package token_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/token"
)

type neverRevoked struct{}

func (neverRevoked) Denies(context.Context, *token.Claims) (bool, error) { return false, nil }

// FuzzVerify: any string as a token is either accepted (only when properly
// signed) or refused with a 401 token code; never a panic, never a 5xx.
func FuzzVerify(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	keys := func(context.Context) jwt.Keyfunc {
		return func(t *jwt.Token) (any, error) {
			if t.Header["kid"] != "k1" {
				return nil, jwt.ErrTokenUnverifiable
			}
			return &key.PublicKey, nil
		}
	}
	v := token.NewVerifier(keys, token.Policy{Issuer: "moviebag-auth", Audience: "moviebag", Algorithms: []string{"RS256"}}, neverRevoked{})
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Issuer: "moviebag-auth", Subject: "6b06f1ebcf512d8be09e8da8", Audience: jwt.ClaimStrings{"moviebag"}, ID: "j",
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	})
	tok.Header["kid"] = "k1"
	valid, err := tok.SignedString(key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		claims, err := v.Verify(context.Background(), raw)
		if err == nil {
			if claims == nil || !token.IsUserID(claims.Subject) || claims.ID == "" {
				t.Fatalf("accepted %q with claims %+v", raw, claims)
			}
			return
		}
		if !apierr.Is(err, apierr.TokenInvalidError) && !apierr.Is(err, apierr.TokenExpiredError) {
			t.Fatalf("Verify(%q) = %v: want a 401 token code", raw, err)
		}
	})
}
