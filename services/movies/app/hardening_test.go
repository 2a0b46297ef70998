package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/denylist"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/testkit"
)

// Runs of white space inside a name are one space in its key: "Heat  2"
// and "Heat 2" are one movie. Look-alikes from other scripts or widths
// (fullwidth letters, a Cyrillic "е") stay distinct names.
func TestNameKeyCollapsesInnerWhiteSpace(t *testing.T) {
	f := startMovies(t)
	asBob := testkit.Bearer(f.iss.Token(t, bob))
	f.create(t, alice, `{"name":"Heat  2","casts":["a"],"genres":["b"]}`)
	for _, name := range []string{`Heat 2`, `heat   2`, `Heat\u00a02`, `Heat \u3000 2`, `Heat\u2003\u20032`} {
		t.Run(name, func(t *testing.T) {
			testkit.Envelope(t, testkit.CallAPI(t, "POST", f.URL+"/api/movies", `{"name":"`+name+`","casts":["x"],"genres":["y"]}`, asBob...),
				apierr.MovieAlreadyExistsError)
		})
	}
	f.create(t, bob, `{"name":"\uff28\uff45\uff41\uff54 2","casts":["a"],"genres":["b"]}`) // fullwidth
	f.create(t, bob, `{"name":"H\u0435at 2","casts":["a"],"genres":["b"]}`)                // Cyrillic е
}

// Only a sub of the form auth issues (24 lower-case hex digits, a user id)
// is accepted: anything else is TokenInvalidError, so added_by always is a
// user id and one user has one owner id.
func TestOnlyUserIDSubjectsAccepted(t *testing.T) {
	f := startMovies(t)
	body := `{"name":"X","casts":["a"],"genres":["b"]}`
	for _, sub := range []string{"admin", strings.ToUpper(alice), "6B06f1ebcf512d8be09e8da8", alice + "0", alice[:23], " " + alice, "000000000000000000000000x"} {
		t.Run(sub, func(t *testing.T) {
			testkit.Envelope(t, testkit.CallAPI(t, "POST", f.URL+"/api/movies", body, testkit.Bearer(f.iss.Token(t, sub))...),
				apierr.TokenInvalidError)
		})
	}
	id := f.create(t, alice, body)
	if got := testkit.JSON[movie](t, testkit.CallAPI(t, "GET", f.URL+"/api/movies/"+id, "")); got.AddedBy != alice {
		t.Errorf("added_by %q, want %q", got.AddedBy, alice)
	}
}

// A request with two Authorization headers is refused, whatever they hold:
// the first must not silently win over one an intermediary added.
func TestTwoAuthorizationHeadersRefused(t *testing.T) {
	f := startMovies(t)
	good := "Bearer " + f.iss.Token(t, alice)
	for name, values := range map[string][]string{
		"same token twice": {good, good},
		"token and other":  {good, "Basic dXNlcjpwYXNz"},
		"other and token":  {"Bearer x", good},
	} {
		t.Run(name, func(t *testing.T) {
			req := testkit.NewRequest(t, "POST", f.URL+"/api/movies", `{"name":"`+name+`","casts":["a"],"genres":["b"]}`,
				"Authorization", values[0], "Authorization", values[1])
			testkit.Envelope(t, testkit.CallAPIRequest(t, req), apierr.TokenInvalidError)
		})
	}
}

// An unknown method on a path the API does not have is 404 NotFoundError,
// as at the gateway; on a path it has, 405 with Allow; and every 405 names
// the allowed methods.
func TestUnknownMethodOnUnknownPathNotFound(t *testing.T) {
	f := startMovies(t)
	for _, method := range []string{"FOO", "PROPFIND", "PATCH", "POST"} {
		t.Run(method, func(t *testing.T) {
			testkit.Envelope(t, testkit.CallAPI(t, method, f.URL+"/api/nothing-here", ""), apierr.NotFoundError)
			testkit.Envelope(t, testkit.CallAPI(t, method, f.URL+"/", ""), apierr.NotFoundError)
		})
	}
	for path, allow := range map[string]string{"/api/movies": "GET, HEAD, POST", "/api/movies/" + alice: "GET, HEAD, PUT, DELETE"} {
		for _, method := range []string{"FOO", "PATCH"} {
			r := testkit.CallAPI(t, method, f.URL+path, "")
			testkit.Envelope(t, r, apierr.MethodNotAllowedError)
			if got := r.Header.Get("Allow"); got != allow {
				t.Errorf("%s %s: Allow %q, want %q", method, path, got, allow)
			}
		}
	}
}

// A token logged out 8 s past its exp, inside the 30 s leeway verifiers
// allow, is refused from then on: auth's denylist entry (written as its
// logout writes it) lives until exp + leeway.
func TestLogoutInsideExpiryLeewayRefused(t *testing.T) {
	f := startMovies(t)
	claims := f.iss.Claims(alice)
	claims.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-8 * time.Second))
	tok := f.iss.Sign(t, claims)
	body := `{"name":"Late","casts":["a"],"genres":["b"]}`
	if r := testkit.CallAPI(t, "POST", f.URL+"/api/movies", body, testkit.Bearer(tok)...); r.Status != 200 {
		t.Fatalf("a token 8 s past exp, inside the leeway: %d %s, want it accepted", r.Status, r.Body)
	}
	rdb := redis.NewClient(mustRedisOpts(t))
	defer func() { _ = rdb.Close() }()
	deny := denylist.New(rdb, f.prefix, store.NewFailures(metrics.New(prometheus.NewRegistry(), "test")))
	if err := deny.Revoke(context.Background(), claims.ID, time.Until(claims.ExpiresAt.Time)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, time.Second, func() error {
		r := testkit.CallAPI(t, "PUT", f.URL+"/api/movies/"+alice, `{"genres":["c"]}`, testkit.Bearer(tok)...)
		if env := testkit.JSON[apierr.Envelope](t, r); env.Code != apierr.TokenRevokedError {
			return fmt.Errorf("a logged-out token in the leeway gets %d %s", r.Status, r.Body)
		}
		return nil
	})
}
