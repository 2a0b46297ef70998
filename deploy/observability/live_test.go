package observability_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moviebag/moviebag/deploy/observability"
	"github.com/moviebag/moviebag/deploy/observability/dashboard"
	"github.com/moviebag/moviebag/deploy/observability/traffic"
	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/testkit/poll"
)

// Environment of TestLivePrometheus, set by `make test-observability` once the stack is up.
const (
	envTargets = "MOVIEBAG_PROM_TARGETS" // job=host:port,... e.g. auth=127.0.0.1:9091,movies=127.0.0.1:9092
	envGateway = "MOVIEBAG_GATEWAY_URL"  // e.g. http://127.0.0.1:8080
)

// TestLivePrometheus proves the dashboard and the rules on real data: it starts a real prometheus scraping the
// running services every second with the project's rule file, drives traffic with errors of several codes
// through the gateway, then asks Prometheus' HTTP API that every panel query is valid and returns series, that
// moviebag_errors_total counts exactly the injected errors by code, and that every recording rule has values.
func TestLivePrometheus(t *testing.T) {
	targetsEnv, gateway := os.Getenv(envTargets), os.Getenv(envGateway)
	if targetsEnv == "" || gateway == "" {
		t.Fatalf("%s and %s are not set: this test needs the running stack and is run by `make test-observability`, "+
			"which starts it (for the static checks alone: make test-observability-static)", envTargets, envGateway)
	}
	targets, err := parseTargets(targetsEnv)
	if err != nil {
		t.Fatal(err)
	}
	services := make([]string, 0, len(targets))
	for job := range targets {
		services = append(services, job)
	}
	slices.Sort(services)

	prom := startPrometheus(t, targets)
	for _, job := range services {
		prom.waitFor(t, fmt.Sprintf(`up{job=%q} == 1`, job), 30*time.Second, 1)
	}

	// Phase 1 creates every series (a counter's first appearance is not an increase); phase 2 is counted.
	api := &traffic.Client{Base: strings.TrimRight(gateway, "/")}
	drive := func(rounds int) map[string]int {
		t.Helper()
		_, codes, err := api.Session(context.Background(), rounds, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		return codes
	}
	drive(1)
	prom.waitFor(t, `moviebag_errors_total{code="MovieNotExistsError"}`, 20*time.Second, 1)
	// Prometheus' latest samples hold all of phase 1 once they equal the services' own counters.
	before := prom.errorsByCodeEventually(t, servicesErrorsByCode(t, targets), 20*time.Second)
	const rounds = 5
	observed := drive(rounds)

	t.Run("errors by code match the injected errors", func(t *testing.T) {
		want := map[string]int{}
		for _, code := range []string{"NotFoundError", "SchemaValidationError", "TokenMissingError", "MovieNotExistsError"} {
			want[code] = observed[code]
			if observed[code] != rounds {
				t.Errorf("the API answered %s %d times out of %d requests meant to produce it (see the log above)", code, observed[code], rounds)
			}
		}
		var got map[string]float64
		_ = poll.Within(20*time.Second, 500*time.Millisecond, func() error { // the checks below tell what is missing
			after := prom.errorsByCode(t)
			got = map[string]float64{}
			for code := range want {
				got[code] = after[code] - before[code]
			}
			for code, n := range want {
				if got[code] < float64(n) {
					return fmt.Errorf("%s rose by %v of %d", code, got[code], n)
				}
			}
			return nil
		})
		for code, n := range want {
			if got[code] != float64(n) {
				t.Errorf("moviebag_errors_total{code=%q} rose by %v, the API answered it %d times", code, got[code], n)
			}
		}
		// The dashboard's panel, as Grafana would run it for all services, shows every injected code (once
		// rate() has two samples that differ: polled, not slept for).
		q := findQuery(t, "Errors by envelope code", "A")
		expr := dashboard.Interpolate(q.Expr, map[string]string{"namespace": ".*", "service": strings.Join(services, "|"), "route": ".*"}, "1m", "5m")
		shows := func(series []sample, code string) bool {
			return slices.ContainsFunc(series, func(s sample) bool { return s.Metric["code"] == code && s.Value > 0 })
		}
		var series []sample
		_ = poll.Within(20*time.Second, 300*time.Millisecond, func() error { // the checks below tell what is missing
			series = prom.query(t, expr)
			for code := range want {
				if !shows(series, code) {
					return fmt.Errorf("no positive rate for %s", code)
				}
			}
			return nil
		})
		for code := range want {
			if !shows(series, code) {
				t.Errorf("panel %q shows no positive rate for %s: %v", q.PanelTitle, code, series)
			}
		}
		// The 4xx error ratio reflects them on their routes: movies' /api/movies/:id (MovieNotExistsError) and
		// the unmatched route (NotFoundError).
		q = findQuery(t, "4xx error ratio by route", "A")
		ratios := prom.query(t, dashboard.Interpolate(q.Expr, map[string]string{"namespace": ".*", "service": strings.Join(services, "|"), "route": ".*"}, "1m", "5m"))
		for _, route := range []string{"/api/movies/:id", "unmatched"} {
			if !slices.ContainsFunc(ratios, func(s sample) bool { return s.Metric["route"] == route && s.Value > 0 }) {
				t.Errorf("panel %q shows no 4xx ratio for route %s: %v", q.PanelTitle, route, ratios)
			}
		}
	})

	// Metrics only one service exports, and ones that may rightly have no series (no dependency failed).
	onlyIn := map[string]string{
		metrics.LoginAttemptsName:     "auth",
		metrics.TokensRevokedName:     "auth",
		metrics.PasswordHashesName:    "auth",
		metrics.SessionsEndedName:     "auth",
		metrics.PasswordResetsName:    "auth",
		metrics.MailSentName:          "auth",
		metrics.MailFailedName:        "auth",
		metrics.MailPendingName:       "auth",
		metrics.RefreshesName:         "auth",
		metrics.AccountsDeletedName:   "auth",
		metrics.JWKSRefreshesName:     "movies",
		metrics.UserEventsName:        "movies",
		metrics.UserMoviesDeletedName: "movies",
	}
	mayBeEmpty := map[string]string{metrics.DependencyErrorsName: "no MongoDB or Redis call failed"}
	d := mustDashboard(t)
	p := observability.NewParser()

	t.Run("every panel query is valid and returns series", func(t *testing.T) {
		for _, q := range d.Queries() {
			expr, err := p.ParseExpr(dashboard.Interpolate(q.Expr, map[string]string{"namespace": ".*", "service": "x", "route": ".*"}, "1m", "5m"))
			if err != nil {
				t.Errorf("%s: %v", q, err)
				continue
			}
			names := observability.MetricNames(expr)
			for _, svc := range services {
				src := dashboard.Interpolate(q.Expr, map[string]string{"namespace": ".*", "service": svc, "route": ".*"}, "1m", "5m")
				need, why := true, ""
				for _, m := range names {
					if other, ok := onlyIn[m]; ok && other != svc {
						need, why = false, m+" is exported by "+other+" only"
					}
					if reason, ok := mayBeEmpty[m]; ok {
						need, why = false, reason
					}
				}
				series := prom.queryEventually(t, src, need, 10*time.Second)
				t.Logf("%s service=%s: %d series%s", q, svc, len(series), map[bool]string{true: "", false: " (may be empty: " + why + ")"}[need])
				if need && len(series) == 0 {
					t.Errorf("%s service=%s: no series for\n%s", q, svc, src)
				}
			}
		}
	})

	t.Run("variable queries return values", func(t *testing.T) {
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			q, err := v.QueryText()
			if err != nil {
				t.Fatal(err)
			}
			sel, label, err := dashboard.LabelValuesQuery(q)
			if err != nil {
				t.Fatal(err)
			}
			sel = dashboard.Interpolate(sel, map[string]string{"namespace": ".*", "service": strings.Join(services, "|")}, "1m", "5m")
			values := prom.labelValues(t, label, sel)
			t.Logf("variable %s: %v", v.Name, values)
			switch v.Name {
			case "namespace": // none in a plain Prometheus: the All value .* stands for the empty one
			case "service":
				if !slices.Equal(values, services) {
					t.Errorf("variable service: %v, want %v", values, services)
				}
			default:
				if len(values) == 0 {
					t.Errorf("variable %s: no values for %s", v.Name, q)
				}
			}
		}
	})

	t.Run("recording rules produce values", func(t *testing.T) {
		for _, g := range mustRules(t).Groups {
			for _, r := range g.Rules {
				if r.Record == "" {
					continue
				}
				series := prom.queryEventually(t, r.Record, true, 20*time.Second)
				got := map[string]float64{}
				for _, s := range series {
					got[s.Metric["service"]] = s.Value
				}
				for _, svc := range services {
					v, ok := got[svc]
					if !ok {
						t.Errorf("%s: no value for service %s (got %v)", r.Record, svc, series)
					} else if math.IsNaN(v) {
						t.Errorf("%s{service=%q} is NaN", r.Record, svc)
					}
				}
			}
		}
		// No 5xx was injected: the availability error ratio is exactly 0 and the budget untouched.
		for _, s := range prom.query(t, `namespace_service:slo_availability_error_budget_remaining:ratio30d`) {
			if s.Value != 1 {
				t.Logf("note: %s availability budget left %v (a 5xx happened during the run?)", s.Metric["service"], s.Value)
			}
		}
	})

	t.Run("every rule is healthy", func(t *testing.T) {
		for _, r := range prom.rules(t) {
			if r.Health != "ok" {
				t.Errorf("rule %s: health %s: %s", r.Name, r.Health, r.LastError)
			}
		}
		// Information only: a short run can legitimately trip a latency alert on a slow machine.
		for _, a := range prom.query(t, `ALERTS`) {
			t.Logf("alert %s %s service=%s job=%s", a.Metric["alertname"], a.Metric["alertstate"], a.Metric["service"], a.Metric["job"])
		}
	})
}

