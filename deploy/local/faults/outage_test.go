package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/moviebag/moviebag/deploy/local/devstore"
	"github.com/moviebag/moviebag/deploy/local/gateway"
	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/testkit"
)

// Redis down: logins and authenticated writes answer 503 with Retry-After
// (fail closed), public reads go on, and both services recover by
// themselves when Redis is back.
func TestRedisDown(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not on PATH: run 'make deps'")
	}
	port, dir := freePort(t), t.TempDir()
	redisURL, stopRedis, err := devstore.StartRedisServer(context.Background(), bin, port, dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stopRedis() }()

	p := startPair(t, testkit.MongoURI(t), redisURL, nil, nil)
	tok := testkit.Bearer(p.user(t, "ada@example.com"))
	r := testkit.CallAPI(t, "POST", p.movies.URL+"/api/movies", `{"name":"Before","casts":["a"],"genres":["b"]}`, tok...)
	id := testkit.JSON[struct{ ID string }](t, r).ID

	stopRedis()
	creds := `{"email":"ada@example.com","password":"secret123"}`
	for _, tc := range []struct {
		name string
		do   func() testkit.Response
	}{
		{"login", func() testkit.Response { return testkit.CallAPI(t, "POST", p.auth.URL+"/api/auth/login", creds) }},
		{"logout", func() testkit.Response { return testkit.CallAPI(t, "POST", p.auth.URL+"/api/auth/logout", "", tok...) }},
		{"create", func() testkit.Response {
			return testkit.CallAPI(t, "POST", p.movies.URL+"/api/movies", `{"name":"During","casts":["a"],"genres":["b"]}`, tok...)
		}},
		{"delete", func() testkit.Response {
			return testkit.CallAPI(t, "DELETE", p.movies.URL+"/api/movies/"+id, "", tok...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := timed(t, 3*time.Second, tc.do)
			testkit.Envelope(t, r, apierr.ServiceUnavailableError)
			if r.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
	// Public reads need no Redis.
	if r := timed(t, 3*time.Second, func() testkit.Response { return testkit.CallAPI(t, "GET", p.movies.URL+"/api/movies/"+id, "") }); r.Status != 200 {
		t.Errorf("public read during the outage: %d %s", r.Status, r.Body)
	}
	if r := testkit.CallAPI(t, "GET", p.movies.URL+"/api/movies", ""); r.Status != 200 {
		t.Errorf("public list during the outage: %d %s", r.Status, r.Body)
	}

	_, stopRedis, err = devstore.StartRedisServer(context.Background(), bin, port, dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "login to work again", func() bool {
		return testkit.CallAPI(t, "POST", p.auth.URL+"/api/auth/login", creds).Status == 200
	})
	if r := testkit.CallAPI(t, "POST", p.movies.URL+"/api/movies", `{"name":"After","casts":["a"],"genres":["b"]}`, tok...); r.Status != 200 {
		t.Errorf("create after Redis came back: %d %s", r.Status, r.Body)
	}
	metrics := string(testkit.CallAPI(t, "GET", p.movies.AdminURL+"/metrics", "").Body)
	mustContain(t, []byte(metrics), `moviebag_dependency_errors_total{dependency="redis",operation="exists",service="movies"}`)
}

// MongoDB down: 503 envelopes within the timeouts, no hung requests, and
// recovery without a restart once it is back.
func TestMongoDown(t *testing.T) {
	addr, dir := testkit.FreeAddr(t), t.TempDir()
	mongoURI, stopMongo, err := devstore.StartMongoOn(context.Background(), addr, dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stopMongo() }()
	p := startPair(t, mongoURI, testkit.RedisURL(t), nil, nil)
	tok := testkit.Bearer(p.user(t, "ada@example.com"))
	r := testkit.CallAPI(t, "POST", p.movies.URL+"/api/movies", `{"name":"Kept","casts":["a"],"genres":["b"]}`, tok...)
	id := testkit.JSON[struct{ ID string }](t, r).ID

	stopMongo()
	for _, tc := range []struct {
		name string
		do   func() testkit.Response
	}{
		{"signup", func() testkit.Response {
			return testkit.CallAPI(t, "POST", p.auth.URL+"/api/auth/signup", `{"email":"bob@example.com","password":"secret123"}`)
		}},
		{"login", func() testkit.Response {
			return testkit.CallAPI(t, "POST", p.auth.URL+"/api/auth/login", `{"email":"ada@example.com","password":"secret123"}`)
		}},
		{"me", func() testkit.Response { return testkit.CallAPI(t, "GET", p.auth.URL+"/api/auth/me", "", tok...) }},
		{"list", func() testkit.Response { return testkit.CallAPI(t, "GET", p.movies.URL+"/api/movies", "") }},
		{"get", func() testkit.Response { return testkit.CallAPI(t, "GET", p.movies.URL+"/api/movies/"+id, "") }},
		{"create", func() testkit.Response {
			return testkit.CallAPI(t, "POST", p.movies.URL+"/api/movies", `{"name":"During","casts":["a"],"genres":["b"]}`, tok...)
		}},
		{"update", func() testkit.Response {
			return testkit.CallAPI(t, "PUT", p.movies.URL+"/api/movies/"+id, `{"name":"Changed"}`, tok...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := timed(t, 3*time.Second, tc.do)
			testkit.Envelope(t, r, apierr.ServiceUnavailableError)
			if r.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}

	if _, stopMongo, err = devstore.StartMongoOn(context.Background(), addr, dir, quiet); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "reads to work again", func() bool {
		return testkit.CallAPI(t, "GET", p.movies.URL+"/api/movies/"+id, "").Status == 200
	})
	if got := testkit.JSON[struct{ Name string }](t, testkit.CallAPI(t, "GET", p.movies.URL+"/api/movies/"+id, "")); got.Name != "Kept" {
		t.Errorf("after recovery: %+v", got)
	}
	p.login(t, `{"email":"ada@example.com","password":"secret123"}`)
}

// load sends requests from several workers until stop is closed and
// counts what failed.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string
	wg         sync.WaitGroup
	stop       chan struct{}
}

func startLoad(workers int, request func(worker, i int) (testkit.Response, error)) *load {
	l := &load{stop: make(chan struct{})}
	for w := range workers {
		l.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				r, err := request(w, i)
				if err == nil && r.Status >= 200 && r.Status < 300 {
					l.ok.Add(1)
					continue
				}
				l.failed.Add(1)
				l.mu.Lock()
				if len(l.failures) < 10 {
					l.failures = append(l.failures, fmt.Sprintf("%d %s %v", r.Status, r.Body, err))
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

// served waits until n more requests of the load have succeeded: the load
// is flowing, whatever the machine's speed.
func (l *load) served(t *testing.T, n int64, what string) {
	t.Helper()
	target := l.ok.Load() + n
	waitFor(t, 30*time.Second, fmt.Sprintf("%d more successful requests (%s)", n, what), func() bool { return l.ok.Load() >= target })
}

// moviesRequests is how many requests to /api/movies pr has answered, from
// its own metrics: it is non-zero once a balancer sends pr traffic.
func moviesRequests(t *testing.T, pr *proc) float64 {
	t.Helper()
	var n float64
	for series, v := range testkit.Scrape(t, pr.AdminURL+"/metrics") {
		if strings.HasPrefix(series, metrics.RequestsName+"{") && strings.Contains(series, `route="/api/movies"`) {
			n += v
		}
	}
	return n
}

func (l *load) finish(t *testing.T, minOK int64) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if l.failed.Load() > 0 || l.ok.Load() < minOK {
		t.Errorf("%d requests succeeded (want at least %d), %d failed: %v", l.ok.Load(), minOK, l.failed.Load(), l.failures)
	}
}

// A new key added to JWT_KEYS_DIR is published, becomes the signer after the
// sign delay while traffic runs, and not one request fails: movies fetches the
// new key on its unknown kid.
func TestKeyRotationUnderTraffic(t *testing.T) {
	keys := keyDir(t, "2026-01")
	p := startPair(t, testkit.MongoURI(t), testkit.RedisURL(t),
		map[string]string{"JWT_KEYS_DIR": keys, "JWT_KEYS_RELOAD_INTERVAL": "100ms", "JWT_KEYS_SIGN_DELAY": "500ms"},
		map[string]string{"JWKS_UNKNOWN_KID_INTERVAL": "1s"})
	p.user(t, "ada@example.com")
	creds := `{"email":"ada@example.com","password":"secret123"}`

	var newKID atomic.Int64
	l := startLoad(4, func(w, i int) (testkit.Response, error) {
		r, err := testkit.TryAPI("POST", p.auth.URL+"/api/auth/login", creds)
		if err != nil || r.Status != 200 {
			return r, err
		}
		var out struct{ Token string }
		if err := json.Unmarshal(r.Body, &out); err != nil {
			return r, err
		}
		tok := out.Token
		if parsed, _, err := jwt.NewParser().ParseUnverified(tok, &jwt.RegisteredClaims{}); err == nil && parsed.Header["kid"] == "2026-02" {
			newKID.Add(1)
		}
		return testkit.TryAPI("POST", p.movies.URL+"/api/movies",
			`{"name":"rot-`+strconv.Itoa(w)+`-`+strconv.Itoa(i)+`","casts":["a"],"genres":["b"]}`, testkit.Bearer(tok)...)
	})
	l.served(t, 20, "logins and creates under the first key")
	writeKey(t, keys, "2026-02")
	waitFor(t, 10*time.Second, "tokens signed by the new key", func() bool { return newKID.Load() >= 20 })
	l.finish(t, 40)
}

// SIGTERM under load: with two movies replicas behind the gateway (which,
// like a Service, follows readiness), each restarted in turn, no request
// fails: readiness drops first, in-flight requests finish.
func TestSIGTERMUnderLoad(t *testing.T) {
	p := startPair(t, testkit.MongoURI(t), testkit.RedisURL(t), nil, map[string]string{"SHUTDOWN_DRAIN_DELAY": "500ms"})
	second := startProc(t, "movies", merge(p.movies.env, map[string]string{}))
	tok := testkit.Bearer(p.user(t, "ada@example.com"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	backend := func(pr *proc) gateway.Backend {
		u := mustURL(t, pr.URL)
		return gateway.Backend{URL: u, ReadyURL: pr.AdminURL + "/readyz"}
	}
	gwLogs := &testkit.SyncBuffer{}
	gw := serve(t, gateway.NewBalanced(ctx, map[gateway.Upstream][]gateway.Backend{
		gateway.Auth:   {{URL: mustURL(t, p.auth.URL)}},
		gateway.Movies: {backend(p.movies), backend(second)},
	}, slog.New(slog.NewTextHandler(gwLogs, nil))))
	defer func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s\nreplica logs:\n%s\n%s", gwLogs, p.movies.logs, second.logs)
		}
	}()

	// A replica is in the gateway's rotation once it has answered traffic.
	inRotation := func(replica *proc) {
		t.Helper()
		waitFor(t, 30*time.Second, replica.AdminURL+" in the gateway's rotation", func() bool {
			if _, err := testkit.TryAPI("GET", gw+"/api/movies?limit=1", ""); err != nil {
				return false
			}
			return moviesRequests(t, replica) > 0
		})
	}
	inRotation(p.movies)
	inRotation(second)
	l := startLoad(4, func(w, i int) (testkit.Response, error) {
		if i%2 == 0 {
			return testkit.TryAPI("GET", gw+"/api/movies?limit=5", "")
		}
		return testkit.TryAPI("POST", gw+"/api/movies", `{"name":"sig-`+strconv.Itoa(w)+`-`+strconv.Itoa(i)+`","casts":["a"],"genres":["b"]}`, tok...)
	})
	for _, replica := range []*proc{p.movies, second} {
		l.served(t, 20, "traffic on both replicas")
		replica.term()
		l.served(t, 10, "traffic on the other replica alone")
		replica.start()
		inRotation(replica)
	}
	l.served(t, 20, "traffic after the restarts")
	l.finish(t, 50)
}
