package metrics_test

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
)

// answer is one request counted by RequestAnswered.
type answer struct {
	method, route, status string
	seconds               float64
}

// envelope is one error envelope counted by ErrorEnvelope.
type envelope struct {
	code   apierr.Code
	status string
}

// countDirect counts a and e as RequestAnswered and ErrorEnvelope did before
// their cache: each through its vector's WithLabelValues.
func countDirect(m *metrics.Metrics, a []answer, e []envelope) {
	for _, a := range a {
		m.Requests.WithLabelValues(a.method, a.route, a.status).Inc()
		m.Duration.WithLabelValues(a.method, a.route).Observe(a.seconds)
	}
	for _, e := range e {
		m.Errors.WithLabelValues(string(e.code), e.status).Inc()
	}
}

// exposition is the text exposition of the request and error metrics of
// reg, as a scrape reads them.
func exposition(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, f := range families {
		switch f.GetName() {
		case metrics.RequestsName, metrics.DurationName, metrics.ErrorsName:
			if _, err := expfmt.MetricFamilyToText(&buf, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	return buf.String()
}

// TestCountsAsWithLabelValues holds RequestAnswered and ErrorEnvelope to
// the vectors' WithLabelValues, which they find their series with once and
// then keep: after the same answers and envelopes, in and out of order and
// each seen more than once, the exposition is the same byte for byte. A
// cached series found for the wrong labels would count in the wrong line.
func TestCountsAsWithLabelValues(t *testing.T) {
	answers := []answer{
		{"GET", "/api/movies/:id", "200", 0.003},
		{"GET", "/api/movies/:id", "404", 0.0004},
		{"GET", "/api/movies", "200", 0.02},
		{"HEAD", "/api/movies", "200", 0.0002},
		{"POST", "/api/movies", "201", 0.2},
		{"GET", "/api/movies/:id", "200", 1.5},
		{"POST", "/api/movies", "400", 0.001},
		{metrics.OtherMethod, metrics.UnmatchedRoute, "404", 0.0001},
		{"GET", metrics.UnmatchedRoute, "404", 0.0003},
		{"GET", metrics.RejectedRoute, "503", 7},
	}
	envelopes := []envelope{
		{apierr.MovieNotExistsError, "400"},
		{apierr.SchemaValidationError, "400"},
		{apierr.NotFoundError, "404"},
		{apierr.MovieNotExistsError, "400"},
		{apierr.InternalServerError, "500"},
		{apierr.NotFoundError, "405"}, // a status that is not the code's own
	}
	cachedReg, directReg := prometheus.NewRegistry(), prometheus.NewRegistry()
	cached, direct := metrics.New(cachedReg, "test"), metrics.New(directReg, "test")
	for range 3 {
		for _, a := range answers {
			cached.RequestAnswered(a.method, a.route, a.status, a.seconds)
		}
		for _, e := range envelopes {
			cached.ErrorEnvelope(e.code, e.status)
		}
		countDirect(direct, answers, envelopes)
	}
	got, want := exposition(t, cachedReg), exposition(t, directReg)
	if got != want {
		t.Errorf("exposition after RequestAnswered and ErrorEnvelope:\n%s\nwant (WithLabelValues):\n%s", got, want)
	}
	for _, line := range []string{
		`http_requests_total{method="GET",route="/api/movies/:id",service="test",status="200"} 6`,
		`http_request_duration_seconds_count{method="GET",route="/api/movies/:id",service="test"} 9`,
		`moviebag_errors_total{code="MovieNotExistsError",service="test",status="400"} 6`,
		`moviebag_errors_total{code="NotFoundError",service="test",status="405"} 3`,
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("exposition has no line %s:\n%s", line, got)
		}
	}
}

// TestCountsConcurrently counts the same answers and envelopes from many
// goroutines at once, each starting at another one, so that first uses of a
// series race each other: no count is lost (and -race sees no race).
func TestCountsConcurrently(t *testing.T) {
	const goroutines, rounds = 8, 200
	var answers []answer
	var envelopes []envelope
	for i := range 12 {
		route := fmt.Sprintf("/api/r%d/:id", i%4)
		answers = append(answers, answer{"GET", route, strconv.Itoa(200 + i), 0.01})
		envelopes = append(envelopes, envelope{apierr.Codes()[i%len(apierr.Codes())], strconv.Itoa(400 + i)})
	}
	cachedReg, directReg := prometheus.NewRegistry(), prometheus.NewRegistry()
	cached, direct := metrics.New(cachedReg, "test"), metrics.New(directReg, "test")
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for range rounds {
				for i := range answers {
					a, e := answers[(g+i)%len(answers)], envelopes[(g+i)%len(envelopes)]
					cached.RequestAnswered(a.method, a.route, a.status, a.seconds)
					cached.ErrorEnvelope(e.code, e.status)
				}
			}
		})
	}
	for range goroutines * rounds {
		countDirect(direct, answers, envelopes)
	}
	wg.Wait()
	if got, want := exposition(t, cachedReg), exposition(t, directReg); got != want {
		t.Errorf("exposition after concurrent counts:\n%s\nwant:\n%s", got, want)
	}
}
