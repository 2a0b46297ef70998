package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/stream"
)

// fetchResult is a value of moviebag_jwks_refresh_total's result label.
type fetchResult string

// The JWKS fetch results.
const (
	fetchSuccess fetchResult = "success"
	fetchFailure fetchResult = "failure"
)

// Metrics are the movies service's own metrics.
type Metrics struct {
	jwksRefreshes *prometheus.CounterVec
	userEvents    *prometheus.CounterVec
	userMovies    prometheus.Counter
}

// NewMetrics registers the movies service's own metrics on reg, with the
// labels of shared; both fetch results start at zero.
func NewMetrics(reg prometheus.Registerer, shared *metrics.Metrics) *Metrics {
	m := &Metrics{
		jwksRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metrics.JWKSRefreshesName, Help: "JWKS fetches by result: success, failure.", ConstLabels: shared.ConstLabels(),
		}, []string{"result"}),
		userEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metrics.UserEventsName, ConstLabels: shared.ConstLabels(),
			Help: "Deliveries of account events (user.deleted) by outcome: done, retry (failed, handled again later), failed (no event: dropped).",
		}, []string{"outcome"}),
		userMovies: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metrics.UserMoviesDeletedName, Help: "Movies deleted with their user's account.", ConstLabels: shared.ConstLabels(),
		}),
	}
	reg.MustRegister(m.jwksRefreshes, m.userEvents, m.userMovies)
	for _, r := range []fetchResult{fetchSuccess, fetchFailure} {
		m.jwksRefreshes.WithLabelValues(string(r))
	}
	for _, o := range []stream.Outcome{stream.Done, stream.Retry, stream.Failed} {
		m.userEvents.WithLabelValues(string(o))
	}
	return m
}

// userEvent counts one delivery of an account event.
func (m *Metrics) userEvent(o stream.Outcome) { m.userEvents.WithLabelValues(string(o)).Inc() }

// userMoviesDeleted counts the movies deleted with an account.
func (m *Metrics) userMoviesDeleted(n int64) { m.userMovies.Add(float64(n)) }

// jwksFetched counts one fetch of the auth service's JWKS.
func (m *Metrics) jwksFetched(ok bool) {
	r := fetchSuccess
	if !ok {
		r = fetchFailure
	}
	m.jwksRefreshes.WithLabelValues(string(r)).Inc()
}
