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
package load

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Kind is one kind of request of the mix.
type Kind string

// The kinds of request, in the order reports list them.
const (
	List   Kind = "list"
	Get    Kind = "get"
	Create Kind = "create"
	Delete Kind = "delete"
	Login  Kind = "login"
	Logout Kind = "logout"
)

// Kinds lists every kind.
var Kinds = []Kind{List, Get, Create, Delete, Login, Logout}

// Writes are the kinds that need Redis (the denylist check, the login rate limits, the logout itself):
// while Redis is away they answer 503, and the public reads do not.
var Writes = []Kind{Create, Delete, Login, Logout}

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

// Outcome is one answered (or unanswered) request.
type Outcome struct {
	Kind        Kind
	Method, URL string
	At          time.Time     // when it was sent
	Latency     time.Duration // until the answer (or the error)
	Status      int           // 0: no answer
	Code        string        // the error envelope's code, if any
	RetryAfter  string        // the Retry-After header, if any
	RequestID   string        // the X-Request-ID the run sent (services log it)
	Err         string        // the transport error, or what was wrong with the answer
}

// End is when the answer (or the error) came.
func (o Outcome) End() time.Time { return o.At.Add(o.Latency) }

// Cause names what went wrong in a word or two, for counting alike failures together: "503
// ServiceUnavailableError", "reset", "refused", "timeout", "eof", "slow", ...
func (o Outcome) Cause() string {
	if o.Status == 0 {
		e := strings.ToLower(o.Err)
		switch {
		case strings.Contains(e, "connection reset"):
			return "reset"
		case strings.Contains(e, "connection refused"):
			return "refused"
		case strings.Contains(e, "timeout"), strings.Contains(e, "deadline exceeded"):
			return "timeout"
		case strings.Contains(e, "eof"):
			return "eof"
		}
		return "error"
	}
	if o.Code != "" {
		return fmt.Sprintf("%d %s", o.Status, o.Code)
	}
	if o.Err != "" && o.Err != http.StatusText(o.Status) {
		return fmt.Sprintf("%d %s", o.Status, o.Err)
	}
	return strconv.Itoa(o.Status)
}

func (o Outcome) String() string {
	s := fmt.Sprintf("%s %s %s %s: %s after %s", o.At.UTC().Format("15:04:05.000"), o.Kind, o.Method, o.path(), o.Cause(),
		o.Latency.Round(time.Millisecond))
	if o.RetryAfter != "" {
		s += ", Retry-After " + o.RetryAfter
	}
	if o.Status == 0 && o.Err != "" {
		s += " (" + o.Err + ")"
	}
	if o.RequestID != "" {
		s += ", request " + o.RequestID
	}
	return s
}

func (o Outcome) path() string {
	if u, err := url.Parse(o.URL); err == nil {
		return u.Path
	}
	return o.URL
}

// Degradation declares outcomes that are expected, not failures: those Allow accepts, while Window (nil:
// the whole run) covers them.
type Degradation struct {
	Name   string
	Window *Window
	Allow  func(Outcome) bool
}

func (d Degradation) allows(o Outcome) bool {
	return (d.Window == nil || d.Window.Covers(o)) && d.Allow != nil && d.Allow(o)
}

// Unavailable allows the answer of a dependency being down on the given kinds: 503 with an error
// envelope and a Retry-After header.
func Unavailable(kinds ...Kind) func(Outcome) bool {
	return func(o Outcome) bool {
		return o.Status == http.StatusServiceUnavailable && o.Code != "" && o.RetryAfter != "" && slices.Contains(kinds, o.Kind)
	}
}

// RedisOutage is what clients may see while Redis is away: 503 with Retry-After on authenticated writes,
// logins and logouts; the public reads must still pass.
func RedisOutage(w *Window) Degradation {
	return Degradation{Name: "Redis outage", Window: w, Allow: Unavailable(Writes...)}
}

// MongoOutage is what clients may see while MongoDB is away: 503 with Retry-After on anything.
func MongoOutage(w *Window) Degradation {
	return Degradation{Name: "MongoDB outage", Window: w, Allow: Unavailable(Kinds...)}
}

