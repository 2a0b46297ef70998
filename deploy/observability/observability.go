// Package observability checks moviebag's Grafana dashboard and Prometheus rule file: strict decoding, PromQL
// parsing, metric names, and (TestLivePrometheus) every query against a real Prometheus scraping the stack.
//
// The files checked are the canonical ones shipped by the Helm chart, helm/moviebag/files/{grafana,prometheus},
// reached through their deploy/ symlinks.
package observability

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/moviebag/moviebag/libs/metrics"
)

// Paths of the checked files, relative to this package's directory.
const (
	DashboardPath = "../grafana/moviebag-overview.json"
	RulesPath     = "../prometheus/moviebag-rules.yaml"
	RuleTestsGlob = "../prometheus/tests/*.yaml"
	RunbookPath   = "../../docs/runbook.md"
)

// KnownMetric reports whether name is exported by the services (libs/metrics lists their names, the one list
// the services register from; a histogram also exposes _bucket, _count and _sum), is a Go/process collector
// metric, or is one of the names Prometheus itself adds to every target (up, scrape_*). Recording rule names
// are checked separately.
func KnownMetric(name string) bool {
	exported := metrics.Exported()
	if _, ok := exported[name]; ok {
		return true
	}
	for base, typ := range exported {
		if typ != metrics.Histogram {
			continue
		}
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if name == base+suffix {
				return true
			}
		}
	}
	if name == "up" || strings.HasPrefix(name, "scrape_") {
		return true
	}
	return strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_")
}

// NewParser returns Prometheus' own PromQL parser with its default options.
func NewParser() parser.Parser {
	return parser.NewParser(parser.Options{})
}

// MetricNames returns the sorted, distinct metric names selected anywhere in expr.
func MetricNames(expr parser.Expr) []string {
	seen := map[string]bool{}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			name := vs.Name
			if name == "" {
				for _, m := range vs.LabelMatchers {
					if m.Name == "__name__" {
						name = m.Value
					}
				}
			}
			if name != "" {
				seen[name] = true
			}
		}
		return nil
	})
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Query is one PromQL query of a dashboard panel.
type Query struct {
	PanelID    int
	PanelTitle string
	PanelType  string
	RefID      string
	Expr       string
	Instant    bool
}

// String names the query for test messages.
func (q Query) String() string {
	return fmt.Sprintf("panel %d %q target %s", q.PanelID, q.PanelTitle, q.RefID)
}

// RawPanel is the part of a dashboard panel the checks read (the strict decoding covers the rest).
type RawPanel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []RawTarget     `json:"targets"`
	Panels     []RawPanel      `json:"panels"` // a collapsed row's panels
}

// RawTarget is one query of a panel.
type RawTarget struct {
	RefID      string          `json:"refId"`
	Expr       string          `json:"expr"`
	Instant    bool            `json:"instant"`
	Datasource json.RawMessage `json:"datasource"`
}

// RawVariable is one templating variable.
type RawVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource json.RawMessage `json:"datasource"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

// RawDashboard is the part of the dashboard JSON the checks read.
type RawDashboard struct {
	UID        string     `json:"uid"`
	Title      string     `json:"title"`
	Panels     []RawPanel `json:"panels"`
	Templating struct {
		List []RawVariable `json:"list"`
	} `json:"templating"`
}

// ParseDashboard decodes the parts of a dashboard the checks read.
func ParseDashboard(raw []byte) (RawDashboard, error) {
	var d RawDashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, fmt.Errorf("decode dashboard: %w", err)
	}
	return d, nil
}

// AllPanels returns the panels, rows' nested panels included, rows themselves excluded.
func (d RawDashboard) AllPanels() []RawPanel {
	var out []RawPanel
	var walk func([]RawPanel)
	walk = func(ps []RawPanel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return out
}

// Queries returns every panel target's query, in panel order.
func (d RawDashboard) Queries() []Query {
	var qs []Query
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			qs = append(qs, Query{PanelID: p.ID, PanelTitle: p.Title, PanelType: p.Type, RefID: t.RefID, Expr: t.Expr, Instant: t.Instant})
		}
	}
	return qs
}

// Variable returns the templating variable called name.
func (d RawDashboard) Variable(name string) (RawVariable, bool) {
	for _, v := range d.Templating.List {
		if v.Name == name {
			return v, true
		}
	}
	return RawVariable{}, false
}

// Interpolate replaces Grafana's variables in a query the way Grafana would for the given values: template
// variables ($name, ${name}, ${name:regex}) from vars, and the built-in intervals ($__rate_interval,
// $__interval, $__range) from intervals. Longer names are replaced first so $__rate_interval is not read as
// $__rate followed by text.
func Interpolate(expr string, vars map[string]string, rateInterval, rangeInterval string) string {
	repl := map[string]string{
		"$__rate_interval": rateInterval,
		"$__interval":      rateInterval,
		"$__range":         rangeInterval,
	}
	for name, val := range vars {
		repl["${"+name+":regex}"] = val
		repl["${"+name+"}"] = val
		repl["$"+name] = val
	}
	keys := make([]string, 0, len(repl))
	for k := range repl {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) > len(keys[j])
		}
		return keys[i] < keys[j]
	})
	pairs := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		pairs = append(pairs, k, repl[k])
	}
	return strings.NewReplacer(pairs...).Replace(expr)
}

// LabelValuesQuery splits a Grafana Prometheus variable query "label_values(selector, label)" into its
// selector (empty when absent) and label.
func LabelValuesQuery(q string) (selector, label string, err error) {
	q = strings.TrimSpace(q)
	if !strings.HasPrefix(q, "label_values(") || !strings.HasSuffix(q, ")") {
		return "", "", fmt.Errorf("not a label_values() query: %q", q)
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")")
	i := strings.LastIndex(inner, ",")
	if i < 0 {
		return "", strings.TrimSpace(inner), nil
	}
	return strings.TrimSpace(inner[:i]), strings.TrimSpace(inner[i+1:]), nil
}

// VariableQuery returns the query text of a query variable, whether stored as a string or as the Prometheus
// query editor's object {"query": ...}.
func (v RawVariable) VariableQuery() (string, error) {
	var s string
	if err := json.Unmarshal(v.Query, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(v.Query, &obj); err != nil {
		return "", fmt.Errorf("variable %s: query is neither a string nor an object: %w", v.Name, err)
	}
	return obj.Query, nil
}