func parseTargets(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		job, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || job == "" || addr == "" {
			return nil, fmt.Errorf("%s: %q is not job=host:port", envTargets, part)
		}
		out[job] = addr
	}
	return out, nil
}

func findQuery(t *testing.T, title, refID string) dashboard.Query {
	t.Helper()
	for _, q := range mustDashboard(t).Queries() {
		if q.PanelTitle == title && q.RefID == refID {
			return q
		}
	}
	t.Fatalf("no panel %q target %s", title, refID)
	return dashboard.Query{}
}

// promServer is a prometheus process started for one test.
type promServer struct {
	base string
	http *http.Client
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// startPrometheus runs prometheus on a free port, scraping each job's target every second and evaluating the
// rule file every second, and stops it when the test ends.
func startPrometheus(t *testing.T, targets map[string]string) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not on PATH: run `make deps` (Debian package prometheus)")
	}
	rules, err := filepath.Abs(observability.RulesPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n  - %q\nscrape_configs:\n", rules)
	jobs := make([]string, 0, len(targets))
	for job := range targets {
		jobs = append(jobs, job)
	}
	slices.Sort(jobs)
	for _, job := range jobs {
		fmt.Fprintf(&cfg, "  - job_name: %q\n    static_configs:\n      - targets: [%q]\n", job, targets[job])
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	var waitErr error // read once exited is closed
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil && len(b) > 0 {
				t.Logf("prometheus log:\n%s\nconfig:\n%s", b, cfg.String())
			}
		}
	})
	s := &promServer{base: "http://" + addr, http: &http.Client{Timeout: 10 * time.Second}}
	if err := poll.Within(30*time.Second, 200*time.Millisecond, func() error {
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("prometheus exited: %v\n%s", waitErr, b)
		default:
		}
		resp, err := s.http.Get(s.base + "/-/ready")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready answered %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		t.Fatalf("prometheus not ready on %s after 30s: %v", addr, err)
	}
	return s
}