// Window is a set of time spans a test opens and closes while the load runs (for example from the
// deletion of the Redis pod to 30 s after the new one is Ready). It is safe for concurrent use.
type Window struct {
	mu    sync.Mutex
	spans []span
}

type span struct{ from, to time.Time } // zero to: still open

// Open opens a span now (a no-op while one is open).
func (w *Window) Open() { w.OpenAt(time.Now()) }

// OpenAt opens a span at t.
func (w *Window) OpenAt(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.spans); n > 0 && w.spans[n-1].to.IsZero() {
		return
	}
	w.spans = append(w.spans, span{from: t})
}

// Close closes the open span now.
func (w *Window) Close() { w.CloseAt(time.Now()) }

// CloseAt closes the open span at t, which may be in the future ("30 s after Ready").
func (w *Window) CloseAt(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.spans); n > 0 && w.spans[n-1].to.IsZero() {
		w.spans[n-1].to = t
	}
}

// IsOpen reports whether t is inside a span.
func (w *Window) IsOpen(t time.Time) bool {
	return w.overlaps(t, t)
}

// Covers reports whether the request's life, from sending to answer, overlaps a span.
func (w *Window) Covers(o Outcome) bool { return w.overlaps(o.At, o.End()) }

func (w *Window) overlaps(from, to time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.spans {
		if !to.Before(s.from) && (s.to.IsZero() || !from.After(s.to)) {
			return true
		}
	}
	return false
}

// Counts of one kind of request.
type Counts struct {
	Sent, OK, Tolerated, Failed int
}

// Report of a run.
type Report struct {
	Start    time.Time
	Duration time.Duration
	Rate     int
	Kinds    map[Kind]*Counts
	// Failures lists the first MaxKeptFailures failures, in the order their answers came.
	Failures []Outcome
	// Causes counts every failure by its Cause.
	Causes map[string]int
	// ToleratedCauses counts the tolerated outcomes by their Cause.
	ToleratedCauses map[string]int
	// FirstTolerated and LastTolerated are when the first tolerated request was sent and when the last
	// tolerated answer came (zero: none): how long clients saw the degradation.
	FirstTolerated, LastTolerated time.Time
	MaxLatency                    time.Duration
	// Revoked are the tokens logged out during the run (logout answered 204): every later request with
	// one of them must be refused with 401.
	Revoked []string
	// Movies are the ids of the movies the run created (its seeds included) and did not delete: they must
	// all still be there.
	Movies []string
}

// MaxKeptFailures bounds Report.Failures (all failures are counted).
const MaxKeptFailures = 1000

func (r *Report) total(f func(*Counts) int) int {
	n := 0
	for _, c := range r.Kinds {
		n += f(c)
	}
	return n
}

// Sent is the number of requests sent.
func (r *Report) Sent() int { return r.total(func(c *Counts) int { return c.Sent }) }

// Failed is the number of failed requests: unexpected answers, or none, that no Degradation allowed.
func (r *Report) Failed() int { return r.total(func(c *Counts) int { return c.Failed }) }

// Tolerated is the number of requests that failed as a Degradation allowed.
func (r *Report) Tolerated() int { return r.total(func(c *Counts) int { return c.Tolerated }) }

// String is a one-line summary: totals, per kind ok/sent, failures and tolerated outcomes by cause.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests in %s at %d/s: %d ok, %d tolerated, %d failed; max latency %s;",
		r.Sent(), r.Duration.Round(time.Millisecond), r.Rate, r.Sent()-r.Failed()-r.Tolerated(), r.Tolerated(), r.Failed(),
		r.MaxLatency.Round(time.Millisecond))
	for _, k := range Kinds {
		if c := r.Kinds[k]; c != nil {
			fmt.Fprintf(&b, " %s %d/%d", k, c.OK, c.Sent)
		}
	}
	b.WriteString(" ok")
	if len(r.Causes) > 0 {
		b.WriteString("; failed: " + causes(r.Causes))
	}
	if len(r.ToleratedCauses) > 0 {
		b.WriteString("; tolerated: " + causes(r.ToleratedCauses))
	}
	return b.String()
}

