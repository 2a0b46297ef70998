package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// memRow is a process's resident memory after the load.
type memRow struct {
	Name      string
	Before    int64 // VmRSS after start-up and seeding, before the load
	RSS, Peak int64
	File      int64      // RssFile after the load: the executable's pages
	Runtime   runtimeMem // the Go runtime's view at the same moment (none for the gateway)
}

// wrkRow is one run of wrk, the C load generator, beside vegeta's.
type wrkRow struct {
	Path, Via string // as the vegeta rows: framework/ceiling, jwks/direct, get-movie/gateway, ...
	// OneID: a storage row (after the table's get-movie runs), every
	// request for the same movie (wrk sends one URL).
	OneID        bool
	Concurrency  int
	RPS          float64
	SocketErrors int     // connect, read, write and timeout errors wrk counted
	Ratio        float64 // to wrk's own run of the ceiling at the same concurrency; NaN for a ceiling
}

// report is what a run measured.
type report struct {
	Started time.Time
	// LoadBefore and LoadAfter are /proc/loadavg around the run: other work
	// on the machine shows there.
	LoadBefore, LoadAfter string
	CPU                   string
	Cores                 int
	GoVersion             string
	Opts                  options
	Storage               storageInfo
	Movies                int // seeded
	BcryptBound           float64
	Results               []result
	Memory                []memRow
	Wrk                   []wrkRow
	// GetMovieDirectRatio is get-movie direct's best req/s over the storage
	// ceiling's best; CreateInvalidDirectRatio create-invalid direct's over
	// the framework ceiling's; ListDirectRatio list direct's over the list
	// ceiling's.
	GetMovieDirectRatio, CreateInvalidDirectRatio, ListDirectRatio float64
	// Scaling is list and get-by-id (and their ceilings) at growing
	// collection sizes.
	Scaling []scaleRow
	// ScalingErr is why the scaling runs stopped, if they did: the table
	// above them is kept.
	ScalingErr error
}

