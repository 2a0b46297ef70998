// Package dashboard reads a Grafana dashboard's JSON as the checks need it: its panels, their queries and its
// templating variables, and Grafana's interpolation of those variables into a query. It needs nothing but
// the standard library, so that every module that checks the dashboard against a Prometheus (deploy/observability
// against the local stack, deploy/k8s/cluster's clustertest against the test cluster) reads it with this one copy.
package dashboard

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

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

// Panel is the part of a dashboard panel the checks read (the strict decoding covers the rest).
type Panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Targets    []Target        `json:"targets"`
	Panels     []Panel         `json:"panels"` // a collapsed row's panels
}

// Target is one query of a panel.
type Target struct {
	RefID      string          `json:"refId"`
	Expr       string          `json:"expr"`
	Instant    bool            `json:"instant"`
	Datasource json.RawMessage `json:"datasource"`
}

// Variable is one templating variable.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource json.RawMessage `json:"datasource"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

// Dashboard is the part of the dashboard JSON the checks read.
type Dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []Panel `json:"panels"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Parse decodes the parts of a dashboard the checks read.
func Parse(raw []byte) (Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, fmt.Errorf("decode dashboard: %w", err)
	}
	return d, nil
}

// AllPanels returns the panels, rows' nested panels included, rows themselves excluded.
func (d Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
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
func (d Dashboard) Queries() []Query {
	var qs []Query
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			qs = append(qs, Query{PanelID: p.ID, PanelTitle: p.Title, PanelType: p.Type, RefID: t.RefID, Expr: t.Expr, Instant: t.Instant})
		}
	}
	return qs
}

// Var returns the templating variable called name.
func (d Dashboard) Var(name string) (Variable, bool) {
	for _, v := range d.Templating.List {
		if v.Name == name {
			return v, true
		}
	}
	return Variable{}, false
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

// QueryText returns the query text of a query variable, whether stored as a string or as the Prometheus
// query editor's object {"query": ...}.
func (v Variable) QueryText() (string, error) {
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

// leftVariable is a Grafana variable, or a built-in one, as it appears in a query.
var leftVariable = regexp.MustCompile(`\$\{?[A-Za-z_]\w*`)

// Uninterpolated returns the first variable still in q (one Interpolate was given no value for), or "".
func Uninterpolated(q string) string { return leftVariable.FindString(q) }
