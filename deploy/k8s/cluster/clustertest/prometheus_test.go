package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/moviebag/moviebag/deploy/observability/dashboard"
	"github.com/moviebag/moviebag/deploy/observability/traffic"
	"github.com/moviebag/moviebag/libs/testkit/poll"
)

// What TestClusterMonitoring reads from the repository: the rules Prometheus loads (on the managed shape,
// through the chart's PrometheusRule, which carries the same rules) and the dashboard whose queries it must
// answer. The Prometheus manifest and its namespace are the shape's (shape_test.go).
const (
	rulesFile        = "deploy/prometheus/moviebag-rules.yaml"
	dashboardFile    = "deploy/grafana/moviebag-overview.json"
	serviceDownAlert = "MoviebagServiceDown"
)

// TestClusterMonitoring proves the in-cluster Prometheus (deploy/k8s/cluster/manifests/prometheus.yaml, which
// cluster-up applies with deploy/prometheus/moviebag-rules.yaml as its rules) through its HTTP API at
// PROMETHEUS_URL: every auth and movies pod is a target that is up (so the NetworkPolicies admit the scrape
// from the monitoring namespace), every recording rule has values, moviebag_errors_total counts the errors
// sent through the Gateway by code, every query of the Grafana dashboard returns series, and
// MoviebagServiceDown fires when movies is scaled to 0 and resolves when it is back. Each step logs how
// long it took.
func TestClusterMonitoring(t *testing.T) {
	env(t, "KUBECONFIG")
	gateway := strings.TrimRight(wayIn(t), "/")
	if os.Getenv("PROMETHEUS_URL") == "" {
		t.Fatal("PROMETHEUS_URL is not set: cluster-up did not bring the in-cluster Prometheus up (a WARNING line " +
			"of its output says why), or this test was not run by `make test-cluster`")
	}
	prom := &promAPI{base: strings.TrimRight(os.Getenv("PROMETHEUS_URL"), "/"), http: &http.Client{Timeout: 20 * time.Second}}
	root := repoRoot(t)
	rules := loadRules(t, filepath.Join(root, rulesFile))
	eval := evaluationInterval(t, filepath.Join(root, shape.prometheusManifest))
	api := &traffic.Client{Base: gateway}
	begin := time.Now()

	// TestCluster's last step deletes namespace moviebag and installs the release again: Prometheus'
	// discovery Role and RoleBinding, which live there, went with it. Applying the manifest again puts them
	// back; then Prometheus is restarted, so that its discovery starts over with them. Without the restart
	// its EndpointSlice and Pod watches recover from the refusals each at its own time, and a slice listed
	// before its pods gives targets without the pod's labels (no `pod`), which a pod that is merely listed
	// again does not fix: a cold make test saw every target so for the whole 3 minutes.
	start := time.Now()
	setup := "Prometheus and the release rolled out"
	if shape.reapplyPrometheus {
		kubectl(t, "apply", "-f", filepath.Join(root, shape.prometheusManifest))
		kubectl(t, "-n", monitoringNS, "rollout", "restart", "deployment/"+shape.prometheusDeployment)
		setup = "manifest applied again, Prometheus restarted, the release rolled out"
	}
	kubectl(t, "-n", monitoringNS, "rollout", "status", "deployment/"+shape.prometheusDeployment, "--timeout=180s")
	kubectl(t, "-n", namespace, "rollout", "status", "deployment", "--timeout=300s")
	t.Logf("setup (%s): %v", setup, since(start))

	t.Run("every auth and movies pod is a target that is up", func(t *testing.T) {
		var pods []podInfo
		took := eventually(t, 3*time.Minute, 2*time.Second, "every running auth and movies pod an up target", func() error {
			var err error
			if pods, err = servicePods(); err != nil {
				return err
			}
			q := fmt.Sprintf(`up{namespace=%q}`, namespace)
			up, err := prom.query(q)
			if err != nil {
				return err
			}
			byPod := map[string]sample{}
			for _, s := range up {
				byPod[s.Metric["pod"]] = s
			}
			var problems []string
			for _, p := range pods {
				s, ok := byPod[p.Name]
				switch job := release + "-" + p.App; {
				case !ok:
					problems = append(problems, p.Name+": no target")
				case s.Value != 1:
					problems = append(problems, fmt.Sprintf("%s: up %v", p.Name, s.Value))
				case s.Metric["job"] != job:
					problems = append(problems, fmt.Sprintf("%s: job %q, want %q", p.Name, s.Metric["job"], job))
				}
			}
			if len(problems) > 0 {
				return fmt.Errorf("%s; %s returned %s", strings.Join(problems, "; "), q, describe(up))
			}
			return nil
		})
		names := make([]string, 0, len(pods))
		for _, p := range pods {
			names = append(names, p.Name)
		}
		t.Logf("all %d auth and movies pods up targets after %v: %s", len(pods), took, strings.Join(names, " "))
	})

	// Requests through the Gateway, errors among them, make the series the rules and the dashboard read.
	start = time.Now()
	sent, _, err := api.Session(context.Background(), 5, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("traffic: %d requests through the Gateway in %v", sent, since(start))

	t.Run("every rule is loaded from the rules file and healthy", func(t *testing.T) {
		took := eventually(t, 2*time.Minute, 2*time.Second, "every rule of "+rulesFile+" loaded and evaluated without error", func() error {
			loaded, err := prom.rules()
			if err != nil {
				return err
			}
			var problems []string
			names := map[string]bool{}
			for _, r := range loaded {
				names[r.Name] = true
				if r.Health != "ok" {
					problems = append(problems, fmt.Sprintf("%s: health %q %s", r.Name, r.Health, r.LastError))
				}
			}
			for _, n := range rules.names() {
				if !names[n] {
					problems = append(problems, n+": not loaded")
				}
			}
			if len(loaded) != len(rules.names()) {
				problems = append(problems, fmt.Sprintf("%d rules loaded, the file has %d", len(loaded), len(rules.names())))
			}
			if len(problems) > 0 {
				return errors.New(strings.Join(problems, "; "))
			}
			return nil
		})
		t.Logf("all %d rules loaded and healthy after %v", len(rules.names()), took)
	})

	t.Run("every recording rule has values for auth and movies", func(t *testing.T) {
		took := eventually(t, 2*time.Minute, 2*time.Second, "every recording rule with a series for each service", func() error {
			var problems []string
			for _, record := range rules.records() {
				q := fmt.Sprintf(`%s{namespace=%q}`, record, namespace)
				series, err := prom.query(q)
				if err != nil {
					return err
				}
				for _, svc := range []string{"auth", "movies"} {
					if !slices.ContainsFunc(series, func(s sample) bool { return s.Metric["service"] == svc }) {
						problems = append(problems, fmt.Sprintf("%s: no series for service %s (got %s)", q, svc, describe(series)))
					}
				}
			}
			if len(problems) > 0 {
				return fmt.Errorf("%d problems: %s", len(problems), strings.Join(problems, "; "))
			}
			return nil
		})
		t.Logf("all %d recording rules have values for auth and movies after %v", len(rules.records()), took)
	})

	t.Run("moviebag_errors_total counts the errors sent, by code", func(t *testing.T) {
		errorsByCode(t, prom, api)
	})

	t.Run("every query of the dashboard returns series", func(t *testing.T) {
		dashboardQueries(t, prom, filepath.Join(root, dashboardFile))
	})

	// Last: it takes movies away for a while.
	t.Run(serviceDownAlert+" fires while movies is scaled to 0 and resolves when it is back", func(t *testing.T) {
		serviceDown(t, prom, rules.alertFor(t, serviceDownAlert), eval)
	})

	t.Logf("TestClusterMonitoring: %v in all", since(begin))
}

// errorsByCode sends requests that each produce a known catalog code, on both services, and checks that
// moviebag_errors_total rose by at least as many for that code on that service, summed over the pods' series.
// The rise is counted per series, over the series there after: a pod of an earlier rollout that is still a
// target when the count before is taken, and gone after, would otherwise take its count out of the sum (seen
// once on the managed shape: 9 of 10 counted).
func errorsByCode(t *testing.T, prom *promAPI, api *traffic.Client) {
	const n = 10
	type injected struct {
		code, service, method, path string
		body                        any
		status                      int
	}
	cases := []injected{
		// A well-formed id no movie has: the store's not-found path.
		{"MovieNotExistsError", "movies", http.MethodGet, "/api/movies/000000000000000000000000", nil, 400},
		{"TokenMissingError", "movies", http.MethodPost, "/api/movies", map[string]any{"name": "x", "casts": []string{"a"}, "genres": []string{"b"}}, 401},
		{"SchemaValidationError", "auth", http.MethodPost, "/api/auth/signup", map[string]any{}, 400},
	}
	codes := make([]string, 0, len(cases))
	for _, c := range cases {
		codes = append(codes, c.code)
	}
	q := fmt.Sprintf(`moviebag_errors_total{namespace=%q, code=~%q}`, namespace, strings.Join(codes, "|"))
	// value is the sum of the series of code on svc.
	value := func(series []sample, svc, code string) (float64, bool) {
		sum, found := 0.0, false
		for _, s := range series {
			if s.Metric["service"] == svc && s.Metric["code"] == code {
				sum, found = sum+s.Value, true
			}
		}
		return sum, found
	}
	// rise is how much the series of code on svc rose from before to after, each series from its own value
	// before (0 for a series that was not there: a new pod's).
	rise := func(before, after []sample, svc, code string) float64 {
		was := map[string]float64{}
		for _, s := range before {
			was[fmt.Sprint(s.Metric)] = s.Value
		}
		total := 0.0
		for _, s := range after {
			if s.Metric["service"] == svc && s.Metric["code"] == code {
				total += s.Value - was[fmt.Sprint(s.Metric)]
			}
		}
		return total
	}
	before, err := prom.query(q)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		// Every catalog code's series starts at 0 when a pod starts (libs/metrics): it must be there already.
		if _, ok := value(before, c.service, c.code); !ok {
			t.Fatalf("%s: no series for service %s code %s before any was sent (got %s)", q, c.service, c.code, describe(before))
		}
	}
	start := time.Now()
	answered := map[string]int{}
	for _, c := range cases {
		statuses := map[string]int{}
		for range n {
			a, err := api.Call(context.Background(), c.method, c.path, "", c.body)
			if err != nil {
				t.Fatal(err)
			}
			statuses[fmt.Sprintf("%d %s", a.Status, a.Code)]++
			if a.Status == c.status && a.Code == c.code {
				answered[c.code]++
			}
		}
		if answered[c.code] != n {
			t.Errorf("%s %s: %d of %d answers were %d %s; all answers: %v", c.method, c.path, answered[c.code], n, c.status, c.code, statuses)
		}
	}
	took := eventually(t, time.Minute, 2*time.Second, "moviebag_errors_total up by the errors sent", func() error {
		after, err := prom.query(q)
		if err != nil {
			return err
		}
		var short []string
		for _, c := range cases {
			if r := rise(before, after, c.service, c.code); r < float64(answered[c.code]) {
				b, _ := value(before, c.service, c.code)
				a, _ := value(after, c.service, c.code)
				short = append(short, fmt.Sprintf("service %s code %s: rose by %v (in all %v -> %v), want at least %d", c.service, c.code, r, b, a, answered[c.code]))
			}
		}
		if len(short) > 0 {
			return fmt.Errorf("%s: %s", q, strings.Join(short, "; "))
		}
		for _, c := range cases {
			t.Logf("%s on %s: sent %d, answered %d, counted %v", c.code, c.service, n, answered[c.code], rise(before, after, c.service, c.code))
		}
		return nil
	})
	t.Logf("the errors were counted %v after the first was sent (%v after the last)", since(start), took)
}

