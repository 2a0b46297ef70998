package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/moviebag/moviebag/deploy/local/devstore"
)

// stack is everything a run started: storage, both services, the gateway
// and the two ceilings, each a process of its own, plus the seeded data.
type stack struct {
	storage                                          storageInfo
	redisURL                                         string
	auth, movies, gateway, framework, storageCeiling *proc
	authURL, moviesURL, gatewayURL                   string
	frameworkURL, storageCeilingURL                  string
	authAdminURL, moviesAdminURL                     string

	users    []string // emails
	password string
	tokens   []string
	movieIDs []string

	procs     []*proc // in start order
	stopRedis func()
	closeOnce sync.Once
}

// database is the MongoDB database the services and the storage ceiling use.
const database = "moviebag_bench"

func startEnv(ctx context.Context, st *stepper, o options, b binaries, work string) (*stack, error) {
	s := &stack{password: "bench-password-1"}
	st.step("starting storage: FerretDB (backend %s) in its own process", o.backend)
	storageProc, info, err := startStorage(work, b.storage, o.backend, o.postgres)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, storageProc)
	s.storage = info
	st.step("storage: %s", info.Note)

	redisURL, _, stopRedis, err := devstore.StartRedis(ctx, filepath.Join(work, "redis"), true, quiet())
	if err != nil {
		return s, err
	}
	s.redisURL, s.stopRedis = redisURL, stopRedis
	st.step("redis-server: %s", redisURL)

	addrs := map[string]string{}
	for _, k := range []string{"auth", "auth-admin", "movies", "movies-admin", "gateway", "framework", "storage-ceiling"} {
		if addrs[k], err = freeAddr(); err != nil {
			return s, err
		}
	}
	common := map[string]string{
		"MONGO_URI": info.MongoURI, "MONGO_DATABASE": database,
		"REDIS_URL": redisURL, "REDIS_KEY_PREFIX": "bench:",
		"LOG_LEVEL": "warn",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	s.authURL, s.moviesURL = "http://"+addrs["auth"], "http://"+addrs["movies"]
	s.gatewayURL = "http://" + addrs["gateway"]
	s.authAdminURL, s.moviesAdminURL = "http://"+addrs["auth-admin"], "http://"+addrs["movies-admin"]
	s.frameworkURL, s.storageCeilingURL = "http://"+addrs["framework"], "http://"+addrs["storage-ceiling"]

	st.step("starting auth (BCRYPT_COST=%d, login and sign-up limits raised), movies, gateway, ceilings; LOG_LEVEL=warn", o.bcryptCost)
	if s.auth, err = start(work, "auth", b.auth, nil, with(map[string]string{
		"HTTP_ADDR": addrs["auth"], "ADMIN_ADDR": addrs["auth-admin"],
		"BCRYPT_COST":        strconv.Itoa(o.bcryptCost),
		"LOGIN_LIMIT_PER_IP": "1000000000", "LOGIN_LIMIT_PER_EMAIL": "1000000000",
		"SIGNUP_LIMIT_PER_IP": "1000000000",
	})); err != nil {
		return s, err
	}
	s.procs = append(s.procs, s.auth)
	if err := s.auth.waitHTTP("http://"+addrs["auth-admin"]+"/readyz", 200, 60*time.Second); err != nil {
		return s, err
	}
	if s.movies, err = start(work, "movies", b.movies, nil, with(map[string]string{
		"HTTP_ADDR": addrs["movies"], "ADMIN_ADDR": addrs["movies-admin"],
		"JWKS_URL": s.authURL + "/.well-known/jwks.json",
	})); err != nil {
		return s, err
	}
	s.procs = append(s.procs, s.movies)
	if err := s.movies.waitHTTP("http://"+addrs["movies-admin"]+"/readyz", 200, 60*time.Second); err != nil {
		return s, err
	}
	if s.gateway, err = start(work, "gateway", b.gateway,
		[]string{"-addr", addrs["gateway"], "-auth", s.authURL, "-movies", s.moviesURL}, nil); err != nil {
		return s, err
	}
	s.procs = append(s.procs, s.gateway)
	if err := s.gateway.waitHTTP(s.gatewayURL+"/.well-known/jwks.json", 200, 30*time.Second); err != nil {
		return s, err
	}
	if s.framework, err = start(work, "ceiling-framework", b.framework, []string{"-addr", addrs["framework"]}, nil); err != nil {
		return s, err
	}
	s.procs = append(s.procs, s.framework)
	if err := s.framework.waitHTTP(s.frameworkURL+"/", 200, 30*time.Second); err != nil {
		return s, err
	}
	if s.storageCeiling, err = start(work, "ceiling-storage", b.storageCeiling,
		[]string{"-addr", addrs["storage-ceiling"], "-mongo-uri", info.MongoURI, "-database", database}, nil); err != nil {
		return s, err
	}
	s.procs = append(s.procs, s.storageCeiling)
	if err := s.storageCeiling.waitHTTP(s.storageCeilingURL+"/movies/000000000000000000000000", 404, 30*time.Second); err != nil {
		return s, err
	}

	st.step("seeding %d users (sign-up, login) and %d movies, straight to the services", o.users, o.movies)
	if err := s.seed(ctx, o); err != nil {
		return s, err
	}
	return s, nil
}

// close stops every process, the last started first, then Redis.
func (s *stack) close(st *stepper) {
	s.closeOnce.Do(func() {
		st.step("stopping the ceilings, gateway, movies, auth, storage (database dropped), redis-server")
		for i := len(s.procs) - 1; i >= 0; i-- {
			s.procs[i].stop()
		}
		if s.stopRedis != nil {
			s.stopRedis()
		}
	})
}

var seedClient = &http.Client{Timeout: 30 * time.Second}

// call sends a JSON request and decodes a 200 answer into out.
func call(ctx context.Context, method, url, token string, body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := seedClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}

func (s *stack) seed(ctx context.Context, o options) error {
	for i := range o.users {
		email := fmt.Sprintf("bench-user-%02d@example.com", i)
		var id struct{ ID string }
		if err := call(ctx, "POST", s.authURL+"/api/auth/signup", "", map[string]string{"email": email, "password": s.password}, &id); err != nil {
			return fmt.Errorf("seed users: %w", err)
		}
		var tok struct{ Token string }
		if err := call(ctx, "POST", s.authURL+"/api/auth/login", "", map[string]string{"email": email, "password": s.password}, &tok); err != nil {
			return fmt.Errorf("seed tokens: %w", err)
		}
		s.users, s.tokens = append(s.users, email), append(s.tokens, tok.Token)
	}
	ids := make([]string, o.movies)
	errc := make(chan error, 8)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < o.movies; i += 8 {
				var id struct{ ID string }
				body := map[string]any{
					"name":   fmt.Sprintf("Seed movie %04d", i),
					"casts":  []string{"Actor One", "Actor Two", "Actor Three"},
					"genres": []string{"Drama", "Crime"},
				}
				if err := call(ctx, "POST", s.moviesURL+"/api/movies", s.tokens[i%len(s.tokens)], body, &id); err != nil {
					errc <- fmt.Errorf("seed movies: %w", err)
					return
				}
				ids[i] = id.ID
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	s.movieIDs = ids
	return nil
}
