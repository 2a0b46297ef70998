// Package metrics defines the Prometheus metrics every moviebag service
// exports (HTTP traffic, error envelopes, dependency failures, build info),
// registered on a registry the caller owns. A service registers its own
// metrics, from its own code, on the same registry.
package metrics

import (
	"runtime"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/buildinfo"
)

// UnmatchedRoute is the route label of every request that matched no route,
// so that scanners cannot blow up the label set.
const UnmatchedRoute = "unmatched"

// RejectedRoute is the route label of requests refused before routing: shed
// by the concurrency limit, a body over the limit, or refused by the server
// itself (headers too large, a read timeout, an unknown method).
const RejectedRoute = "rejected"

// OtherMethod is the method label of a request whose method is not one of
// the standard ones.
const OtherMethod = "OTHER"

// Dependency is a value of moviebag_dependency_errors_total's dependency label.
type Dependency string

// The dependencies.
const (
	MongoDB Dependency = "mongodb"
	Redis   Dependency = "redis"
)

// Operation is a value of moviebag_dependency_errors_total's operation label.
type Operation string

// The operations a service performs on its dependencies.
const (
	Insert  Operation = "insert"
	Find    Operation = "find"
	Update  Operation = "update"
	Count   Operation = "count"
	Delete  Operation = "delete"
	Set     Operation = "set"
	Get     Operation = "get"
	Exists  Operation = "exists"
	Eval    Operation = "eval" // a Lua script (EVAL, EVALSHA)
	Publish Operation = "publish"
	// On a Redis Stream: XADD; the consumer group's reads (XREADGROUP,
	// XPENDING, XCLAIM, XLEN); XACK with XDEL.
	Append Operation = "append"
	Read   Operation = "read"
	Ack    Operation = "ack"
)

// DurationBuckets suit an API answering in milliseconds.
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Metrics holds the collectors every service shares. Every metric carries
// the constant label service.
type Metrics struct {
	Requests         *prometheus.CounterVec   // method, route, status
	Duration         *prometheus.HistogramVec // method, route
	InFlight         prometheus.Gauge
	Errors           *prometheus.CounterVec // code, status
	DependencyErrors *prometheus.CounterVec // dependency, operation
	constLabels      prometheus.Labels

	// The series of Requests and Duration, and of Errors, counted on every
	// request and every error envelope (see seriesCache).
	requests *seriesCache[requestKey, requestSeries]
	errors   *seriesCache[errorKey, prometheus.Counter]
}

// requestKey is the label values of a request's series.
type requestKey struct{ method, route, status string }

// requestSeries is a request's series: its count and its duration.
type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// errorKey is the label values of an error envelope's series.
type errorKey struct {
	code   apierr.Code
	status string
}

// New creates the shared metrics of service and registers them, with the Go
// and process collectors and moviebag_build_info, on reg. Every catalog
// code's moviebag_errors_total series starts at zero, so that rate() and
// absent() see the series before the first failure.
func New(reg prometheus.Registerer, service string) *Metrics {
	constLabels := prometheus.Labels{"service": service}
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: RequestsName, Help: "HTTP requests answered, by route template and status.", ConstLabels: constLabels,
		}, []string{"method", "route", "status"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: DurationName, Help: "Time to answer HTTP requests, by route template.", ConstLabels: constLabels,
			Buckets: DurationBuckets,
		}, []string{"method", "route"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: InFlightName, Help: "HTTP requests being answered.", ConstLabels: constLabels,
		}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: ErrorsName, Help: "Error envelopes written, by catalog code.", ConstLabels: constLabels,
		}, []string{"code", "status"}),
		DependencyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: DependencyErrorsName, Help: "Failed calls to MongoDB or Redis, by operation.", ConstLabels: constLabels,
		}, []string{"dependency", "operation"}),
		constLabels: constLabels,
	}
	m.requests = newSeriesCache(func(k requestKey) requestSeries {
		return requestSeries{
			count:    m.Requests.WithLabelValues(k.method, k.route, k.status),
			duration: m.Duration.WithLabelValues(k.method, k.route),
		}
	})
	m.errors = newSeriesCache(func(k errorKey) prometheus.Counter {
		return m.Errors.WithLabelValues(string(k.code), k.status)
	})
	version, revision := buildinfo.Get()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: BuildInfoName, Help: "Always 1; the labels tell the running build.",
		ConstLabels: prometheus.Labels{"service": service, "version": version, "revision": revision, "goversion": runtime.Version()},
	})
	info.Set(1)
	reg.MustRegister(m.Requests, m.Duration, m.InFlight, m.Errors, m.DependencyErrors, info)
	// The runtime collectors get the service label too, so every series says
	// whose it is.
	prometheus.WrapRegistererWith(constLabels, reg).MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, code := range apierr.Codes() {
		m.errors.get(errorKey{code, strconv.Itoa(code.Status())})
	}
	return m
}

// RequestAnswered counts one answered request in http_requests_total and
// observes how long it took, in seconds, in http_request_duration_seconds.
// The label values are kept, as the series' labels and as the keys that find
// them again without WithLabelValues' work (see seriesCache): they must not
// point into a buffer that is reused (constants, route templates) and must
// stay bounded.
func (m *Metrics) RequestAnswered(method, route, status string, seconds float64) {
	s := m.requests.get(requestKey{method, route, status})
	s.count.Inc()
	s.duration.Observe(seconds)
}

// ErrorEnvelope counts one error envelope of code answered with status in
// moviebag_errors_total. status is kept as RequestAnswered's label values
// are.
func (m *Metrics) ErrorEnvelope(code apierr.Code, status string) {
	m.errors.get(errorKey{code, status}).Inc()
}

// ConstLabels are the labels every metric of the service carries, for the
// service's own metrics.
func (m *Metrics) ConstLabels() prometheus.Labels { return m.constLabels }

// ExpectDependency starts the moviebag_dependency_errors_total series of
// each operation on dependency at zero: the operations a service performs
// are known when it starts.
func (m *Metrics) ExpectDependency(dependency Dependency, ops ...Operation) {
	for _, op := range ops {
		m.DependencyErrors.WithLabelValues(string(dependency), string(op))
	}
}

// DependencyError counts one failed call to a dependency.
func (m *Metrics) DependencyError(dependency Dependency, op Operation) {
	m.DependencyErrors.WithLabelValues(string(dependency), string(op)).Inc()
}
