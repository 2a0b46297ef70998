package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// The targets a run is judged against (docs/benchmarks.md reports them):
// how much of what it cannot beat a path keeps (bare Fiber, or bare Fiber
// making the same storage call), login against the bcrypt bound, and each
// service's resident memory. The storage-free paths and the gateway's are
// issue 24's: by vegeta and by wrk.
const (
	getMovieDirectTarget  = 0.8
	getMovieGatewayTarget = 0.8
	listDirectTarget      = 0.8
	storageFreeTarget     = 0.8
	loginTarget           = 0.9
	loginP99Target        = time.Second
	rssTarget             = 40 << 20
)

// target is one of the targets and whether the run met it.
type target struct {
	What, Want, Got string
	Met             bool
}

// targets evaluates the run against the targets. Ratios are best req/s over the
// ceiling's best, the concurrency of each chosen by itself.
func (r *report) targets() []target {
	var ts []target
	ratioTarget := func(what, path, via, ceilPath string, ceilBest float64, want float64) {
		b := r.best(path, via)
		if b == 0 || ceilBest == 0 {
			return
		}
		got := b / ceilBest
		ts = append(ts, target{What: what, Want: fmt.Sprintf("≥ %.2f of the %s ceiling", want, ceilPath),
			Got: fmt.Sprintf("%.2f (%.0f / %.0f req/s)", got, b, ceilBest), Met: got >= want})
	}
	storageBest, frameworkBest := r.best("storage", "ceiling"), r.best("framework", "ceiling")
	ratioTarget("get-movie direct", "get-movie", "direct", "storage", storageBest, getMovieDirectTarget)
	ratioTarget("get-movie through the gateway", "get-movie", "gateway", "storage", storageBest, getMovieGatewayTarget)
	ratioTarget("list direct", "list", "direct", "list", r.best("list-ceiling", "ceiling"), listDirectTarget)
	for _, p := range []string{"jwks", "not-found", "create-invalid"} {
		ratioTarget(p+" direct", p, "direct", "framework", frameworkBest, storageFreeTarget)
	}
	wrkTarget := func(what, path, via, ceilPath string, oneID bool, want float64) {
		b, c := r.bestWrk(path, via, oneID), r.bestWrk(ceilPath, "ceiling", oneID)
		if b == 0 || c == 0 {
			return
		}
		got := b / c
		ts = append(ts, target{What: what + " by wrk", Want: fmt.Sprintf("≥ %.2f of the %s ceiling by wrk", want, ceilPath),
			Got: fmt.Sprintf("%.2f (%.0f / %.0f req/s)", got, b, c), Met: got >= want})
	}
	for _, p := range []string{"jwks", "not-found", "create-invalid"} {
		wrkTarget(p+" direct", p, "direct", "framework", false, storageFreeTarget)
	}
	wrkTarget("get-movie through the gateway (one id)", "get-movie", "gateway", "storage", true, getMovieGatewayTarget)
	if b := r.best("login", "direct"); b > 0 {
		got := b / r.BcryptBound
		ts = append(ts, target{What: "login direct", Want: "within 10% of the bcrypt bound",
			Got: fmt.Sprintf("%.2f (%.1f / %.1f logins/s)", got, b, r.BcryptBound), Met: got >= loginTarget})
	}
	for _, res := range r.Results {
		if res.Path == "login" && res.Via == "direct" && res.Concurrency == slices.Max(r.Opts.concurrency) {
			ts = append(ts, target{What: fmt.Sprintf("login direct p99 at c=%d", res.Concurrency), Want: "< 1 s (answered logins)",
				Got: fmt.Sprintf("%.0f ms (%d shed)", ms(res.P99), res.Shed), Met: res.P99 < loginP99Target})
		}
	}
	errs := 0
	for _, res := range r.Results {
		errs += res.Errors
	}
	ts = append(ts, target{What: "errors", Want: "none", Got: fmt.Sprint(errs), Met: errs == 0})
	if len(r.Wrk) > 0 {
		sock := 0
		for _, w := range r.Wrk {
			sock += w.SocketErrors
		}
		ts = append(ts, target{What: "wrk socket errors", Want: "none", Got: fmt.Sprint(sock), Met: sock == 0})
	}
	for _, m := range r.Memory[:2] {
		ts = append(ts, target{What: m.Name + " resident memory after the load", Want: "< 40 MiB",
			Got: mib(m.RSS), Met: m.RSS < rssTarget})
	}
	return ts
}

