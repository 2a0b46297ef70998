package main

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// scenario is one path under load: where it goes, what a right answer is
// and which ceiling it is compared with.
type scenario struct {
	Path    string // short name: get-movie, list, create, ...
	Via     string // direct, gateway, ceiling
	Want    int    // the expected status; anything else is an error
	Ceiling string // framework, storage, bcrypt or "" (no ceiling)
	// Sheds says the service may refuse work at once with a 503 and
	// Retry-After (login's bcrypt admission): such an answer within
	// shedWithin is counted as shed, not as an error or in the latencies.
	Sheds bool
	// next fills in the i-th request (safe for concurrent use: i is unique).
	next func(i uint64, t *vegeta.Target)
}

// result is one measured run of a scenario at one concurrency.
type result struct {
	scenario
	Concurrency int
	Requests    int
	RPS         float64
	P50, P99    time.Duration // of the answered requests (shed ones left out)
	Errors      int
	Shed        int           // quick 503s with Retry-After, where the scenario Sheds
	ShedP99     time.Duration // how long the slowest of them (but 1 %) took
	FirstError  string
	Ratio       float64 // to its ceiling at the same concurrency; NaN when none
}

// attack runs s at concurrency c for warmup+d: c workers, each sending its
// next request as soon as the previous one is answered (a closed loop).
// Only the answers that arrive in the last d count for throughput and
// latency, so neither the ramp-up nor the drain at the end dilute them;
// unexpected answers count as errors wherever they arrive. The client's
// connections are closed afterwards, so that no run leaves idle keep-alive
// connections (and their buffers) on the servers.
func attack(s scenario, c int, warmup, d time.Duration) result {
	var seq atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		s.next(seq.Add(1)-1, t)
		return nil
	}
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: c,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	r := result{scenario: s, Concurrency: c, Ratio: math.NaN()}
	var lat, shedLat []time.Duration
	winStart := time.Now().Add(warmup)
	winEnd := winStart.Add(d)
	var results <-chan *vegeta.Result
	if s.Sheds {
		results = politeClients(s, c, client, winEnd)
	} else {
		a := vegeta.NewAttacker(vegeta.Client(client), vegeta.Workers(uint64(c)), vegeta.MaxWorkers(uint64(c)), vegeta.MaxBody(512))
		results = a.Attack(targeter, vegeta.ConstantPacer{}, warmup+d, s.Path)
	}
	for res := range results {
		if s.Sheds && shed(res) {
			r.Shed++
			shedLat = append(shedLat, res.Latency)
			continue
		}
		if int(res.Code) != s.Want {
			r.Errors++
			if r.FirstError == "" {
				r.FirstError = fmt.Sprintf("%d %s %s", res.Code, res.Error, truncate(string(res.Body), 200))
			}
		}
		if end := res.Timestamp.Add(res.Latency); !end.Before(winStart) && end.Before(winEnd) {
			r.Requests++
			lat = append(lat, res.Latency)
		}
	}
	r.RPS = float64(r.Requests) / d.Seconds()
	slices.Sort(lat)
	r.P50, r.P99 = quantile(lat, 0.50), quantile(lat, 0.99)
	slices.Sort(shedLat)
	r.ShedP99 = quantile(shedLat, 0.99)
	return r
}

// politeClients runs s as c clients in a closed loop until end, as attack's
// workers do, but each client that is refused with a quick 503 waits the
// Retry-After it was given before its next request, as a client of the API
// should. Clients that ignore it are refused again and again, and their
// refusals, however cheap, take the shared cores from the work (and from the
// load generator itself): that measures the client, not the service.
func politeClients(s scenario, c int, client *http.Client, end time.Time) <-chan *vegeta.Result {
	out := make(chan *vegeta.Result, c)
	var seq atomic.Uint64
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for time.Now().Before(end) {
				var t vegeta.Target
				s.next(seq.Add(1)-1, &t)
				res := send(client, &t)
				out <- res
				if shed(res) {
					secs, _ := strconv.Atoi(res.Headers.Get("Retry-After"))
					time.Sleep(min(time.Duration(max(secs, 1))*time.Second, time.Until(end)))
				}
			}
		})
	}
	go func() { wg.Wait(); close(out) }()
	return out
}

// send makes t's request with client and reports it as vegeta does: status,
// start, latency, headers and the first 512 bytes of the body.
func send(client *http.Client, t *vegeta.Target) *vegeta.Result {
	res := &vegeta.Result{Timestamp: time.Now()}
	req, err := t.Request()
	if err == nil {
		var resp *http.Response
		if resp, err = client.Do(req); err == nil {
			res.Body, err = io.ReadAll(io.LimitReader(resp.Body, 512))
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			res.Code, res.Headers = uint16(resp.StatusCode), resp.Header
		}
	}
	if err != nil {
		res.Error = err.Error()
	}
	res.Latency = time.Since(res.Timestamp)
	return res
}

// shedWithin bounds a shed answer: a 503 that took longer waited for its
// deadline instead of being refused at once, and is an error.
const shedWithin = time.Second

// shed reports whether res is the designed refusal of work that could not be
// done in time: a quick 503 with Retry-After.
func shed(res *vegeta.Result) bool {
	return res.Code == http.StatusServiceUnavailable && res.Headers.Get("Retry-After") != "" && res.Latency < shedWithin
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// get returns a target maker for GET url(i).
func get(url func(i uint64) string) func(uint64, *vegeta.Target) {
	return func(i uint64, t *vegeta.Target) {
		t.Method, t.URL = http.MethodGet, url(i)
	}
}

// post returns a target maker for a JSON POST of body(i) to url, with the
// bearer token token(i) when token is not nil.
func post(url string, token func(i uint64) string, body func(i uint64) []byte) func(uint64, *vegeta.Target) {
	return func(i uint64, t *vegeta.Target) {
		t.Method, t.URL, t.Body = http.MethodPost, url, body(i)
		t.Header = http.Header{"Content-Type": {"application/json"}}
		if token != nil {
			t.Header.Set("Authorization", "Bearer "+token(i))
		}
	}
}