type sample struct {
	Metric map[string]string
	Value  float64
}

type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

func (s *promServer) get(t *testing.T, path string, params url.Values) json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path+"?"+params.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	var r apiResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("GET %s %v: decode: %v", path, params, err)
	}
	if r.Status != "success" {
		t.Fatalf("GET %s %v: %s: %s", path, params, r.ErrorType, r.Error)
	}
	return r.Data
}

// query runs an instant query and returns its samples; an invalid query fails the test.
func (s *promServer) query(t *testing.T, q string) []sample {
	t.Helper()
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := json.Unmarshal(s.get(t, "/api/v1/query", url.Values{"query": {q}}), &data); err != nil {
		t.Fatal(err)
	}
	if data.ResultType != "vector" {
		t.Fatalf("query %s: result type %s, want vector", q, data.ResultType)
	}
	out := make([]sample, 0, len(data.Result))
	for _, r := range data.Result {
		str, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			t.Fatalf("query %s: value %v: %v", q, r.Value[1], err)
		}
		out = append(out, sample{Metric: r.Metric, Value: v})
	}
	return out
}

// queryEventually repeats a query until it returns series (when want is true) or the timeout passes, and
// returns its last answer.
func (s *promServer) queryEventually(t *testing.T, q string, want bool, timeout time.Duration) []sample {
	t.Helper()
	var series []sample
	_ = poll.Within(timeout, 500*time.Millisecond, func() error { // the caller judges the last answer
		series = s.query(t, q)
		if want && len(series) == 0 {
			return errors.New("no series")
		}
		return nil
	})
	return series
}