// markdown renders the run: machine, setup, the table, memory, targets.
func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# moviebag benchmark, %s\n\n", r.Started.Format("2006-01-02 15:04 MST"))
	p("- machine: %d cores, %s; %s\n", r.Cores, r.CPU, r.GoVersion)
	p("- load average (1, 5, 15 min) before the load: %s; after: %s\n", r.LoadBefore, r.LoadAfter)
	p("- storage: %s; redis-server on loopback\n", r.Storage.Note)
	p("- data: %d users, %d movies seeded before the load (FerretDB v1 answers a FindOne by _id with a scan, so "+
		"the collection is kept small; create runs last and adds its movies after every read was measured)\n", r.Opts.users, r.Movies)
	p("- load: vegeta (closed loop: c workers, each sends when its previous answer arrives), %s per run after a %s warm-up, "+
		"concurrency %s; login's clients are the same closed loop, each of them waiting the Retry-After of a quick 503 "+
		"before its next request, as a client of the API should; load generator, services, gateway and storage share the same %d cores\n",
		r.Opts.duration, r.Opts.warmup, joinInts(r.Opts.concurrency), r.Cores)
	p("- services: release builds (-trimpath -tags %s -ldflags \"-s -w\"), separate processes, LOG_LEVEL=warn, BCRYPT_COST=%d, login limits raised; "+
		"Go runtime settings from the environment: %s\n", releaseTags, r.Opts.bcryptCost, runtimeSettings())
	p("- ratio: req/s over the ceiling's req/s at the same concurrency (framework: bare Fiber, fixed JSON; storage: bare Fiber, "+
		"one FindOne by _id; list-ceiling: bare Fiber, the list route's Find (same filter, sort, limit, fields); bcrypt: "+
		"CompareHashAndPassword at cost %d on every core = %.1f/s). create has no ceiling of its own: its ratio to the storage "+
		"ceiling is shown for scale only\n\n", r.Opts.bcryptCost, r.BcryptBound)

	p("req/s, p50 and p99 are of the answered requests; shed: quick 503s with Retry-After (under %s), the designed "+
		"answer of a login the service could not hash in time, counted apart from errors.\n\n", shedWithin)
	p("| path | via | conc | req/s | p50 ms | p99 ms | errors | shed (p99 ms) | ceiling | ratio |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---|---:|\n")
	for _, res := range r.Results {
		ceil := res.Ceiling
		if ceil == "" {
			ceil = "–"
		}
		shedCell := "–"
		if res.Sheds {
			shedCell = fmt.Sprintf("%d (%.2f)", res.Shed, ms(res.ShedP99))
		}
		p("| %s | %s | %d | %.1f | %.2f | %.2f | %d | %s | %s | %s |\n", res.Path, res.Via, res.Concurrency, res.RPS,
			ms(res.P50), ms(res.P99), res.Errors, shedCell, ceil, ratioString(res.Ratio))
	}
	p("\n| process | VmRSS before the load (seeded) | VmRSS after the load | of which the executable's pages (RssFile) | VmHWM (peak) |\n|---|---:|---:|---:|---:|\n")
	for _, m := range r.Memory {
		p("| %s | %s | %s | %s | %s |\n", m.Name, mib(m.Before), mib(m.RSS), mib(m.File), mib(m.Peak))
	}
	p("\nThe Go runtime's view at the same moment (/metrics): what the resident memory is made of.\n\n" +
		"| process | heap in use | heap free, not yet returned | stacks | all the runtime holds (sys) | goroutines |\n|---|---:|---:|---:|---:|---:|\n")
	for _, m := range r.Memory {
		if m.Runtime.Sys == 0 {
			continue
		}
		rt := m.Runtime
		p("| %s | %s | %s | %s | %s | %.0f |\n", m.Name, mib(int64(rt.HeapInuse)), mib(int64(rt.HeapRetained)),
			mib(int64(rt.Stacks)), mib(int64(rt.Sys)), rt.Goroutines)
	}
	if len(r.Wrk) > 0 {
		p("\nwrk beside vegeta: each storage-free run again with wrk (one thread per core, c connections, %s) right "+
			"after vegeta's run of the same path at the same concurrency; each ratio is to its own tool's run of the framework "+
			"ceiling at that concurrency. wrk counts no statuses: vegeta's run checked them.\n\n"+
			"| path | via | conc | vegeta req/s | vegeta ratio | wrk req/s | wrk ratio | wrk socket errors |\n"+
			"|---|---|---:|---:|---:|---:|---:|---:|\n", r.Opts.duration)
		for _, w := range r.Wrk {
			if w.OneID {
				continue
			}
			vRPS, vRatio := math.NaN(), math.NaN()
			for _, res := range r.Results {
				if res.Path == w.Path && res.Via == w.Via && res.Concurrency == w.Concurrency {
					vRPS, vRatio = res.RPS, res.Ratio
				}
			}
			p("| %s | %s | %d | %.1f | %s | %.1f | %s | %d |\n", w.Path, w.Via, w.Concurrency, vRPS, ratioString(vRatio),
				w.RPS, ratioString(w.Ratio), w.SocketErrors)
		}
		p("\nget-movie by wrk, every request for the same movie (wrk sends one URL), right after the table's get-movie " +
			"runs; ratio to wrk's run of the storage ceiling on that movie:\n\n" +
			"| path | via | conc | req/s | ratio | socket errors |\n|---|---|---:|---:|---:|---:|\n")
		for _, w := range r.Wrk {
			if w.OneID {
				p("| %s | %s | %d | %.1f | %s | %d |\n", w.Path, w.Via, w.Concurrency, w.RPS, ratioString(w.Ratio), w.SocketErrors)
			}
		}
	}
	if r.ScalingErr != nil {
		p("\nScaling stopped: %v\n", r.ScalingErr)
	}
	if len(r.Scaling) > 0 {
		p("\nScaling (c=%d, %s per run, the collection emptied and filled straight through the driver; plot in the .svg "+
			"next to this file):\n\n| movies | storage ceiling (get by id) | get-movie direct | list ceiling | list direct | list / get-movie |\n"+
			"|---:|---:|---:|---:|---:|---:|\n", r.Scaling[0].Concurrency, r.Opts.duration)
		by := map[int]map[string]float64{}
		var sizes []int
		for _, row := range r.Scaling {
			if by[row.Movies] == nil {
				by[row.Movies] = map[string]float64{}
				sizes = append(sizes, row.Movies)
			}
			by[row.Movies][row.Path] = row.RPS
		}
		for _, n := range sizes {
			m := by[n]
			ratio := math.NaN()
			if m["get-movie"] > 0 {
				ratio = m["list"] / m["get-movie"]
			}
			p("| %d | %.1f | %.1f | %.1f | %.1f | %s |\n", n, m["storage"], m["get-movie"], m["list-ceiling"], m["list"], ratioString(ratio))
		}
	}
	p("\n| target | wanted | got | met |\n|---|---|---|---|\n")
	for _, t := range r.targets() {
		met := "yes"
		if !t.Met {
			met = "**no**"
		}
		p("| %s | %s | %s | %s |\n", t.What, t.Want, t.Got, met)
	}
	for _, f := range []*float64{&r.GetMovieDirectRatio, &r.CreateInvalidDirectRatio, &r.ListDirectRatio} {
		if math.IsNaN(*f) {
			*f = 0
		}
	}
	return b.String()
}

