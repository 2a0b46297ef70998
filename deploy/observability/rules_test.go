package observability_test

import (
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/moviebag/moviebag/deploy/observability"
)

func mustRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.ParseFile(observability.RulesPath, false, model.UTF8Validation, observability.NewParser(), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		t.FailNow()
	}
	return groups
}

func recordedNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, g := range mustRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				names[r.Record] = true
			}
		}
	}
	return names
}

// Every rule parses (rulefmt validates names, labels and annotation templates too) and selects only metrics
// the services export, or series recorded earlier in the file.
func TestRulesParse(t *testing.T) {
	groups := mustRules(t)
	p := observability.NewParser()
	recorded := map[string]bool{}
	alerts := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			name := r.Record + r.Alert
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s/%s: %v", g.Name, name, err)
				continue
			}
			for _, m := range observability.MetricNames(expr) {
				if !observability.KnownMetric(m) && !recorded[m] {
					t.Errorf("%s/%s: metric %s is neither exported by the services nor recorded before this rule", g.Name, name, m)
				}
			}
			if r.Record != "" {
				recorded[r.Record] = true
			} else {
				alerts++
			}
		}
	}
	if alerts == 0 {
		t.Error("no alerts")
	}
}

// RuleJobMatcher is the matcher every selector of every rule carries (kubernetes-mixin style): the Helm chart
// replaces exactly this text with monitoring.prometheusRule.selector, the release's jobs and namespace.
const ruleJobMatcher = `job=~"(.+-)?(auth|movies)"`

// Every vector selector of every rule expression, recorded series included, carries the job matcher, so that
// the chart's selector scopes the whole rule: no other application's series and no other release's reach it.
func TestRulesScoped(t *testing.T) {
	p := observability.NewParser()
	for _, g := range mustRules(t).Groups {
		for _, r := range g.Rules {
			name := r.Record + r.Alert
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s/%s: %v", g.Name, name, err)
				continue
			}
			n := 0
			parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
				vs, ok := node.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				n++
				if !slices.ContainsFunc(vs.LabelMatchers, func(m *labels.Matcher) bool {
					return m.Name == "job" && m.Type == labels.MatchRegexp && m.Value == "(.+-)?(auth|movies)"
				}) {
					t.Errorf("%s/%s: selector %s lacks %s: the rule would read every job's series", g.Name, name, vs, ruleJobMatcher)
				}
				return nil
			})
			if got := strings.Count(r.Expr, ruleJobMatcher); got != n {
				t.Errorf("%s/%s: %d selectors but the matcher text %s appears %d times: the chart replaces the text, so write it exactly so", g.Name, name, n, ruleJobMatcher, got)
			}
		}
	}
}

var heading = regexp.MustCompile(`(?m)^##+ +(.+?)\s*$`)

// githubAnchor is the anchor GitHub gives a Markdown heading.
func githubAnchor(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Every alert has a severity, a summary, a description and a runbook_url that leads to a section of
// docs/runbook.md named after it.
func TestAlertsAnnotatedWithRunbook(t *testing.T) {
	runbook := string(mustReadFile(t, observability.RunbookPath))
	anchors := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(runbook, -1) {
		anchors[githubAnchor(m[1])] = true
	}
	for _, g := range mustRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			switch r.Labels["severity"] {
			case "critical", "warning":
			default:
				t.Errorf("%s: severity %q, want critical (page) or warning (ticket)", r.Alert, r.Labels["severity"])
			}
			for _, k := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[k]) == "" {
					t.Errorf("%s: no %s annotation", r.Alert, k)
				}
			}
			u, err := url.Parse(r.Annotations["runbook_url"])
			if err != nil {
				t.Errorf("%s: runbook_url: %v", r.Alert, err)
				continue
			}
			if !strings.HasSuffix(u.Path, "/docs/runbook.md") {
				t.Errorf("%s: runbook_url %s does not point into docs/runbook.md", r.Alert, u)
			}
			if u.Fragment != strings.ToLower(r.Alert) || !anchors[u.Fragment] {
				t.Errorf("%s: runbook_url anchor #%s: want #%s and a section \"## %s\" in docs/runbook.md", r.Alert, u.Fragment, strings.ToLower(r.Alert), r.Alert)
			}
		}
	}
}

var (
	testAlertname = regexp.MustCompile(`(?m)^\s*alertname:\s*(\S+)\s*$`)
	testFires     = regexp.MustCompile(`(?m)^\s*alertname:\s*(\S+)\s*\n\s*exp_alerts:\s*\n\s*- exp_labels`)
)

// Every alert has promtool unit tests in deploy/prometheus/tests that expect it to fire and to stay silent
// (promtool itself runs them: make test-observability-static).
func TestEveryAlertHasPromtoolTests(t *testing.T) {
	files, err := filepath.Glob(observability.RuleTestsGlob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool tests in %s: %v", observability.RuleTestsGlob, err)
	}
	fires, mentioned := map[string]int{}, map[string]int{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range testAlertname.FindAllStringSubmatch(string(src), -1) {
			mentioned[m[1]]++
		}
		for _, m := range testFires.FindAllStringSubmatch(string(src), -1) {
			fires[m[1]]++
		}
	}
	for _, g := range mustRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if fires[r.Alert] == 0 {
				t.Errorf("%s: no promtool test expects it to fire", r.Alert)
			}
			if mentioned[r.Alert]-fires[r.Alert] == 0 {
				t.Errorf("%s: no promtool test expects it to stay silent", r.Alert)
			}
		}
	}
}
