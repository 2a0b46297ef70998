package denylist_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/denylist"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/testkit"
	"github.com/moviebag/moviebag/libs/token"
)

// claimsOf are the claims the cutoff looks at: a fresh jti, the user, iat;
// sid "s1".
func claimsOf(user string, iat time.Time) *token.Claims {
	return sessionClaims(user, "s1", iat)
}

func sessionClaims(user, sid string, iat time.Time) *token.Claims {
	return &token.Claims{
		RegisteredClaims: jwt.RegisteredClaims{ID: "jti-" + sid + iat.String(), Subject: user, IssuedAt: jwt.NewNumericDate(iat)},
		SessionID:        sid,
	}
}

func denies(t *testing.T, d *denylist.Denylist, c *token.Claims) bool {
	t.Helper()
	ok, err := d.Denies(context.Background(), c)
	if err != nil {
		t.Fatalf("Denies(%s, %s): %v", c.Subject, c.IssuedAt, err)
	}
	return ok
}

// A user's cutoff refuses, at every replica, each token of that user issued
// before it, from the mirror and from Redis alike, and nothing else: not a
// token issued at or after it, not another user's; an earlier cutoff set
// later does not move it back.
func TestRevokeUserRefusesTokensIssuedBefore(t *testing.T) {
	url, prefix := testkit.RedisURL(t), prefixFor(t)
	auth := newReplica(t, url, prefix, "auth", false)
	movies := newReplica(t, url, prefix, "movies", true)
	plain := newReplica(t, url, prefix, "plain", false) // asks Redis per lookup
	waitFor(t, 10*time.Second, "mirror in sync", movies.deny.Synced)

	const user, other = "0123456789abcdef01234567", "76543210fedcba9876543210"
	cut := time.Now().Truncate(time.Second).Add(time.Second)
	old, fresh := claimsOf(user, cut.Add(-time.Second)), claimsOf(user, cut)
	if err := auth.deny.RevokeUser(context.Background(), user, cut, time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	// An earlier cutoff, as a late replica would set, changes nothing.
	if err := auth.deny.RevokeUser(context.Background(), user, cut.Add(-time.Hour), time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "the mirror refuses the user's older token", func() bool { return denies(t, movies.deny, old) })
	for _, r := range []*replica{movies, plain} {
		if !denies(t, r.deny, old) {
			t.Errorf("%s accepts a token issued before the cutoff", r.name)
		}
		if denies(t, r.deny, fresh) {
			t.Errorf("%s refuses a token issued at the cutoff", r.name)
		}
		if denies(t, r.deny, claimsOf(other, cut.Add(-time.Second))) {
			t.Errorf("%s refuses another user's token", r.name)
		}
	}

	// A replica that starts later learns the cutoff from its resync.
	late := newReplica(t, url, prefix, "late", true)
	waitFor(t, 10*time.Second, "late mirror in sync", late.deny.Synced)
	if !denies(t, late.deny, old) || denies(t, late.deny, fresh) {
		t.Error("a mirror resynced after the cutoff does not hold it")
	}
}

// Without Redis, a cutoff can be neither set nor checked: both fail closed.
func TestRevokeUserFailsClosed(t *testing.T) {
	dead := newReplica(t, "redis://"+testkit.FreeAddr(t)+"/0", prefixFor(t), "movies", false)
	c := claimsOf("0123456789abcdef01234567", time.Now())
	if _, err := dead.deny.Denies(context.Background(), c); !apierr.Is(err, apierr.ServiceUnavailableError) {
		t.Fatalf("Denies without Redis: got %v, want ServiceUnavailableError", err)
	}
	if err := dead.deny.RevokeUser(context.Background(), c.Subject, time.Now(), time.Hour, ""); !apierr.Is(err, apierr.ServiceUnavailableError) {
		t.Fatalf("RevokeUser without Redis: got %v, want ServiceUnavailableError", err)
	}
}

// A cutoff that keeps a session (a password change ends every other one)
// refuses the other sessions' older tokens, at every replica, but not the
// kept session's, which stays refused only as far as the cutoff before it
// reached.
func TestRevokeUserKeepsOneSession(t *testing.T) {
	url, prefix := testkit.RedisURL(t), prefixFor(t)
	auth := newReplica(t, url, prefix, "auth", false)
	movies := newReplica(t, url, prefix, "movies", true)
	plain := newReplica(t, url, prefix, "plain", false)
	waitFor(t, 10*time.Second, "mirror in sync", movies.deny.Synced)

	const user = "0123456789abcdef01234567"
	first := time.Now().Truncate(time.Second).Add(time.Second)
	second := first.Add(10 * time.Second)
	if err := auth.deny.RevokeUser(context.Background(), user, first, time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	if err := auth.deny.RevokeUser(context.Background(), user, second, time.Hour, "kept"); err != nil {
		t.Fatal(err)
	}
	keptBetween := sessionClaims(user, "kept", first)                  // after the first cutoff: stays valid
	keptBefore := sessionClaims(user, "kept", first.Add(-time.Second)) // ended by the first cutoff: stays ended
	other := sessionClaims(user, "other", first)                       // ended by the second
	waitFor(t, time.Second, "the mirror refuses the other session", func() bool { return denies(t, movies.deny, other) })
	for _, r := range []*replica{movies, plain} {
		if denies(t, r.deny, keptBetween) {
			t.Errorf("%s refuses the kept session", r.name)
		}
		if !denies(t, r.deny, keptBefore) {
			t.Errorf("%s accepts a token of the kept session that an earlier cutoff refused", r.name)
		}
		if !denies(t, r.deny, other) {
			t.Errorf("%s accepts another session's token", r.name)
		}
	}
}

// A revoked session id refuses every token of the session, whatever its
// jti or iat, from the mirror and from Redis alike, on one server and on a
// cluster (where the jti's and the sid's keys are in different slots), and
// no token of another session.
func TestRevokedSessionRefusesItsTokens(t *testing.T) {
	for name, url := range map[string]string{"server": testkit.RedisURL(t), "cluster": testkit.RedisClusterURL(t)} {
		t.Run(name, func(t *testing.T) {
			prefix := prefixFor(t)
			rdb := openRedis(t, url)
			auth := denylist.New(rdb, prefix, store.NewFailures(metrics.New(prometheus.NewRegistry(), "test")))
			mirror := following(t, rdb, prefix)
			waitFor(t, 10*time.Second, "mirror in sync", mirror.Synced)
			const user = "0123456789abcdef01234567"
			now := time.Now()
			before, after := sessionClaims(user, "s1", now.Add(-time.Minute)), sessionClaims(user, "s1", now.Add(time.Minute))
			other := sessionClaims(user, "s2", now)
			if err := auth.Revoke(context.Background(), "s1", time.Hour); err != nil {
				t.Fatal(err)
			}
			waitFor(t, time.Second, "the mirror refuses the session", func() bool { return denies(t, mirror, before) })
			for name, d := range map[string]*denylist.Denylist{"from Redis": auth, "from the mirror": mirror} {
				for _, c := range []*token.Claims{before, after} {
					if !denies(t, d, c) {
						t.Errorf("%s: a token of the revoked session (jti %s) is accepted", name, c.ID)
					}
				}
				if denies(t, d, other) {
					t.Errorf("%s: a token of another session is refused", name)
				}
			}
		})
	}
}
