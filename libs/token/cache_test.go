package token_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/testkit"
	"github.com/moviebag/moviebag/libs/token"
)

// user1 is a user id, the only form of sub a verifier accepts.
const user1 = "6b06f1ebcf512d8be09e8da8"

type nothingRevoked struct{}

func (nothingRevoked) Denies(context.Context, *token.Claims) (bool, error) { return false, nil }

// keySource publishes one issuer's key while published is true and counts
// the signature checks it serves (a probe of the cache carries no raw token).
type keySource struct {
	iss       *testkit.Issuer
	published atomic.Bool
	checks    atomic.Int64
	// serve, when set, is the key handed out instead of the issuer's
	// (a copy of it, as after a refresh; or another key under its kid).
	serve atomic.Pointer[rsa.PublicKey]
}

func newKeySource(t *testing.T) *keySource {
	ks := &keySource{iss: testkit.NewIssuer(t)}
	ks.published.Store(true)
	return ks
}

func (ks *keySource) keys(context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if t.Raw != "" {
			ks.checks.Add(1)
		}
		if kid, _ := t.Header["kid"].(string); kid != ks.iss.KID || !ks.published.Load() {
			return nil, errors.New("unknown kid")
		}
		if k := ks.serve.Load(); k != nil {
			return k, nil
		}
		return &ks.iss.Key.PublicKey, nil
	}
}

func (ks *keySource) verifier(opts ...token.Option) *token.Verifier {
	return token.NewVerifier(ks.keys, token.Policy{Issuer: ks.iss.Iss, Audience: ks.iss.Aud, Algorithms: []string{"RS256"}},
		nothingRevoked{}, opts...)
}

func mustVerify(t *testing.T, v *token.Verifier, raw string) *token.Claims {
	t.Helper()
	c, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return c
}

// A token seen before is answered without a second signature check.
func TestCacheSkipsSignatureCheck(t *testing.T) {
	ks := newKeySource(t)
	v := ks.verifier()
	raw := ks.iss.Token(t, user1)
	first := mustVerify(t, v, raw)
	second := mustVerify(t, v, raw)
	if n := ks.checks.Load(); n != 1 {
		t.Fatalf("%d signature checks for one token verified twice, want 1", n)
	}
	if first.Subject != user1 || second.ID != first.ID {
		t.Fatalf("cached claims differ: %+v vs %+v", first, second)
	}
	// Without the cache every request pays the check.
	ks.checks.Store(0)
	v = ks.verifier(token.WithCacheSize(0))
	mustVerify(t, v, raw)
	mustVerify(t, v, raw)
	if n := ks.checks.Load(); n != 2 {
		t.Fatalf("%d signature checks without a cache, want 2", n)
	}
}

// An entry is never used at or past the token's exp: expiry is decided at
// lookup, by the full check, not by a verdict remembered from earlier.
func TestCacheEntryEndsAtExp(t *testing.T) {
	ks := newKeySource(t)
	v := ks.verifier()
	now := time.Now()
	token.SetClock(v, func() time.Time { return now })
	c := ks.iss.Claims(user1)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(time.Minute))
	raw := ks.iss.Sign(t, c)
	mustVerify(t, v, raw)

	now = now.Add(time.Minute) // exactly exp
	mustVerify(t, v, raw)      // still inside the token.Leeway, but checked again
	if n := ks.checks.Load(); n != 2 {
		t.Fatalf("%d signature checks, want 2: the entry was used at exp", n)
	}
	now = now.Add(token.Leeway + time.Second)
	if _, err := v.Verify(context.Background(), raw); !apierr.Is(err, apierr.TokenExpiredError) {
		t.Fatalf("past exp and token.Leeway: got %v, want TokenExpiredError", err)
	}
}

