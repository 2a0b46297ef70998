// The driver: one run's state, its setup and the attack that sends the mix and classifies the answers.

package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// driver is the state of one run.
type driver struct {
	cfg    Config
	run    string // in the request ids and the movie names
	client *http.Client
	seq    atomic.Uint64 // requests built

	mu          sync.Mutex
	token       string         // the token writes carry now
	inFlight    map[string]int // requests carrying each token, from sending to answer
	retired     []string       // replaced tokens waiting for their logout
	lastRetired time.Time
	seeds       []string // movies read back by id, never deleted
	deletable   []string // movies created during the run, each deleted once
	revoked     []string
	requestIDs  sync.Map // vegeta's sequence number -> the X-Request-ID sent
}

func newDriver(cfg Config) *driver {
	d := &driver{cfg: cfg, run: randomHex(4), inFlight: map[string]int{}, lastRetired: time.Now()}
	d.client = &http.Client{
		Timeout: cfg.Timeout,
		Transport: &transport{d: d, next: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return d
}

func (d *driver) logf(format string, args ...any) {
	if d.cfg.Logf != nil {
		d.cfg.Logf(format, args...)
	}
}

// setup signs the user up (an existing one is fine), logs in and creates three movies to read back.
func (d *driver) setup(ctx context.Context) error {
	creds, _ := json.Marshal(map[string]string{"email": d.cfg.Email, "password": d.cfg.Password})
	status, body, err := d.do(ctx, http.MethodPost, "/api/auth/signup", "", creds)
	if err != nil {
		return err
	}
	if status != http.StatusOK && envelopeCode(body) != "EmailAlreadyExistsError" {
		return fmt.Errorf("signup: %d %s", status, body)
	}
	status, body, err = d.do(ctx, http.MethodPost, "/api/auth/login", "", creds)
	if err != nil {
		return err
	}
	tok := field(body, "token")
	if status != http.StatusOK || tok == "" {
		return fmt.Errorf("login: %d %s", status, body)
	}
	d.token = tok
	for i := range 3 {
		status, body, err := d.do(ctx, http.MethodPost, "/api/movies", tok, d.movie(fmt.Sprintf("seed %d", i)))
		if err != nil {
			return err
		}
		id := field(body, "id")
		if status != http.StatusOK || id == "" {
			return fmt.Errorf("create: %d %s", status, body)
		}
		d.seeds = append(d.seeds, id)
	}
	return nil
}

func (d *driver) attack(ctx context.Context) *Report {
	rep := &Report{Start: time.Now(), Rate: d.cfg.Rate, Kinds: map[Kind]*Counts{}, Causes: map[string]int{}, ToleratedCauses: map[string]int{}}
	for _, k := range Kinds {
		rep.Kinds[k] = &Counts{}
	}
	// Enough workers to keep the rate even if every request waited its whole timeout.
	maxWorkers := uint64(d.cfg.Rate)*uint64(d.cfg.Timeout/time.Second+1) + 10
	atk := vegeta.NewAttacker(vegeta.Client(d.client), vegeta.Workers(10), vegeta.MaxWorkers(maxWorkers), vegeta.MaxBody(64<<10))
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	logged := 0
	for res := range atk.Attack(d.target, vegeta.Rate{Freq: d.cfg.Rate, Per: time.Second}, d.cfg.Duration, "moviebag-load") {
		o := d.outcome(res)
		c := rep.Kinds[o.Kind]
		if c == nil { // a request the mix does not make: cannot happen, but count it
			c = &Counts{}
			rep.Kinds[o.Kind] = c
		}
		c.Sent++
		rep.MaxLatency = max(rep.MaxLatency, o.Latency)
		switch {
		case o.Err == "":
			c.OK++
		case d.tolerated(o):
			c.Tolerated++
			rep.ToleratedCauses[o.Cause()]++
			if rep.FirstTolerated.IsZero() || o.At.Before(rep.FirstTolerated) {
				rep.FirstTolerated = o.At
			}
			if o.End().After(rep.LastTolerated) {
				rep.LastTolerated = o.End()
			}
		default:
			c.Failed++
			rep.Causes[o.Cause()]++
			if len(rep.Failures) < MaxKeptFailures {
				rep.Failures = append(rep.Failures, o)
			}
			if logged++; logged <= d.cfg.LogLimit {
				d.logf("load: FAILED %s", o)
			} else if logged == d.cfg.LogLimit+1 {
				d.logf("load: more failures: counted, not logged")
			}
		}
	}
	rep.Duration = time.Since(rep.Start)
	d.mu.Lock()
	defer d.mu.Unlock()
	rep.Revoked = slices.Clone(d.revoked)
	rep.Movies = append(slices.Clone(d.seeds), d.deletable...)
	return rep
}

func (d *driver) tolerated(o Outcome) bool {
	for _, deg := range d.cfg.Expected {
		if deg.allows(o) {
			return true
		}
	}
	return false
}

// outcome classifies one result: Err is empty when the answer is the expected one.
func (d *driver) outcome(res *vegeta.Result) Outcome {
	o := Outcome{Method: res.Method, URL: res.URL, At: res.Timestamp, Latency: res.Latency, Status: int(res.Code)}
	if id, ok := d.requestIDs.LoadAndDelete(res.Seq); ok {
		o.RequestID, _ = id.(string)
	}
	path := o.path()
	o.Kind = kindOf(res.Method, path)
	if res.Code == 0 {
		o.Err = res.Error
		if o.Err == "" {
			o.Err = "no answer"
		}
		return o
	}
	o.RetryAfter = res.Headers.Get("Retry-After")
	want := map[Kind]int{List: 200, Get: 200, Create: 200, Delete: 204, Login: 200, Logout: 204}[o.Kind]
	if o.Status != want {
		o.Code = envelopeCode(res.Body)
		o.Err = http.StatusText(o.Status)
		if o.Err == "" {
			o.Err = "unexpected status"
		}
		return o
	}
	switch o.Kind {
	case List:
		if !bytes.HasPrefix(bytes.TrimSpace(res.Body), []byte("[")) {
			o.Err = "not a JSON array"
		}
	case Create:
		if id := field(res.Body, "id"); id == "" {
			o.Err = "no id"
		} else {
			d.mu.Lock()
			d.deletable = append(d.deletable, id)
			d.mu.Unlock()
		}
	case Login:
		if tok := field(res.Body, "token"); tok == "" {
			o.Err = "no token"
		} else {
			d.loggedIn(tok)
		}
	}
	if o.Err == "" && d.cfg.SlowAfter > 0 && o.Latency > d.cfg.SlowAfter {
		o.Err = "slow"
	}
	return o
}
