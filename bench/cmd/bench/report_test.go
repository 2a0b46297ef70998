package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	out := []byte(`Running 5s test @ http://127.0.0.1:8082/api/movies
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   641.33us    1.02ms  31.42ms   93.12%
  258112 requests in 5.00s, 91.09MB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 258112
Requests/sec:  51618.72
Transfer/sec:     18.22MB
`)
	rps, errs, err := parseWrk(out)
	if err != nil || rps != 51618.72 || errs != 7 {
		t.Errorf("parseWrk = %v, %d, %v; want 51618.72, 7, nil", rps, errs, err)
	}
	if _, _, err := parseWrk([]byte("unable to connect to 127.0.0.1:1 Connection refused")); err == nil {
		t.Error("no Requests/sec: want an error")
	}
}

// The wrk figures sit beside vegeta's, each ratio to its own tool's
// ceiling at the same concurrency, and count in the targets.
func TestReportWithWrk(t *testing.T) {
	r := &report{Started: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC), Opts: options{duration: 5 * time.Second, concurrency: []int{32}},
		Memory: []memRow{{Name: "auth"}, {Name: "movies"}}, BcryptBound: 30}
	add := func(path, via, ceiling string, rps float64) {
		r.Results = append(r.Results, result{scenario: scenario{Path: path, Via: via, Ceiling: ceiling}, Concurrency: 32, RPS: rps, Ratio: math.NaN()})
	}
	add("framework", "ceiling", "", 40000)
	add("create-invalid", "direct", "framework", 30000)
	add("storage", "ceiling", "", 2000)
	add("get-movie", "gateway", "storage", 1500)
	r.Wrk = []wrkRow{
		{Path: "framework", Via: "ceiling", Concurrency: 32, RPS: 100000},
		{Path: "create-invalid", Via: "direct", Concurrency: 32, RPS: 85000, SocketErrors: 1},
		{Path: "storage", Via: "ceiling", OneID: true, Concurrency: 32, RPS: 2500},
		{Path: "get-movie", Via: "gateway", OneID: true, Concurrency: 32, RPS: 2100},
	}
	r.ratios()
	md := r.markdown()
	for _, want := range []string{
		"| create-invalid | direct | 32 | 30000.0 | 0.75 | 85000.0 | 0.85 | 1 |",
		"| get-movie | gateway | 32 | 2100.0 | 0.84 | 0 |",
		"| create-invalid direct | ≥ 0.80 of the framework ceiling | 0.75 (30000 / 40000 req/s) | **no** |",
		"| create-invalid direct by wrk | ≥ 0.80 of the framework ceiling by wrk | 0.85 (85000 / 100000 req/s) | yes |",
		"| get-movie through the gateway (one id) by wrk | ≥ 0.80 of the storage ceiling by wrk | 0.84 (2100 / 2500 req/s) | yes |",
		"| wrk socket errors | none | 1 | **no** |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	lines := strings.Join(r.ratioLines(), "\n")
	for _, want := range []string{
		"ratio create-invalid direct to the framework ceiling: vegeta 0.75, wrk 0.85",
		"ratio jwks direct to the framework ceiling: vegeta –, wrk –",
		"ratio get-movie through the gateway to the storage ceiling: vegeta 0.75, wrk 0.84 (one id)",
	} {
		if !strings.Contains(lines, want) {
			t.Errorf("ratio lines lack %q:\n%s", want, lines)
		}
	}
}
