package observability_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	grafana "github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/moviebag/moviebag/deploy/observability"
	"github.com/moviebag/moviebag/deploy/observability/dashboard"
	"github.com/moviebag/moviebag/libs/metrics"
)

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

func mustDashboard(t *testing.T) dashboard.Dashboard {
	t.Helper()
	d, err := dashboard.Parse(mustReadFile(t, observability.DashboardPath))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The deploy/ paths are relative symlinks to the chart's files, so there is one source.
func TestDeployFilesAreLinksToTheChart(t *testing.T) {
	for link, want := range map[string]string{
		observability.DashboardPath: "../../helm/moviebag/files/grafana/moviebag-overview.json",
		observability.RulesPath:     "../../helm/moviebag/files/prometheus/moviebag-rules.yaml",
	} {
		got, err := os.Readlink(link)
		if err != nil {
			t.Errorf("%s is not a symlink: %v", link, err)
			continue
		}
		if got != want {
			t.Errorf("%s -> %s, want -> %s", link, got, want)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(link), got)); err != nil {
			t.Errorf("%s points at a missing file: %v", link, err)
		}
	}
}

// The Grafana foundation SDK decodes the dashboard strictly (unknown fields, wrong types, missing required
// fields, panel options and field config per panel plugin, Prometheus targets) and validates it.
func TestDashboardStrict(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	// The dashboard file is Grafana's classic (v1) JSON model; dashboardv2 is a different schema.
	var d grafana.Dashboard //nolint:staticcheck // SA1019: see above
	if err := d.UnmarshalJSONStrict(mustReadFile(t, observability.DashboardPath)); err != nil {
		// A successful decode returns an empty, non-nil cog.BuildErrors.
		var errs cog.BuildErrors
		if !errors.As(err, &errs) || len(errs) > 0 {
			t.Fatalf("strict decode: %v", err)
		}
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if d.Title == nil || *d.Title == "" || d.Uid == nil || *d.Uid == "" {
		t.Errorf("dashboard needs a title and a uid")
	}
}

var datasourceRef = `{"type":"prometheus","uid":"${datasource}"}`

func compactJSON(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestDashboardVariables(t *testing.T) {
	d := mustDashboard(t)
	ds, ok := d.Var("datasource")
	if !ok || ds.Type != "datasource" || string(ds.Query) != `"prometheus"` {
		t.Errorf("want a datasource variable of type prometheus, got %+v", ds)
	}
	ns, ok := d.Var("namespace")
	if !ok {
		t.Fatal("no namespace variable")
	}
	// The local stack has no namespace label: All must be .*, which also matches the empty value.
	if !ns.IncludeAll || ns.AllValue != ".*" {
		t.Errorf("namespace variable: includeAll=%v allValue=%q, want true and .*", ns.IncludeAll, ns.AllValue)
	}
	svc, ok := d.Var("service")
	if !ok || !svc.IncludeAll {
		t.Errorf("want a service variable with All, got %+v", svc)
	}
	p := observability.NewParser()
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if got := compactJSON(t, v.Datasource); got != datasourceRef {
			t.Errorf("variable %s: datasource %s, want %s", v.Name, got, datasourceRef)
		}
		q, err := v.QueryText()
		if err != nil {
			t.Fatal(err)
		}
		sel, _, err := dashboard.LabelValuesQuery(q)
		if err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
			continue
		}
		if v.Definition != q {
			t.Errorf("variable %s: definition %q differs from query %q", v.Name, v.Definition, q)
		}
		sel = dashboard.Interpolate(sel, map[string]string{"namespace": ".*", "service": "auth", "route": ".*"}, "1m", "5m")
		if sel == "" {
			continue
		}
		expr, err := p.ParseExpr(sel)
		if err != nil {
			t.Errorf("variable %s: selector %q: %v", v.Name, sel, err)
			continue
		}
		for _, m := range observability.MetricNames(expr) {
			if !observability.KnownMetric(m) {
				t.Errorf("variable %s: unknown metric %s", v.Name, m)
			}
		}
	}
}

var hardCodedUID = regexp.MustCompile(`"uid"\s*:\s*"([^"$]*)"`)

// Every panel and target uses the datasource variable: no uid of one particular Grafana is baked in.
func TestDashboardDatasources(t *testing.T) {
	raw := mustReadFile(t, observability.DashboardPath)
	for _, m := range hardCodedUID.FindAllStringSubmatch(string(raw), -1) {
		switch m[1] {
		case "moviebag-overview", "-- Grafana --": // the dashboard's own uid; Grafana's built-in annotations
		default:
			t.Errorf("hard-coded uid %q", m[1])
		}
	}
	for _, p := range mustDashboard(t).AllPanels() {
		if got := compactJSON(t, p.Datasource); got != datasourceRef {
			t.Errorf("panel %d %q: datasource %s, want %s", p.ID, p.Title, got, datasourceRef)
		}
		for _, tg := range p.Targets {
			if got := compactJSON(t, tg.Datasource); got != datasourceRef {
				t.Errorf("panel %d %q target %s: datasource %s, want %s", p.ID, p.Title, tg.RefID, got, datasourceRef)
			}
		}
	}
}

