package users_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/store"
	"github.com/moviebag/moviebag/libs/testkit"
	"github.com/moviebag/moviebag/services/auth/internal/users"
)

// open returns a users store on cfg's database and the metrics its failures
// are counted in.
func open(t *testing.T, cfg store.Config) (*users.Store, *metrics.Metrics) {
	t.Helper()
	client, db, err := store.OpenMongo(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	m := metrics.New(prometheus.NewRegistry(), "test")
	return users.New(db, store.NewFailures(m)), m
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The users store against a real FerretDB: what Create stores ByEmail and
// ByID find; an email is one account; a missing user is ErrNotFound.
func TestStore(t *testing.T) {
	s, m := open(t, store.Config{MongoURI: testkit.MongoURI(t), MongoDatabase: testkit.Database(t), DialTimeout: 5 * time.Second})
	c := ctx(t)
	for range 2 { // creating the index again is harmless
		if err := s.EnsureIndexes(c); err != nil {
			t.Fatal(err)
		}
	}
	hash := []byte("$2a$04$not-a-real-hash")
	before := time.Now().UTC().Truncate(time.Millisecond)
	u, err := s.Create(c, "ada@example.com", hash)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID.IsZero() || u.Email != "ada@example.com" || !bytes.Equal(u.PasswordHash, hash) || u.CreatedAt.Before(before) {
		t.Errorf("created %+v", u)
	}
	byEmail, err := s.ByEmail(c, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	byID, err := s.ByID(c, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]users.User{"ByEmail": byEmail, "ByID": byID} {
		if got.ID != u.ID || got.Email != u.Email || !bytes.Equal(got.PasswordHash, hash) || !got.CreatedAt.Equal(u.CreatedAt) {
			t.Errorf("%s found %+v, want %+v", name, got, u)
		}
	}

	if _, err := s.Create(c, "ada@example.com", []byte("other")); !apierr.Is(err, apierr.EmailAlreadyExistsError) {
		t.Errorf("second account for one email: %v, want EmailAlreadyExistsError", err)
	}
	if _, err := s.ByEmail(c, "nobody@example.com"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("unknown email: %v, want ErrNotFound", err)
	}
	if _, err := s.ByID(c, bson.NewObjectID()); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
	for _, op := range []metrics.Operation{metrics.Insert, metrics.Find} {
		if n := testutil.ToFloat64(m.DependencyErrors.WithLabelValues(string(metrics.MongoDB), string(op))); n != 0 {
			t.Errorf("%s failures counted %v: domain outcomes are not failures", op, n)
		}
	}
}

// Without a reachable MongoDB every call is ServiceUnavailableError and is
// counted under its operation.
func TestStoreUnavailable(t *testing.T) {
	s, m := open(t, store.Config{MongoURI: "mongodb://" + testkit.FreeAddr(t), MongoDatabase: "x", DialTimeout: 200 * time.Millisecond})
	c := ctx(t)
	if _, err := s.Create(c, "ada@example.com", []byte("h")); !apierr.Is(err, apierr.ServiceUnavailableError) {
		t.Errorf("Create: %v, want ServiceUnavailableError", err)
	}
	if _, err := s.ByEmail(c, "ada@example.com"); !apierr.Is(err, apierr.ServiceUnavailableError) {
		t.Errorf("ByEmail: %v, want ServiceUnavailableError", err)
	}
	if _, err := s.ByID(c, bson.NewObjectID()); !apierr.Is(err, apierr.ServiceUnavailableError) {
		t.Errorf("ByID: %v, want ServiceUnavailableError", err)
	}
	for op, want := range map[metrics.Operation]float64{metrics.Insert: 1, metrics.Find: 2} {
		if n := testutil.ToFloat64(m.DependencyErrors.WithLabelValues(string(metrics.MongoDB), string(op))); n != want {
			t.Errorf("%s failures counted %v, want %v", op, n, want)
		}
	}
}