func causes(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d× %s", m[k], k)
	}
	return strings.Join(parts, ", ")
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

// authMarker asks the transport to add the current token when it sends the request.
const authMarker = "X-Load-Bearer"

// transport puts the current token on the requests that need one at the moment it sends them, and counts
// them in flight until their answer, so that a token is logged out only when nothing carries it.
type transport struct {
	d    *driver
	next http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	d := t.d
	if seq := req.Header.Get("X-Vegeta-Seq"); seq != "" {
		if n, err := strconv.ParseUint(seq, 10, 64); err == nil {
			d.requestIDs.Store(n, req.Header.Get("X-Request-ID"))
		}
	}
	if req.URL.Path == "/api/auth/logout" {
		resp, err := t.next.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusNoContent {
			d.mu.Lock()
			d.revoked = append(d.revoked, strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "))
			d.mu.Unlock()
		}
		return resp, err
	}
	if req.Header.Get(authMarker) == "" {
		return t.next.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	req.Header.Del(authMarker)
	d.mu.Lock()
	tok := d.token
	d.inFlight[tok]++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if d.inFlight[tok]--; d.inFlight[tok] <= 0 {
			delete(d.inFlight, tok)
		}
		d.mu.Unlock()
	}()
	req.Header.Set("Authorization", "Bearer "+tok)
	return t.next.RoundTrip(req)
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

func (d *driver) do(ctx context.Context, method, path, token string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, d.cfg.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("X-Request-ID", fmt.Sprintf("load-%s-setup-%d", d.run, d.seq.Add(1)))
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

func (d *driver) movie(name string) []byte {
	b, _ := json.Marshal(map[string]any{
		"name":   fmt.Sprintf("load %s %s", d.run, name),
		"casts":  []string{"Ada Lovelace", "Alan Turing"},
		"genres": []string{"Drama"},
	})
	return b
}

// target builds the n-th request of the mix. Each second of requests starts with a login; the middle
// one is a logout when one is due (and its token carried by nothing in flight); of the others, in every
// twenty: 8 lists, 6 reads by id, 3 creates, 3 deletes (a create when nothing is left to delete).
func (d *driver) target(t *vegeta.Target) error {
	n := d.seq.Add(1)
	t.Header = http.Header{}
	t.Header.Set("X-Request-ID", fmt.Sprintf("load-%s-%d", d.run, n))
	slot := int(n % uint64(d.cfg.Rate))
	if slot == 0 {
		t.Method, t.URL, t.Body = http.MethodPost, d.cfg.BaseURL+"/api/auth/login", d.credentials()
		t.Header.Set("Content-Type", "application/json")
		return nil
	}
	if slot == d.cfg.Rate/2 {
		if tok := d.takeRetired(); tok != "" {
			t.Method, t.URL = http.MethodPost, d.cfg.BaseURL+"/api/auth/logout"
			t.Header.Set("Authorization", "Bearer "+tok)
			return nil
		}
	}
	switch m := n % 20; {
	case m < 8:
		t.Method, t.URL = http.MethodGet, d.cfg.BaseURL+"/api/movies"
	case m < 14:
		t.Method, t.URL = http.MethodGet, d.cfg.BaseURL+"/api/movies/"+d.seeds[int(n)%len(d.seeds)]
	default:
		t.Header.Set(authMarker, "1")
		if id := d.takeDeletable(m >= 17); id != "" {
			t.Method, t.URL = http.MethodDelete, d.cfg.BaseURL+"/api/movies/"+id
			return nil
		}
		t.Method, t.URL, t.Body = http.MethodPost, d.cfg.BaseURL+"/api/movies", d.movie(strconv.FormatUint(n, 10))
		t.Header.Set("Content-Type", "application/json")
	}
	return nil
}

func (d *driver) credentials() []byte {
	b, _ := json.Marshal(map[string]string{"email": d.cfg.Email, "password": d.cfg.Password})
	return b
}

// takeRetired returns a replaced token that no request in flight carries, to log out; "" if none.
func (d *driver) takeRetired() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, tok := range d.retired {
		if d.inFlight[tok] == 0 {
			d.retired = slices.Delete(d.retired, i, i+1)
			return tok
		}
	}
	return ""
}

func (d *driver) takeDeletable(want bool) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !want || len(d.deletable) == 0 {
		return ""
	}
	id := d.deletable[0]
	d.deletable = d.deletable[1:]
	return id
}

// loggedIn makes tok the token of the writes; every LogoutEvery the one it replaces waits for its logout.
func (d *driver) loggedIn(tok string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Since(d.lastRetired) >= d.cfg.LogoutEvery && d.token != tok {
		d.retired = append(d.retired, d.token)
		d.lastRetired = time.Now()
	}
	d.token = tok
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

func kindOf(method, path string) Kind {
	switch {
	case path == "/api/auth/login":
		return Login
	case path == "/api/auth/logout":
		return Logout
	case path == "/api/movies" && method == http.MethodGet:
		return List
	case path == "/api/movies":
		return Create
	case method == http.MethodDelete:
		return Delete
	case method == http.MethodGet:
		return Get
	}
	return Kind(method + " " + path)
}

// envelopeCode is the code of an error envelope, "" if the body is not one.
func envelopeCode(body []byte) string { return field(body, "code") }

func field(body []byte, name string) string {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}

// CheckRevoked asks both services with each token (auth: GET /api/auth/me; movies: POST /api/movies) and
// returns an error naming every answer that is not 401: after a Redis restart, the denylist must still
// refuse the tokens a run logged out (Report.Revoked).
func CheckRevoked(ctx context.Context, baseURL string, tokens []string) error {
	var errs []error
	for i, tok := range tokens {
		for _, r := range []struct{ method, path string }{{http.MethodGet, "/api/auth/me"}, {http.MethodPost, "/api/movies"}} {
			status, err := send(ctx, r.method, baseURL+r.path, tok, []byte(`{"name":"revoked","casts":[],"genres":[]}`))
			if err == nil && status != http.StatusUnauthorized {
				err = fmt.Errorf("%d, want 401", status)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("revoked token %d: %s %s: %w", i, r.method, r.path, err))
			}
		}
	}
	return errors.Join(errs...)
}

// CheckMovies reads each movie back (GET /api/movies/{id}) and returns an error naming every one that is
// not there: after a MongoDB restart, every movie a run left (Report.Movies) must still be there.
func CheckMovies(ctx context.Context, baseURL string, ids []string) error {
	var errs []error
	for _, id := range ids {
		status, err := send(ctx, http.MethodGet, baseURL+"/api/movies/"+id, "", nil)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("%d, want 200", status)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("movie %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func send(ctx context.Context, method, u, token string, body []byte) (int, error) {
	status, _, err := call(ctx, method, u, token, body)
	return status, err
}

// call sends one request (10 s at most) and returns the status and up to 1 MiB of the body.
func call(ctx context.Context, method, u, token string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// Token signs the user up (an existing one is fine) and logs in: a token of its own for a test to keep,
// apart from the run's.
func Token(ctx context.Context, baseURL, email, password string) (string, error) {
	creds, _ := json.Marshal(map[string]string{"email": email, "password": password})
	status, body, err := call(ctx, http.MethodPost, baseURL+"/api/auth/signup", "", creds)
	if err != nil {
		return "", fmt.Errorf("signup: %w", err)
	}
	if status != http.StatusOK && envelopeCode(body) != "EmailAlreadyExistsError" {
		return "", fmt.Errorf("signup: %d %s", status, body)
	}
	status, body, err = call(ctx, http.MethodPost, baseURL+"/api/auth/login", "", creds)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	if tok := field(body, "token"); status == http.StatusOK && tok != "" {
		return tok, nil
	}
	return "", fmt.Errorf("login: %d %s", status, body)
}