// bcryptBound measures how many bcrypt comparisons at cost the machine does
// per second with every core busy: the most logins auth can answer.
func bcryptBound(cost int, d time.Duration) (float64, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte("bench-password-1"), cost)
	if err != nil {
		return 0, err
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range runtime.NumCPU() {
		wg.Go(func() {
			for time.Since(start) < d {
				_ = bcrypt.CompareHashAndPassword(hash, []byte("bench-password-1"))
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}

// loadavg returns the 1, 5 and 15 minute load averages.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// benchmark runs every scenario at every concurrency, in an order that keeps
// the movies collection the same size for get-movie and its ceiling: reads
// first, creates last.
func benchmark(ctx context.Context, st *stepper, o options, s *stack) (*report, error) {
	rep := &report{Started: time.Now(), LoadBefore: loadavg(), CPU: cpuModel(), Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Opts: o, Movies: len(s.movieIDs)}
	want := func(path string) bool {
		return o.only == "" || slices.Contains(strings.Split(o.only, ","), path)
	}

	var before [3]int64
	for i, p := range []*proc{s.auth, s.movies, s.gateway} {
		before[i] = p.rss().RSS
	}

	st.step("measuring the bcrypt bound: CompareHashAndPassword at cost %d on %d cores for 3s", o.bcryptCost, rep.Cores)
	bound, err := bcryptBound(o.bcryptCost, 3*time.Second)
	if err != nil {
		return nil, err
	}
	rep.BcryptBound = bound
	st.step("bcrypt bound: %.1f logins/s", bound)

	ids := s.movieIDs
	movieAt := func(i uint64) string { return ids[(i*7919)%uint64(len(ids))] }
	token := func(i uint64) string { return s.tokens[i%uint64(len(s.tokens))] }
	invalid := []byte(`{"name":" ","casts":[],"genres":["Drama"]}`)
	var attackNo atomic.Int64
	bases := map[string]base{
		"direct":  {s.authURL, s.moviesURL},
		"gateway": {s.gatewayURL, s.gatewayURL},
	}
	scenarios := func(path, via string) scenario {
		b := bases[via]
		switch path {
		case "framework":
			return scenario{Path: path, Via: "ceiling", Want: 200, next: get(func(uint64) string { return s.frameworkURL + "/api/anything" })}
		case "storage":
			return scenario{Path: path, Via: "ceiling", Want: 200, next: get(func(i uint64) string { return s.storageCeilingURL + "/movies/" + movieAt(i) })}
		case "get-movie":
			return scenario{Path: path, Via: via, Want: 200, Ceiling: "storage", next: get(func(i uint64) string { return b.movies + "/api/movies/" + movieAt(i) })}
		case "list-ceiling":
			return scenario{Path: path, Via: "ceiling", Want: 200, next: get(func(uint64) string { return s.storageCeilingURL + "/movies?limit=20" })}
		case "list":
			return scenario{Path: path, Via: via, Want: 200, Ceiling: "list-ceiling", next: get(func(uint64) string { return b.movies + "/api/movies?limit=20" })}
		case "jwks":
			return scenario{Path: path, Via: via, Want: 200, Ceiling: "framework", next: get(func(uint64) string { return b.auth + "/.well-known/jwks.json" })}
		case "not-found":
			return scenario{Path: path, Via: via, Want: 404, Ceiling: "framework", next: get(func(i uint64) string { return b.movies + "/api/movies/" + movieAt(i) + "/unknown" })}
		case "create-invalid":
			return scenario{Path: path, Via: via, Want: 400, Ceiling: "framework",
				next: post(b.movies+"/api/movies", token, func(uint64) []byte { return invalid })}
		case "login":
			return scenario{Path: path, Via: via, Want: 200, Ceiling: "bcrypt", Sheds: true,
				next: post(b.auth+"/api/auth/login", nil, func(i uint64) []byte {
					return fmt.Appendf(nil, `{"email":%q,"password":%q}`, s.users[i%uint64(len(s.users))], s.password)
				})}
		case "create":
			run := attackNo.Add(1)
			return scenario{Path: path, Via: via, Want: 200, Ceiling: "storage",
				next: post(b.movies+"/api/movies", token, func(i uint64) []byte {
					return fmt.Appendf(nil, `{"name":"Bench movie %d-%d","casts":["Actor One","Actor Two"],"genres":["Drama"]}`, run, i)
				})}
		}
		panic("unknown path " + path)
	}

	wrkBin, wrkScript, cleanup := wrkSetup(st, o, s)
	defer cleanup()
	steps := plan(o.concurrency, want)
	for i, p := range steps {
		if ctx.Err() != nil {
			break
		}
		warmup := o.warmup
		if p.path == "login" {
			// A closed loop of c logins takes about c/bound to fill; let
			// it before counting.
			warmup = max(warmup, time.Duration(1.5*float64(p.c)/rep.BcryptBound*float64(time.Second)))
		}
		r := attack(scenarios(p.path, p.via), p.c, warmup, o.duration)
		st.step("run %2d/%d  %-15s %-8s c=%-4d %9.1f req/s  p50 %7.2f ms  p99 %8.2f ms  errors %d  shed %d  VmRSS auth %s movies %s",
			i+1, len(steps), p.path, p.via, p.c, r.RPS, ms(r.P50), ms(r.P99), r.Errors, r.Shed, mib(s.auth.rss().RSS), mib(s.movies.rss().RSS))
		if r.FirstError != "" {
			st.step("          first unexpected answer: %s", r.FirstError)
		}
		rep.Results = append(rep.Results, r)
		if o.wrk && wrkBin != "" {
			// wrk beside vegeta: the same target at the same concurrency,
			// right after it.
			if url, script, ok := wrkTarget(p.path, p.via, s, bases, wrkScript); ok {
				rep.Wrk = append(rep.Wrk, runWrk(ctx, st, wrkBin, wrkRow{Path: p.path, Via: p.via, Concurrency: p.c}, url, script, o.duration))
			}
		}
		// While the movies collection still has its seeded size.
		if p.thenWrk && want("get-movie") && wrkBin != "" {
			rep.Wrk = append(rep.Wrk, wrkOneID(ctx, st, o, s, bases, wrkBin)...)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Resident memory after the load of the table, before the scaling runs
	// grow the collection.
	var mem []memRow
	for i, p := range []*proc{s.auth, s.movies, s.gateway} {
		r, err := rss(p.cmd.Process.Pid)
		if err != nil {
			return nil, fmt.Errorf("resident memory of %s: %w", p.name, err)
		}
		row := memRow{Name: p.name, Before: before[i], RSS: r.RSS, Peak: r.Peak, File: r.File}
		if admin := [...]string{s.authAdminURL, s.moviesAdminURL, ""}[i]; admin != "" {
			row.Runtime = scrape(admin)
		}
		mem = append(mem, row)
	}
	if len(o.scale) > 0 && (want("list") || want("get-movie")) {
		rows, err := scaling(ctx, st, o, s)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			st.step("%v: the table is written without the rest of the scaling runs", err)
			rep.ScalingErr = err
		}
		rep.Scaling = rows
	}
	rep.Memory = mem
	st.step("resident memory after the load: auth %s, movies %s (VmRSS)", mib(rep.Memory[0].RSS), mib(rep.Memory[1].RSS))

	rep.LoadAfter = loadavg()
	rep.ratios()
	return rep, nil
}

// base is where a path's requests go: straight to each service, or both
// through the gateway.
type base struct{ auth, movies string }

// step is one run of the plan: a path, how it is reached (direct, gateway or
// ceiling), at one concurrency.
type step struct {
	path, via string
	c         int
	// thenWrk: wrk's one-id get-movie runs after this step, the last read
	// of the seeded collection.
	thenWrk bool
}

// plan lists the runs of the paths want selects, in order: the storage-free
// paths, then each storage run next to its ceiling at the same concurrency
// (get-movie, then the list), then login, and create last, so that the
// movies collection keeps its seeded size for every read.
func plan(concurrency []int, want func(path string) bool) []step {
	var steps []step
	each := func(path string, vias ...string) {
		if !want(path) {
			return
		}
		for _, via := range vias {
			for _, c := range concurrency {
				steps = append(steps, step{path: path, via: via, c: c})
			}
		}
	}
	each("framework", "ceiling")
	each("jwks", "direct", "gateway")
	each("not-found", "direct", "gateway")
	each("create-invalid", "direct", "gateway")
	for _, c := range concurrency {
		if want("storage") {
			steps = append(steps, step{path: "storage", via: "ceiling", c: c})
		}
		if want("get-movie") {
			steps = append(steps, step{path: "get-movie", via: "direct", c: c}, step{path: "get-movie", via: "gateway", c: c})
		}
	}
	if len(steps) > 0 {
		steps[len(steps)-1].thenWrk = true
	}
	if want("list") { // the list ceiling goes with the list
		for _, c := range concurrency {
			steps = append(steps, step{path: "list-ceiling", via: "ceiling", c: c},
				step{path: "list", via: "direct", c: c}, step{path: "list", via: "gateway", c: c})
		}
	}
	each("login", "direct", "gateway")
	each("create", "direct", "gateway")
	return steps
}

// ratios sets each result's ratio to its ceiling at the same concurrency
// and the get-movie summary ratio (best over best).
func (r *report) ratios() {
	ceil := map[string]map[int]float64{"framework": {}, "storage": {}, "list-ceiling": {}}
	for _, res := range r.Results {
		if res.Via == "ceiling" {
			ceil[res.Path][res.Concurrency] = res.RPS
		}
	}
	for i := range r.Results {
		res := &r.Results[i]
		switch res.Ceiling {
		case "bcrypt":
			res.Ratio = res.RPS / r.BcryptBound
		case "framework", "storage", "list-ceiling":
			if c, ok := ceil[res.Ceiling][res.Concurrency]; ok && c > 0 {
				res.Ratio = res.RPS / c
			}
		}
	}
	wrkCeil := map[bool]map[int]float64{false: {}, true: {}} // framework by concurrency; storage (one id) by concurrency
	for _, w := range r.Wrk {
		if w.Via == "ceiling" {
			wrkCeil[w.OneID][w.Concurrency] = w.RPS
		}
	}
	for i := range r.Wrk {
		w := &r.Wrk[i]
		w.Ratio = math.NaN()
		if c, ok := wrkCeil[w.OneID][w.Concurrency]; ok && c > 0 && w.Via != "ceiling" {
			w.Ratio = w.RPS / c
		}
	}
	if c := r.best("storage", "ceiling"); c > 0 {
		r.GetMovieDirectRatio = r.best("get-movie", "direct") / c
	}
	if c := r.best("framework", "ceiling"); c > 0 {
		r.CreateInvalidDirectRatio = r.best("create-invalid", "direct") / c
	}
	if c := r.best("list-ceiling", "ceiling"); c > 0 {
		r.ListDirectRatio = r.best("list", "direct") / c
	}
}

// best is the highest req/s of path via any concurrency.
func (r *report) best(path, via string) float64 {
	b := 0.0
	for _, res := range r.Results {
		if res.Path == path && res.Via == via && res.RPS > b {
			b = res.RPS
		}
	}
	return b
}

// wrkSetup finds wrk and writes the Lua script of create-invalid's POST;
// no wrk, no wrk runs (said once).
func wrkSetup(st *stepper, o options, s *stack) (bin, script string, cleanup func()) {
	cleanup = func() {}
	if !o.wrk {
		return "", "", cleanup
	}
	bin, err := exec.LookPath("wrk")
	if err != nil {
		st.step("wrk is not installed: vegeta's figures only (make deps-bench installs it)")
		return "", "", cleanup
	}
	script = filepath.Join(os.TempDir(), fmt.Sprintf("moviebag-bench-%d.lua", os.Getpid()))
	lua := fmt.Sprintf("wrk.method = \"POST\"\nwrk.body = '{\"name\":\" \",\"casts\":[],\"genres\":[\"Drama\"]}'\n"+
		"wrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = \"Bearer %s\"\n", s.tokens[0])
	if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
		st.step("wrk script: %v: vegeta's figures only", err)
		return "", "", cleanup
	}
	return bin, script, func() { _ = os.Remove(script) }
}

// wrkTarget is the URL (and script) wrk loads for a storage-free path: the
// framework ceiling, jwks, not-found and create-invalid; ok is false for
// the others. not-found asks for one id's unknown sub-path (vegeta's
// requests vary the id: the answer is the same 404).
func wrkTarget(path, via string, s *stack, bases map[string]base, script string) (url, scr string, ok bool) {
	b := bases[via]
	mid := s.movieIDs[len(s.movieIDs)/2]
	switch path {
	case "framework":
		return s.frameworkURL + "/api/anything", "", true
	case "jwks":
		return b.auth + "/.well-known/jwks.json", "", true
	case "not-found":
		return b.movies + "/api/movies/" + mid + "/unknown", "", true
	case "create-invalid":
		return b.movies + "/api/movies", script, true
	}
	return "", "", false
}

// wrkOneID measures get-movie with wrk at the middle concurrency, one movie
// for every request (wrk sends one URL): its storage ceiling, direct and
// through the gateway, while the collection has its seeded size.
func wrkOneID(ctx context.Context, st *stepper, o options, s *stack, bases map[string]base, bin string) []wrkRow {
	c := o.concurrency[len(o.concurrency)/2]
	mid := s.movieIDs[len(s.movieIDs)/2]
	var rows []wrkRow
	for _, w := range []struct{ via, url string }{
		{"ceiling", s.storageCeilingURL + "/movies/" + mid},
		{"direct", bases["direct"].movies + "/api/movies/" + mid},
		{"gateway", bases["gateway"].movies + "/api/movies/" + mid},
	} {
		path := "get-movie"
		if w.via == "ceiling" {
			path = "storage"
		}
		rows = append(rows, runWrk(ctx, st, bin, wrkRow{Path: path, Via: w.via, OneID: true, Concurrency: c}, w.url, "", o.duration))
	}
	return rows
}

// runWrk runs wrk for d and fills in row's req/s and socket errors.
func runWrk(ctx context.Context, st *stepper, bin string, row wrkRow, url, script string, d time.Duration) wrkRow {
	row.Ratio = math.NaN()
	rps, errs, err := wrk(ctx, bin, url, script, row.Concurrency, d)
	if err != nil {
		st.step("wrk %s %s c=%d: %v", row.Path, row.Via, row.Concurrency, err)
		return row
	}
	row.RPS, row.SocketErrors = rps, errs
	oneID := ""
	if row.OneID {
		oneID = " (one id)"
	}
	st.step("wrk     %-15s %-8s c=%-4d %9.1f req/s  socket errors %d%s", row.Path, row.Via, row.Concurrency, rps, errs, oneID)
	return row
}

var (
	wrkRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkSocket = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// wrk runs wrk against url with c connections for d and returns its
// requests per second and its socket errors. Its threads: one per core, at
// most c.
func wrk(ctx context.Context, bin, url, script string, c int, d time.Duration) (float64, int, error) {
	threads := min(runtime.NumCPU(), c)
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(c), "-d", fmt.Sprintf("%ds", max(1, int(d.Seconds())))}
	if script != "" {
		args = append(args, "-s", script)
	}
	out, err := exec.CommandContext(ctx, bin, append(args, url)...).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %s", err, out)
	}
	return parseWrk(out)
}

// parseWrk reads wrk's requests per second and socket errors from its output.
func parseWrk(out []byte) (float64, int, error) {
	m := wrkRPS.FindSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("no Requests/sec in %s", out)
	}
	rps, err := strconv.ParseFloat(string(m[1]), 64)
	errs := 0
	if m := wrkSocket.FindSubmatch(out); m != nil {
		for _, n := range m[1:] {
			k, _ := strconv.Atoi(string(n))
			errs += k
		}
	}
	return rps, errs, err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func ratioString(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f", r)
}
