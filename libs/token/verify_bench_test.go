package token_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/denylist"
	"github.com/moviebag/moviebag/libs/jwks"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/testkit"
	"github.com/moviebag/moviebag/libs/token"
)

// notRevoked is a denylist that never asks Redis, to price the signature
// and claim checks alone.
type notRevoked struct{}

func (notRevoked) Denies(context.Context, *token.Claims) (bool, error) { return false, nil }

// BenchmarkVerify is the token check of every authenticated request: an
// RS256 signature checked with a key from the cached JWKS (the JWKS server
// is asked once, at start), the claims, then the Redis denylist lookup.
// Redis is the real one `make bench-go` starts (testkit.RedisURL).
func BenchmarkVerify(b *testing.B) {
	iss := testkit.NewIssuer(b)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	keys, err := jwks.New(ctx, jwks.Options{
		URL: iss.JWKSURL, RefreshInterval: time.Hour, UnknownKIDInterval: time.Hour, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	policy := token.Policy{Issuer: iss.Iss, Audience: iss.Aud, Algorithms: []string{"RS256"}}
	raw := iss.Token(b, "6b06f1ebcf512d8be09e8da8")

	b.Run("signature and claims", func(b *testing.B) {
		benchVerify(b, token.NewVerifier(keys, policy, notRevoked{}, token.WithCacheSize(0)), raw)
	})
	b.Run("cached token", func(b *testing.B) {
		benchVerify(b, token.NewVerifier(keys, policy, notRevoked{}), raw)
	})

	errs := store.NewFailures(metrics.New(prometheus.NewRegistry(), "bench"))
	deny := denylist.New(benchRedis(b), "bench:"+b.Name()+":", errs)
	b.Run("with denylist", func(b *testing.B) {
		benchVerify(b, token.NewVerifier(keys, policy, deny, token.WithCacheSize(0)), raw)
	})
	// What every authenticated request pays now: the cached token and the
	// in-process mirror of the denylist, no Redis round trip.
	mirrored := denylist.New(benchRedis(b), "bench:"+b.Name()+":", errs)
	b.Cleanup(mirrored.Start(ctx, denylist.FollowOptions{}))
	testkit.Eventually(b, 10*time.Second, func() error {
		if !mirrored.Synced() {
			return errors.New("denylist mirror not in sync")
		}
		return nil
	})
	b.Run("cached token and mirrored denylist", func(b *testing.B) {
		benchVerify(b, token.NewVerifier(keys, policy, mirrored), raw)
	})
	b.Run("denylist lookup only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if revoked, err := deny.Denies(context.Background(), &token.Claims{RegisteredClaims: jwt.RegisteredClaims{ID: "0b8c3c4e-0f51-4b83-9d1c-4b2c1a0f9e77"}}); err != nil || revoked {
				b.Fatalf("revoked=%v err=%v", revoked, err)
			}
		}
	})
	b.Run("with denylist parallel", func(b *testing.B) {
		v := token.NewVerifier(keys, policy, deny, token.WithCacheSize(0))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(context.Background(), raw); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func benchVerify(b *testing.B, v *token.Verifier, raw string) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(context.Background(), raw); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRedis connects to the Redis of `make bench-go` with the services'
// timeouts (store.OpenRedis).
func benchRedis(b *testing.B) redis.UniversalClient {
	b.Helper()
	rdb, err := store.OpenRedis(store.Config{RedisURL: testkit.RedisURL(b), DialTimeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