// dashboardQueries runs every panel query of the dashboard, with its variables set as Grafana sets them when
// namespace moviebag and both services are selected, and each variable's label_values query; each must
// return something.
func dashboardQueries(t *testing.T, prom *promAPI, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dashboard.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	vars := map[string]string{"namespace": namespace, "service": "auth|movies", "route": ".*"}
	queries := d.Queries()
	if len(queries) == 0 {
		t.Fatalf("%s: no panel queries found", file)
	}
	start := time.Now()
	took := eventually(t, 2*time.Minute, 5*time.Second, "every dashboard query returning series", func() error {
		var empty []string
		for _, pq := range queries {
			q := dashboard.Interpolate(pq.Expr, vars, "1m", "1h")
			if m := dashboard.Uninterpolated(q); m != "" {
				return fmt.Errorf("%s: %s is not a variable this test knows: %s", pq, m, q)
			}
			series, err := prom.query(q)
			if err != nil {
				return fmt.Errorf("%s: %w", pq, err)
			}
			if len(series) == 0 {
				empty = append(empty, pq.String()+": "+q)
			}
		}
		if len(empty) > 0 {
			return fmt.Errorf("%d of %d queries return no series:\n%s", len(empty), len(queries), strings.Join(empty, "\n"))
		}
		return nil
	})
	for _, pq := range queries {
		series, err := prom.query(dashboard.Interpolate(pq.Expr, vars, "1m", "1h"))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d series", pq, len(series))
	}
	t.Logf("all %d panel queries returned series after %v", len(queries), took)

	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, err := v.QueryText()
		if err != nil {
			t.Fatal(err)
		}
		selector, label, err := dashboard.LabelValuesQuery(q)
		if err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		selector = dashboard.Interpolate(selector, vars, "1m", "1h")
		values, err := prom.labelValues(label, selector)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("variable %s (%s): %v", v.Name, q, values)
		switch want := map[string][]string{"namespace": {namespace}, "service": {"auth", "movies"}}[v.Name]; {
		case len(values) == 0:
			t.Errorf("variable %s: label_values(%s, %s) returned nothing", v.Name, selector, label)
		default:
			for _, w := range want {
				if !slices.Contains(values, w) {
					t.Errorf("variable %s: label_values(%s, %s) = %v, without %s", v.Name, selector, label, values, w)
				}
			}
		}
	}
	t.Logf("dashboard: %v in all", since(start))
}

