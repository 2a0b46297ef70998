package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// soakSample is one reading of a service during the soak.
type soakSample struct {
	At         time.Duration // since the load started
	RSS        int64         // VmRSS
	Heap       float64       // go_memstats_heap_inuse_bytes
	Goroutines float64       // go_goroutines
}

// soak drives a fixed rate of get-movie, list and create-invalid requests
// (in turn) straight at the movies service (logins are left out: bcrypt
// would dominate); every o.soakEvery it samples each service's resident
// memory, heap in use and goroutines. It writes a table and an SVG plot to
// the results directory and says whether anything grew.
func soak(ctx context.Context, st *stepper, o options, s *stack, dir string, stdout io.Writer) error {
	ids := s.movieIDs
	invalid := []byte(`{"name":" ","casts":[],"genres":["Drama"]}`)
	var seq atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		i := seq.Add(1) - 1
		switch i % 3 {
		case 0:
			get(func(uint64) string { return s.moviesURL + "/api/movies/" + ids[(i*7919)%uint64(len(ids))] })(i, t)
		case 1:
			get(func(uint64) string { return s.moviesURL + "/api/movies?limit=20" })(i, t)
		default:
			post(s.moviesURL+"/api/movies", func(uint64) string { return s.tokens[i%uint64(len(s.tokens))] },
				func(uint64) []byte { return invalid })(i, t)
		}
		return nil
	}
	procs := []struct {
		p     *proc
		admin string
	}{{s.auth, s.authAdminURL}, {s.movies, s.moviesAdminURL}}
	samples := make([][]soakSample, len(procs))
	start := time.Now()
	sample := func() {
		for i, p := range procs {
			cur := p.p.rss().RSS
			m := scrape(p.admin)
			samples[i] = append(samples[i], soakSample{At: time.Since(start), RSS: cur, Heap: m.HeapInuse, Goroutines: m.Goroutines})
			st.step("soak %4.0fs  %-6s VmRSS %s  heap in use %s  goroutines %.0f", time.Since(start).Seconds(), p.p.name,
				mib(cur), mib(int64(m.HeapInuse)), m.Goroutines)
		}
	}
	st.step("soak: %d req/s for %s (get-movie, list, create-invalid in turn), sampling every %s", o.soakRate, o.soak, o.soakEvery)
	a := vegeta.NewAttacker(vegeta.MaxBody(512))
	results := a.Attack(targeter, vegeta.Rate{Freq: o.soakRate, Per: time.Second}, o.soak, "soak")
	tick := time.NewTicker(o.soakEvery)
	defer tick.Stop()
	sample()
	var total, errors int
	for done := false; !done; {
		select {
		case res, ok := <-results:
			if !ok {
				done = true
				break
			}
			total++
			if res.Code != 200 && res.Code != 400 { // create-invalid answers 400
				errors++
			}
		case <-tick.C:
			sample()
		case <-ctx.Done():
			a.Stop()
		}
	}
	sample()

	stamp := start.Format("2006-01-02-1504")
	length := o.soak.String()
	if ctx.Err() != nil {
		length = fmt.Sprintf("%s of the %s asked (interrupted)", time.Since(start).Round(time.Second), o.soak)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# moviebag soak, %s\n\n- %d req/s for %s straight at movies (get-movie, list, create-invalid in turn); "+
		"%d requests, %d unexpected answers\n- %d movies, storage: %s\n- samples every %s; plot: %s-soak.svg\n\n",
		start.Format("2006-01-02 15:04 MST"), o.soakRate, length, total, errors, len(ids), s.storage.Note, o.soakEvery, stamp)
	var series []svgSeries
	for i, p := range procs {
		fmt.Fprintf(&b, "## %s\n\n| t (s) | VmRSS MiB | heap in use MiB | goroutines |\n|---:|---:|---:|---:|\n", p.p.name)
		var rssPts, heapPts []([2]float64)
		for _, x := range samples[i] {
			fmt.Fprintf(&b, "| %.0f | %.1f | %.1f | %.0f |\n", x.At.Seconds(), float64(x.RSS)/(1<<20), x.Heap/(1<<20), x.Goroutines)
			rssPts = append(rssPts, [2]float64{x.At.Seconds(), float64(x.RSS) / (1 << 20)})
			heapPts = append(heapPts, [2]float64{x.At.Seconds(), x.Heap / (1 << 20)})
		}
		fmt.Fprintf(&b, "\n%s\n\n", growth(samples[i]))
		series = append(series, svgSeries{Name: p.p.name + " VmRSS", Points: rssPts}, svgSeries{Name: p.p.name + " heap in use", Points: heapPts})
	}
	_, _ = fmt.Fprint(stdout, "\n"+b.String())
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	md := filepath.Join(dir, stamp+"-soak.md")
	if err := os.WriteFile(md, []byte(b.String()), 0o644); err != nil {
		return err
	}
	svg := filepath.Join(dir, stamp+"-soak.svg")
	if err := os.WriteFile(svg, []byte(svgChart("memory over the soak", "seconds", "MiB", false, false, series)), 0o644); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(stdout, "written to %s and %s\n", md, svg)
	return nil
}

