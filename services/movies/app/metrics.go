package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/moviebag/moviebag/libs/metrics"
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
}

// NewMetrics registers the movies service's own metrics on reg, with the
// labels of shared; both fetch results start at zero.
func NewMetrics(reg prometheus.Registerer, shared *metrics.Metrics) *Metrics {
	m := &Metrics{
		jwksRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metrics.JWKSRefreshesName, Help: "JWKS fetches by result: success, failure.", ConstLabels: shared.ConstLabels(),
		}, []string{"result"}),
	}
	reg.MustRegister(m.jwksRefreshes)
	for _, r := range []fetchResult{fetchSuccess, fetchFailure} {
		m.jwksRefreshes.WithLabelValues(string(r))
	}
	return m
}

// jwksFetched counts one fetch of the auth service's JWKS.
func (m *Metrics) jwksFetched(ok bool) {
	r := fetchSuccess
	if !ok {
		r = fetchFailure
	}
	m.jwksRefreshes.WithLabelValues(string(r)).Inc()
}