// serviceDown scales movies to 0 and back. MoviebagServiceDown must fire within its `for` plus two
// evaluation intervals of the moment Prometheus has no movies target up any more (the rule's own
// condition), and the firing alert must be gone within two minutes of movies being back.
func serviceDown(t *testing.T, prom *promAPI, forDuration, eval time.Duration) {
	deployment, job := release+"-movies", release+"-movies"
	selector := "app.kubernetes.io/instance=" + release + ",app.kubernetes.io/name=movies"
	replicas := strings.TrimSpace(kubectl(t, "-n", namespace, "get", "deployment", deployment, "-o", "jsonpath={.spec.replicas}"))
	if n, err := strconv.Atoi(replicas); err != nil || n < 1 {
		t.Fatalf("deployment %s has %q replicas: want at least 1 to scale from", deployment, replicas)
	}
	t.Cleanup(func() {
		// Whatever happened above, movies ends as it was: same replicas, rolled out.
		if out, err := try(time.Minute, "kubectl", "-n", namespace, "scale", "deployment", deployment, "--replicas="+replicas); err != nil {
			t.Errorf("scaling %s back to %s: %v\n%s", deployment, replicas, err, out)
			return
		}
		if out, err := try(6*time.Minute, "kubectl", "-n", namespace, "rollout", "status", "deployment/"+deployment, "--timeout=300s"); err != nil {
			t.Errorf("%s back at %s replicas: %v\n%s", deployment, replicas, err, out)
		}
	})
	anyState := fmt.Sprintf(`ALERTS{alertname=%q, namespace=%q, job=%q}`, serviceDownAlert, namespace, job)
	firing := fmt.Sprintf(`ALERTS{alertname=%q, alertstate="firing", namespace=%q, job=%q}`, serviceDownAlert, namespace, job)
	upNow := fmt.Sprintf(`up{namespace=%q, job=%q} == 1`, namespace, job)

	// A clean start: movies up and the alert neither pending nor firing (a release installed again by
	// TestCluster can have left its job without targets for a while).
	took := eventually(t, 2*time.Minute, time.Second, serviceDownAlert+" neither pending nor firing for "+job+" before the scale-down", func() error {
		return wantSeries(prom, anyState, false)
	})
	t.Logf("%s inactive for %s (waited %v)", serviceDownAlert, job, took)

	scaled := time.Now()
	kubectl(t, "-n", namespace, "scale", "deployment", deployment, "--replicas=0")
	took = eventually(t, 3*time.Minute, time.Second, "no movies target up after the scale-down", func() error {
		return wantSeries(prom, upNow, false)
	})
	noTarget := time.Now()
	t.Logf("scaled %s to 0: no movies target up after %v", deployment, took)
	took = eventually(t, 3*time.Minute, 2*time.Second, "every movies pod gone", func() error {
		// Pods that ran to completion with the movies labels (TestCluster's NetworkPolicy probe) do not count.
		out, err := try(time.Minute, "kubectl", "-n", namespace, "get", "pods", "-l", selector, "-o", "name",
			"--field-selector", "status.phase!=Succeeded,status.phase!=Failed")
		if err != nil {
			return fmt.Errorf("kubectl get pods: %w: %s", err, out)
		}
		if strings.TrimSpace(out) != "" {
			return fmt.Errorf("still there: %s", strings.Join(strings.Fields(out), " "))
		}
		return nil
	})
	t.Logf("every movies pod gone %v after the scale-down (waited %v more)", since(scaled), took)

	limit := forDuration + 2*eval
	remaining := limit - time.Since(noTarget)
	eventually(t, max(remaining, 0), time.Second, fmt.Sprintf("%s firing within for (%v) + 2 evaluation intervals (%v) of no movies target up", serviceDownAlert, forDuration, eval), func() error {
		return wantSeries(prom, firing, true)
	})
	t.Logf("%s firing %v after no movies target was up (limit %v), %v after the scale-down", serviceDownAlert, since(noTarget), limit, since(scaled))
	// Only movies is down: the alert fires for its job and no other.
	others := fmt.Sprintf(`ALERTS{alertname=%q, job!=%q}`, serviceDownAlert, job)
	if err := wantSeries(prom, others, false); err != nil {
		t.Error(err)
	}

	scaledUp := time.Now()
	kubectl(t, "-n", namespace, "scale", "deployment", deployment, "--replicas="+replicas)
	kubectl(t, "-n", namespace, "rollout", "status", "deployment/"+deployment, "--timeout=300s")
	t.Logf("%s back at %s replicas, rolled out in %v", deployment, replicas, since(scaledUp))
	took = eventually(t, 2*time.Minute, time.Second, serviceDownAlert+" resolved once movies is back", func() error {
		return wantSeries(prom, firing, false)
	})
	t.Logf("%s resolved %v after the rollout (%v after the scale-up)", serviceDownAlert, took, since(scaledUp))
}

