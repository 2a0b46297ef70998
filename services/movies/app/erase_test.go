package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/testkit"
	"github.com/moviebag/moviebag/libs/userevents"
	"github.com/moviebag/moviebag/services/movies/app"
)

// accountEvents appends account events as auth does, to the stream of the
// services under prefix.
func accountEvents(t *testing.T, prefix string) (*userevents.Publisher, *redis.Client) {
	t.Helper()
	rdb := redis.NewClient(mustRedisOpts(t))
	t.Cleanup(func() { _ = rdb.Close() })
	errs := store.NewFailures(metrics.New(prometheus.NewRegistry(), "test"))
	return userevents.NewPublisher(userevents.Stream(rdb, errs, prefix)), rdb
}

// gone waits until every movie of ids answers MovieNotExistsError.
func (f fixture) gone(t *testing.T, ids ...string) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, func() error {
		for _, id := range ids {
			if r := testkit.CallAPI(t, "GET", f.URL+"/api/movies/"+id, ""); r.Status != 400 {
				return fmt.Errorf("movie %s: %d %s", id, r.Status, r.Body)
			}
		}
		return nil
	})
	for _, id := range ids {
		testkit.Envelope(t, testkit.CallAPI(t, "GET", f.URL+"/api/movies/"+id, ""), apierr.MovieNotExistsError)
	}
}

func (f fixture) there(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if r := testkit.CallAPI(t, "GET", f.URL+"/api/movies/"+id, ""); r.Status != 200 {
			t.Errorf("movie %s of another user: %d %s", id, r.Status, r.Body)
		}
	}
}

// An account deleted while the movies service is down loses its movies
// once the service is back: the user.deleted event waits in the stream and
// the service catches up at start. No other user's movie goes.
func TestDeletedAccountsMoviesGoAfterDowntime(t *testing.T) {
	iss := testkit.NewIssuer(t)
	db := testkit.Database(t)
	env := map[string]string{
		"MONGO_URI": testkit.MongoURI(t), "MONGO_DATABASE": db,
		"REDIS_URL": testkit.RedisURL(t), "REDIS_KEY_PREFIX": db + ":",
		"JWKS_URL": iss.JWKSURL,
	}
	f := fixture{Service: testkit.Start(t, app.Run, env), iss: iss, prefix: db + ":"}
	heat := f.create(t, alice, `{"name":"Heat","casts":["Al Pacino"],"genres":["Crime"]}`)
	ronin := f.create(t, alice, `{"name":"Ronin","casts":["Robert De Niro"],"genres":["Action"]}`)
	alien := f.create(t, bob, `{"name":"Alien","casts":["Sigourney Weaver"],"genres":["Horror"]}`)
	if err := f.Stop(); err != nil {
		t.Fatal(err)
	}

	events, rdb := accountEvents(t, f.prefix)
	if err := events.UserDeleted(context.Background(), alice); err != nil {
		t.Fatal(err)
	}
	f.Service = testkit.Start(t, app.Run, env)
	f.gone(t, heat, ronin)
	f.there(t, alien)
	m := testkit.Scrape(t, f.AdminURL+"/metrics")
	for series, want := range map[string]float64{
		testkit.Series("moviebag_user_movies_deleted_total", "service", "movies"):              2,
		testkit.Series("moviebag_user_events_total", "outcome", "done", "service", "movies"):   1,
		testkit.Series("moviebag_user_events_total", "outcome", "retry", "service", "movies"):  0,
		testkit.Series("moviebag_user_events_total", "outcome", "failed", "service", "movies"): 0,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}
	testkit.Eventually(t, 5*time.Second, func() error {
		if n := rdb.XLen(context.Background(), userevents.Key(f.prefix)).Val(); n != 0 {
			return fmt.Errorf("%d events still in the stream once handled", n)
		}
		return nil
	})
}

// The event replayed (appended again, as a retry of a deletion that failed
// part way does) is handled again and harms nothing: the user's movies stay
// gone, no one else's go; an entry that is no event is dropped.
func TestUserDeletedEventReplayed(t *testing.T) {
	f := startMovies(t)
	heat := f.create(t, alice, `{"name":"Heat","casts":["Al Pacino"],"genres":["Crime"]}`)
	alien := f.create(t, bob, `{"name":"Alien","casts":["Sigourney Weaver"],"genres":["Horror"]}`)
	events, rdb := accountEvents(t, f.prefix)
	ctx := context.Background()
	for range 2 {
		if err := events.UserDeleted(ctx, alice); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: userevents.Key(f.prefix), Values: map[string]string{"type": "user.deleted", "user": "../etc"}}).Err(); err != nil {
		t.Fatal(err)
	}
	f.gone(t, heat)
	testkit.Eventually(t, 10*time.Second, func() error {
		m := testkit.Scrape(t, f.AdminURL+"/metrics")
		done := m[testkit.Series("moviebag_user_events_total", "outcome", "done", "service", "movies")]
		failed := m[testkit.Series("moviebag_user_events_total", "outcome", "failed", "service", "movies")]
		if done != 2 || failed != 1 {
			return fmt.Errorf("events done %v, failed %v; want 2 and 1", done, failed)
		}
		return nil
	})
	if err := events.UserDeleted(ctx, alice); err != nil { // once more, long after
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() error {
		if n := rdb.XLen(ctx, userevents.Key(f.prefix)).Val(); n != 0 {
			return fmt.Errorf("%d entries still in the stream", n)
		}
		return nil
	})
	f.there(t, alien)
	m := testkit.Scrape(t, f.AdminURL+"/metrics")
	if got := m[testkit.Series("moviebag_user_movies_deleted_total", "service", "movies")]; got != 1 {
		t.Errorf("movies deleted %v, want 1", got)
	}
}