// bestWrk is the highest req/s wrk measured for path via any concurrency.
func (r *report) bestWrk(path, via string, oneID bool) float64 {
	b := 0.0
	for _, w := range r.Wrk {
		if w.Path == path && w.Via == via && w.OneID == oneID && w.RPS > b {
			b = w.RPS
		}
	}
	return b
}

// ratioLines are the ratios of issue 24's targets, best over best, by each
// load generator: what the run prints before its last three lines.
func (r *report) ratioLines() []string {
	var lines []string
	ratio := func(b, c float64) string {
		if b == 0 || c == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", b/c)
	}
	for _, p := range []string{"jwks", "not-found", "create-invalid"} {
		lines = append(lines, fmt.Sprintf("ratio %s direct to the framework ceiling: vegeta %s, wrk %s", p,
			ratio(r.best(p, "direct"), r.best("framework", "ceiling")), ratio(r.bestWrk(p, "direct", false), r.bestWrk("framework", "ceiling", false))))
	}
	lines = append(lines, fmt.Sprintf("ratio get-movie through the gateway to the storage ceiling: vegeta %s, wrk %s (one id)",
		ratio(r.best("get-movie", "gateway"), r.best("storage", "ceiling")), ratio(r.bestWrk("get-movie", "gateway", true), r.bestWrk("storage", "ceiling", true))))
	return lines
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