// wantSeries returns nil when query q returns series (want) or returns none (!want), else what it returned.
func wantSeries(prom *promAPI, q string, want bool) error {
	series, err := prom.query(q)
	if err != nil {
		return err
	}
	if (len(series) > 0) != want {
		return fmt.Errorf("%s returned %s", q, describe(series))
	}
	return nil
}

// eventually calls cond every interval until it returns nil and returns how long that took; once timeout has
// passed it fails the test with what, the time allowed and cond's last error.
func eventually(t *testing.T, timeout, interval time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	if err := poll.Within(timeout, interval, cond); err != nil {
		t.Fatalf("%s: not within %v: %v", what, timeout, err)
	}
	return since(start)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

// podInfo is a running pod of one of the services.
type podInfo struct {
	Name, App string
}

// servicePods lists the running auth and movies pods of the release that are not being deleted.
func servicePods() ([]podInfo, error) {
	out, err := try(time.Minute, "kubectl", "-n", namespace, "get", "pods", "-o", "json",
		"-l", "app.kubernetes.io/instance="+release+",app.kubernetes.io/name in (auth,movies)")
	if err != nil {
		return nil, fmt.Errorf("kubectl get pods: %w: %s", err, out)
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name              string            `json:"name"`
				Labels            map[string]string `json:"labels"`
				DeletionTimestamp *string           `json:"deletionTimestamp"`
			} `json:"metadata"`
			Status struct {
				Phase string `json:"phase"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("kubectl get pods: %w", err)
	}
	var pods []podInfo
	apps := map[string]int{}
	for _, p := range list.Items {
		if p.Metadata.DeletionTimestamp != nil || p.Status.Phase != "Running" {
			continue
		}
		app := p.Metadata.Labels["app.kubernetes.io/name"]
		apps[app]++
		pods = append(pods, podInfo{Name: p.Metadata.Name, App: app})
	}
	if apps["auth"] == 0 || apps["movies"] == 0 {
		return pods, fmt.Errorf("running pods of namespace %s: %v, want at least one of auth and of movies", namespace, apps)
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods, nil
}

// ruleFile is the part of the Prometheus rule file the test reads.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Record string `json:"record"`
			Alert  string `json:"alert"`
			For    string `json:"for"`
		} `json:"rules"`
	} `json:"groups"`
}

func loadRules(t *testing.T, file string) ruleFile {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(f.records()) == 0 {
		t.Fatalf("%s: no recording rules", file)
	}
	return f
}

// records returns the names of the recording rules, in file order.
func (f ruleFile) records() []string {
	var out []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				out = append(out, r.Record)
			}
		}
	}
	return out
}

// names returns the name of every rule, recording or alerting, in file order.
func (f ruleFile) names() []string {
	var out []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Record+r.Alert)
		}
	}
	return out
}

// alertFor returns the `for` of alert.
func (f ruleFile) alertFor(t *testing.T, alert string) time.Duration {
	t.Helper()
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != alert {
				continue
			}
			d, err := time.ParseDuration(r.For)
			if err != nil {
				t.Fatalf("alert %s: for %q: %v", alert, r.For, err)
			}
			return d
		}
	}
	t.Fatalf("%s has no alert %s", rulesFile, alert)
	return 0
}

// evaluationInterval reads the global evaluation_interval of the manifest's prometheus.yml.
func evaluationInterval(t *testing.T, manifest string) time.Duration {
	t.Helper()
	raw, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*evaluation_interval:\s*(\S+)\s*$`).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("%s: no evaluation_interval", manifest)
	}
	d, err := time.ParseDuration(string(m[1]))
	if err != nil {
		t.Fatalf("%s: evaluation_interval %q: %v", manifest, m[1], err)
	}
	return d
}