// growth compares the last third of the samples with the middle third (the
// first third is the warm-up): flat means within 10% (or 2 MiB) and no more
// goroutines.
func growth(xs []soakSample) string {
	if len(xs) < 6 {
		return "too few samples to judge growth"
	}
	third := len(xs) / 3
	avg := func(part []soakSample, f func(soakSample) float64) float64 {
		t := 0.0
		for _, x := range part {
			t += f(x)
		}
		return t / float64(len(part))
	}
	mid, last := xs[third:2*third], xs[2*third:]
	rssF := func(x soakSample) float64 { return float64(x.RSS) }
	heapF := func(x soakSample) float64 { return x.Heap }
	gorF := func(x soakSample) float64 { return x.Goroutines }
	grew := func(f func(soakSample) float64, slack float64) bool {
		a, b := avg(mid, f), avg(last, f)
		return b > a*1.1 && b-a > slack
	}
	verdict := "flat: yes"
	if grew(rssF, 2<<20) || grew(heapF, 2<<20) || avg(last, gorF) > avg(mid, gorF)+2 {
		verdict = "flat: **no**"
	}
	return fmt.Sprintf("%s (middle third → last third: VmRSS %.1f → %.1f MiB, heap %.1f → %.1f MiB, goroutines %.0f → %.0f)",
		verdict, avg(mid, rssF)/(1<<20), avg(last, rssF)/(1<<20), avg(mid, heapF)/(1<<20), avg(last, heapF)/(1<<20),
		avg(mid, gorF), avg(last, gorF))
}

// runtimeMem is what a service's Go runtime says of its memory, read from
// its /metrics (the client_golang Go collector); zero where it could not be read.
type runtimeMem struct {
	HeapInuse    float64 // go_memstats_heap_inuse_bytes: spans holding objects
	HeapRetained float64 // heap_idle − heap_released: free spans not yet given back to the OS
	Stacks       float64 // go_memstats_stack_inuse_bytes
	Sys          float64 // go_memstats_sys_bytes: all the runtime took from the OS
	Goroutines   float64
}

// scrape reads a service's runtime memory and goroutines from its /metrics.
func scrape(admin string) runtimeMem {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(admin + "/metrics")
	if err != nil {
		return runtimeMem{}
	}
	defer func() { _ = resp.Body.Close() }()
	var m runtimeMem
	var idle, released float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		name, val := line[:i], line[i+1:]
		if j := strings.IndexByte(name, '{'); j >= 0 { // the services label their runtime metrics too
			name = name[:j]
		}
		v, _ := strconv.ParseFloat(val, 64)
		switch name {
		case "go_memstats_heap_inuse_bytes":
			m.HeapInuse = v
		case "go_memstats_heap_idle_bytes":
			idle = v
		case "go_memstats_heap_released_bytes":
			released = v
		case "go_memstats_stack_inuse_bytes":
			m.Stacks = v
		case "go_memstats_sys_bytes":
			m.Sys = v
		case "go_goroutines":
			m.Goroutines = v
		}
	}
	m.HeapRetained = max(idle-released, 0)
	return m
}