func TestDashboardPanels(t *testing.T) {
	d := mustDashboard(t)
	panels := d.AllPanels()
	if len(panels) == 0 {
		t.Fatal("no panels")
	}
	ids := map[int]bool{}
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("duplicate panel id %d", p.ID)
		}
		ids[p.ID] = true
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %d %q has no targets", p.ID, p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %d %q: missing or duplicate refId %q", p.ID, p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %d %q target %s: empty expr", p.ID, p.Title, tg.RefID)
			}
		}
	}
	// What an operator needs on one screen (traffic, errors, latency, saturation, the SLO budgets and burn
	// rates, logins, key refreshes, dependency failures), each found by the metric its queries read.
	wantMetrics := map[string]string{
		"request rate":                metrics.RequestsName,
		"errors by envelope code":     metrics.ErrorsName,
		"latency quantiles":           metrics.DurationName + "_bucket",
		"in-flight":                   metrics.InFlightName,
		"memory":                      "process_resident_memory_bytes",
		"goroutines":                  "go_goroutines",
		"availability budget left":    "namespace_service:slo_availability_error_budget_remaining:ratio30d",
		"latency budget left":         "namespace_service:slo_latency_error_budget_remaining:ratio30d",
		"availability burn rate (1h)": "namespace_service:slo_availability_error_ratio:rate1h",
		"latency burn rate (1h)":      "namespace_service:slo_latency_error_ratio:rate1h",
		"login results":               metrics.LoginAttemptsName,
		"JWKS refreshes":              metrics.JWKSRefreshesName,
		"dependency errors":           metrics.DependencyErrorsName,
	}
	used := map[string]bool{}
	p := observability.NewParser()
	for _, q := range d.Queries() {
		expr, err := p.ParseExpr(dashboard.Interpolate(q.Expr, map[string]string{"namespace": ".*", "service": "auth", "route": ".*"}, "1m", "5m"))
		if err != nil {
			continue // reported by TestDashboardQueriesParse
		}
		for _, m := range observability.MetricNames(expr) {
			used[m] = true
		}
	}
	for what, metric := range wantMetrics {
		if !used[metric] {
			t.Errorf("no panel shows %s (%s)", what, metric)
		}
	}
	for _, q := range d.Queries() {
		for _, st := range []string{`status=~"5.."`, `status=~"4.."`} {
			if strings.Contains(q.Expr, st) {
				used[st] = true
			}
		}
		for _, quantile := range []string{"histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,"} {
			if strings.Contains(q.Expr, quantile) {
				used[quantile] = true
			}
		}
	}
	for _, s := range []string{`status=~"5.."`, `status=~"4.."`, "histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,"} {
		if !used[s] {
			t.Errorf("no panel query contains %s", s)
		}
	}
}

// Every panel query parses with Prometheus' own parser once Grafana's variables are substituted, selects only
// metrics the services export or the rule file records, and filters on the namespace and service variables.
func TestDashboardQueriesParse(t *testing.T) {
	d := mustDashboard(t)
	recorded := recordedNames(t)
	p := observability.NewParser()
	for _, q := range d.Queries() {
		for _, vars := range []map[string]string{
			{"namespace": ".*", "service": "auth", "route": ".*"},
			{"namespace": "prod", "service": "(auth|movies)", "route": "/api/movies/:id"},
		} {
			src := dashboard.Interpolate(q.Expr, vars, "1m", "5m")
			if strings.Contains(src, "$") {
				t.Errorf("%s: variable left after substitution: %s", q, src)
			}
			expr, err := p.ParseExpr(src)
			if err != nil {
				t.Errorf("%s: %v\n%s", q, err, src)
				continue
			}
			for _, m := range observability.MetricNames(expr) {
				if !observability.KnownMetric(m) && !recorded[m] {
					t.Errorf("%s: metric %s is neither exported by the services nor recorded by the rules", q, m)
				}
			}
		}
		if !strings.Contains(q.Expr, `namespace=~"$namespace"`) || !strings.Contains(q.Expr, `service=~"$service"`) {
			t.Errorf("%s: every selector should filter on namespace=~\"$namespace\" and service=~\"$service\": %s", q, q.Expr)
		}
	}
}
