// Package metrics defines every Prometheus metric moviebag exports (DESIGN.md
// §6), registered on a registry the caller owns.
package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/moviebag/moviebag/libs/buildinfo"
)

// UnmatchedRoute is the route label of every request that matched no route,
// so that scanners cannot blow up the label set.
const UnmatchedRoute = "unmatched"

// RejectedRoute is the route label of requests refused before routing: shed
// by the concurrency limit, or with a body over the limit.
const RejectedRoute = "rejected"

// Dependency names for DependencyErrors.
const (
	MongoDB = "mongodb"
	Redis   = "redis"
)

// DurationBuckets suit an API answering in milliseconds.
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Metrics holds the collectors of one service. Every metric carries the
// constant label service.
type Metrics struct {
	Requests         *prometheus.CounterVec   // method, route, status
	Duration         *prometheus.HistogramVec // method, route
	InFlight         prometheus.Gauge
	Errors           *prometheus.CounterVec // code, status
	LoginAttempts    *prometheus.CounterVec // result
	TokensRevoked    prometheus.Counter
	JWKSRefreshes    *prometheus.CounterVec // result
	DependencyErrors *prometheus.CounterVec // dependency, operation
}

// New creates the metrics of service and registers them, with the Go and
// process collectors and moviebag_build_info, on reg.
func New(reg prometheus.Registerer, service string) *Metrics {
	constLabels := prometheus.Labels{"service": service}
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests answered, by route template and status.", ConstLabels: constLabels,
		}, []string{"method", "route", "status"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "Time to answer HTTP requests, by route template.", ConstLabels: constLabels,
			Buckets: DurationBuckets,
		}, []string{"method", "route"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "http_requests_in_flight", Help: "HTTP requests being answered.", ConstLabels: constLabels,
		}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moviebag_errors_total", Help: "Error envelopes written, by catalog code.", ConstLabels: constLabels,
		}, []string{"code", "status"}),
		LoginAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moviebag_login_attempts_total", Help: "Login attempts by result: success, invalid_credentials, rate_limited, error.", ConstLabels: constLabels,
		}, []string{"result"}),
		TokensRevoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "moviebag_tokens_revoked_total", Help: "Tokens put on the denylist by a logout.", ConstLabels: constLabels,
		}),
		JWKSRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moviebag_jwks_refresh_total", Help: "JWKS fetches by result: success, failure.", ConstLabels: constLabels,
		}, []string{"result"}),
		DependencyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moviebag_dependency_errors_total", Help: "Failed calls to MongoDB or Redis, by operation.", ConstLabels: constLabels,
		}, []string{"dependency", "operation"}),
	}
	version, revision := buildinfo.Get()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "moviebag_build_info", Help: "Always 1; the labels tell the running build.",
		ConstLabels: prometheus.Labels{"service": service, "version": version, "revision": revision, "goversion": runtime.Version()},
	})
	info.Set(1)
	reg.MustRegister(m.Requests, m.Duration, m.InFlight, m.Errors, m.LoginAttempts, m.TokensRevoked, m.JWKSRefreshes, m.DependencyErrors, info)
	// The runtime collectors get the service label too, so every series says
	// whose it is.
	prometheus.WrapRegistererWith(constLabels, reg).MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Login results, the values of moviebag_login_attempts_total's result label.
var LoginResults = []string{"success", "invalid_credentials", "rate_limited", "error"}

// InitLoginAttempts creates every login result series at zero, so that the
// first failure is an increase alerts can see.
func (m *Metrics) InitLoginAttempts() {
	for _, r := range LoginResults {
		m.LoginAttempts.WithLabelValues(r)
	}
}

// InitJWKSRefreshes creates the success and failure series at zero.
func (m *Metrics) InitJWKSRefreshes() {
	m.JWKSRefreshes.WithLabelValues("success")
	m.JWKSRefreshes.WithLabelValues("failure")
}

// DependencyError counts one failed call to a dependency.
func (m *Metrics) DependencyError(dependency, operation string) {
	m.DependencyErrors.WithLabelValues(dependency, operation).Inc()
}