// An entry ends when its key leaves the key set (a rotated-out or
// compromised key): the token is then refused.
func TestCacheDropsEntryWhenKidLeavesKeySet(t *testing.T) {
	ks := newKeySource(t)
	v := ks.verifier()
	raw := ks.iss.Token(t, user1)
	mustVerify(t, v, raw)
	ks.published.Store(false)
	if _, err := v.Verify(context.Background(), raw); !apierr.Is(err, apierr.TokenInvalidError) {
		t.Fatalf("key no longer published: got %v, want TokenInvalidError", err)
	}
	if token.CachedTokens(v) != 0 {
		t.Fatalf("%d entries left after the key left the key set", token.CachedTokens(v))
	}
}

// A refresh of the key set parses the same key into a new object: the
// entry stays (no signature check again), and so does a token verified
// with the new object, as long as the key is equal.
func TestCacheKeepsEntryWhenKeyIsParsedAgain(t *testing.T) {
	ks := newKeySource(t)
	v := ks.verifier()
	raw := ks.iss.Token(t, user1)
	mustVerify(t, v, raw)
	for range 3 {
		parsedAgain := ks.iss.Key.PublicKey // a copy: equal, another object
		ks.serve.Store(&parsedAgain)
		mustVerify(t, v, raw)
		mustVerify(t, v, raw)
	}
	if n := ks.checks.Load(); n != 1 {
		t.Fatalf("%d signature checks, want 1: the entry did not survive its key being parsed again", n)
	}
}

// An entry ends when its kid names another key (a replaced key): the token
// is then refused.
func TestCacheDropsEntryWhenKidGetsAnotherKey(t *testing.T) {
	ks := newKeySource(t)
	v := ks.verifier()
	raw := ks.iss.Token(t, user1)
	mustVerify(t, v, raw)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ks.serve.Store(&other.PublicKey)
	if _, err := v.Verify(context.Background(), raw); !apierr.Is(err, apierr.TokenInvalidError) {
		t.Fatalf("another key under the kid: got %v, want TokenInvalidError", err)
	}
	if token.CachedTokens(v) != 0 {
		t.Fatalf("%d entries left after the kid got another key", token.CachedTokens(v))
	}
}

// The cache holds no more than its bound; a token evicted is simply checked
// again.
func TestCacheIsBounded(t *testing.T) {
	ks := newKeySource(t)
	v := ks.verifier(token.WithCacheSize(2))
	for i := range 5 {
		mustVerify(t, v, ks.iss.Token(t, fmt.Sprintf("6b06f1ebcf512d8be09e8d%02d", i)))
	}
	if n := token.CachedTokens(v); n != 2 {
		t.Fatalf("%d entries, want the bound 2", n)
	}
}

// A refused token is never remembered, and the denylist is asked on every
// request, cached or not.
func TestCacheKeepsOnlyAcceptedTokensAndAlwaysAsksDenylist(t *testing.T) {
	ks := newKeySource(t)
	deny := &countingDenylist{}
	v := token.NewVerifier(ks.keys, token.Policy{Issuer: ks.iss.Iss, Audience: "someone-else", Algorithms: []string{"RS256"}}, deny)
	raw := ks.iss.Token(t, user1)
	for range 2 {
		if _, err := v.Verify(context.Background(), raw); !apierr.Is(err, apierr.TokenInvalidError) {
			t.Fatalf("wrong audience: got %v", err)
		}
	}
	if token.CachedTokens(v) != 0 {
		t.Fatal("a refused token was cached")
	}
	v = token.NewVerifier(ks.keys, token.Policy{Issuer: ks.iss.Iss, Audience: ks.iss.Aud, Algorithms: []string{"RS256"}}, deny)
	for range 3 {
		mustVerify(t, v, raw)
	}
	if n := deny.asked.Load(); n != 3 {
		t.Fatalf("denylist asked %d times for 3 requests", n)
	}
}

type countingDenylist struct{ asked atomic.Int64 }

func (d *countingDenylist) Denies(context.Context, *token.Claims) (bool, error) {
	d.asked.Add(1)
	return false, nil
}