// waitFor waits until q returns at least n series.
func (s *promServer) waitFor(t *testing.T, q string, timeout time.Duration, n int) {
	t.Helper()
	if err := poll.Within(timeout, 300*time.Millisecond, func() error {
		if got := len(s.query(t, q)); got < n {
			return fmt.Errorf("%d series", got)
		}
		return nil
	}); err != nil {
		t.Fatalf("after %v, still fewer than %d series for %s: %v", timeout, n, q, err)
	}
}

// errorsByCodeEventually waits until Prometheus' moviebag_errors_total by code equals want (the services'
// own counters), then returns it.
func (s *promServer) errorsByCodeEventually(t *testing.T, want map[string]float64, timeout time.Duration) map[string]float64 {
	t.Helper()
	var got map[string]float64
	if err := poll.Within(timeout, 300*time.Millisecond, func() error {
		if got = s.errorsByCode(t); !maps.Equal(got, want) {
			return errors.New("not equal")
		}
		return nil
	}); err != nil {
		t.Fatalf("after %v Prometheus has moviebag_errors_total by code %v, the services %v", timeout, got, want)
	}
	return got
}

// servicesErrorsByCode reads moviebag_errors_total from every target's /metrics, summed by code: every code,
// those still at zero included, as Prometheus' sum by code has them.
func servicesErrorsByCode(t *testing.T, targets map[string]string) map[string]float64 {
	t.Helper()
	codeRE := regexp.MustCompile(`code="([^"]+)"`)
	out := map[string]float64{}
	for job, addr := range targets {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatalf("scrape %s: %v", job, err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatalf("scrape %s: %v", job, err)
		}
		for line := range strings.Lines(string(body)) {
			if !strings.HasPrefix(line, metrics.ErrorsName+"{") {
				continue
			}
			m := codeRE.FindStringSubmatch(line)
			i := strings.LastIndexByte(strings.TrimSpace(line), ' ')
			v, err := strconv.ParseFloat(strings.TrimSpace(line)[i+1:], 64)
			if m == nil || i < 0 || err != nil {
				t.Fatalf("scrape %s: unreadable sample %q", job, line)
			}
			out[m[1]] += v
		}
	}
	return out
}

// errorsByCode returns the current value of moviebag_errors_total summed by code over all services.
func (s *promServer) errorsByCode(t *testing.T) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, smp := range s.query(t, `sum by (code) (moviebag_errors_total)`) {
		out[smp.Metric["code"]] = smp.Value
	}
	return out
}

func (s *promServer) labelValues(t *testing.T, label, selector string) []string {
	t.Helper()
	params := url.Values{}
	if selector != "" {
		params.Set("match[]", selector)
	}
	var values []string
	if err := json.Unmarshal(s.get(t, "/api/v1/label/"+url.PathEscape(label)+"/values", params), &values); err != nil {
		t.Fatal(err)
	}
	slices.Sort(values)
	return values
}

type ruleState struct {
	Name      string `json:"name"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
}

func (s *promServer) rules(t *testing.T) []ruleState {
	t.Helper()
	var data struct {
		Groups []struct {
			Rules []ruleState `json:"rules"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(s.get(t, "/api/v1/rules", url.Values{}), &data); err != nil {
		t.Fatal(err)
	}
	var out []ruleState
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("prometheus loaded no rules")
	}
	return out
}