// promAPI asks Prometheus' HTTP API.
type promAPI struct {
	base string
	http *http.Client
}

// sample is one series of an instant query's result.
type sample struct {
	Metric map[string]string
	Value  float64
}

// describe prints series for failure messages: their labels and values, at most ten.
func describe(series []sample) string {
	if len(series) == 0 {
		return "no series"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d series:", len(series))
	for i, s := range series {
		if i == 10 {
			b.WriteString(" ...")
			break
		}
		keys := make([]string, 0, len(s.Metric))
		for k := range s.Metric {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		labels := make([]string, 0, len(keys))
		for _, k := range keys {
			labels = append(labels, fmt.Sprintf("%s=%q", k, s.Metric[k]))
		}
		fmt.Fprintf(&b, " {%s} %v;", strings.Join(labels, ", "), s.Value)
	}
	return b.String()
}

func (p *promAPI) get(path string, params url.Values, data any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s %v: %w", path, params, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("GET %s %v: %w", path, params, err)
	}
	var r struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("GET %s %v: HTTP %d, not the API's JSON: %.300s", path, params, resp.StatusCode, body)
	}
	if r.Status != "success" {
		return fmt.Errorf("GET %s %v: HTTP %d: %s: %s", path, params, resp.StatusCode, r.ErrorType, r.Error)
	}
	if err := json.Unmarshal(r.Data, data); err != nil {
		return fmt.Errorf("GET %s %v: data: %w", path, params, err)
	}
	return nil
}

// query runs an instant query, which must return a vector.
func (p *promAPI) query(q string) ([]sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: result type %q, want vector", q, data.ResultType)
	}
	var result []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	if err := json.Unmarshal(data.Result, &result); err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	out := make([]sample, 0, len(result))
	for _, r := range result {
		str, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64) // NaN and ±Inf too
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v: %w", q, r.Value[1], err)
		}
		out = append(out, sample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// labelValues returns the sorted values of label on the series selector matches (all series if empty).
func (p *promAPI) labelValues(label, selector string) ([]string, error) {
	params := url.Values{}
	if selector != "" {
		params.Set("match[]", selector)
	}
	var values []string
	if err := p.get("/api/v1/label/"+url.PathEscape(label)+"/values", params, &values); err != nil {
		return nil, err
	}
	sort.Strings(values)
	return values, nil
}

// loadedRule is a rule as Prometheus reports it.
type loadedRule struct {
	Name      string `json:"name"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
}

func (p *promAPI) rules() ([]loadedRule, error) {
	var data struct {
		Groups []struct {
			Rules []loadedRule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get("/api/v1/rules", url.Values{}, &data); err != nil {
		return nil, err
	}
	var out []loadedRule
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}
