// Package load drives bounded, steady, mixed traffic through one base URL (the cluster's Gateway) and
// counts every answer that is not the expected one: the load under which the disruption tests of the test
// cluster (rolling upgrades, pod deletions, key rotation, Redis and MongoDB outages) prove their promises.
//
// The traffic, at a fixed rate (default 50 requests a second) for a bounded duration, through vegeta:
//
//	GET    /api/movies        public list                 200, a JSON array
//	GET    /api/movies/{id}   public read of a seed movie  200
//	POST   /api/movies        authenticated create         200 {"id": ...}
//	DELETE /api/movies/{id}   delete of a created movie    204
//	POST   /api/auth/login    once a second                200 {"token": ...}
//	POST   /api/auth/logout   every LogoutEvery            204
//
// Every login's token becomes the one the writes carry. Every LogoutEvery, the token it replaces is logged
// out once no request carrying it is in flight, so that a logout never races a write that uses the same
// token; the revoked tokens are listed in the Report (the denylist must keep refusing them).
//
// A failure is a connection error (refused, reset, EOF, timeout), a 5xx, or any status or body other than
// the expected one; each is logged with its time, status, envelope code and request id. A test declares the
// failures it expects (a Degradation: for example 503 with Retry-After on authenticated writes while Redis
// is away) and then asserts that there was no other: Report.Failed() == 0.
//
// One part a file: load.go the Config and Run, mix.go the requests a run sends, window.go the failures a
// test expects, report.go the outcomes and their counts, driver.go the run itself, client.go the HTTP side.
package load

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config of a run. Only BaseURL and Duration are required.
type Config struct {
	// BaseURL is where every request goes, such as the Gateway: http://127.0.0.1:31080.
	BaseURL string
	// Rate is the fixed number of requests a second (default 50).
	Rate int
	// Duration of the load (required; the setup before it is not counted).
	Duration time.Duration
	// Email and Password of the user the run signs up (or finds already signed up) and logs in as;
	// empty: a new user of its own.
	Email, Password string
	// Timeout of one request (default 10 s): a request still unanswered then is a failure.
	Timeout time.Duration
	// SlowAfter makes an answer that arrives later than this a failure even when it is the expected one
	// (0: no limit but Timeout). Set it to the services' REQUEST_TIMEOUT plus a margin to prove that no
	// request hangs.
	SlowAfter time.Duration
	// LogoutEvery is how often a token is logged out (default 10 s).
	LogoutEvery time.Duration
	// Expected declares failures that are not failures: an outcome one of them allows is counted as
	// tolerated.
	Expected []Degradation
	// Logf receives progress lines and one line per failure (up to LogLimit); nil: silent.
	Logf func(format string, args ...any)
	// LogLimit is how many failures are logged one by one (default 100); all are counted.
	LogLimit int
}

// Run signs up (or reuses) the user, logs in, creates a few seed movies to read back, then sends the mix
// at cfg.Rate for cfg.Duration and reports. The error is for a run that could not start (bad config, a
// setup request that failed) or was cancelled; the failures of the load itself are in the Report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	d := newDriver(cfg)
	defer d.client.CloseIdleConnections()
	if err := d.setup(ctx); err != nil {
		return nil, fmt.Errorf("load: setup: %w", err)
	}
	d.logf("load: %s at %d/s for %s, as %s", cfg.BaseURL, cfg.Rate, cfg.Duration, cfg.Email)
	rep := d.attack(ctx)
	d.logf("load: %s", rep)
	return rep, ctx.Err()
}

func (c *Config) defaults() error {
	if c.BaseURL == "" || c.Duration <= 0 {
		return errors.New("load: BaseURL and Duration are required")
	}
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
	if c.Rate <= 0 {
		c.Rate = 50
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.LogoutEvery <= 0 {
		c.LogoutEvery = 10 * time.Second
	}
	if c.LogLimit <= 0 {
		c.LogLimit = 100
	}
	if c.Email == "" {
		c.Email = "load-" + randomHex(6) + "@example.com"
	}
	if c.Password == "" {
		c.Password = "load-" + randomHex(8)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
