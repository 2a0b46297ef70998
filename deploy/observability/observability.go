// Package observability checks moviebag's Grafana dashboard and Prometheus rule file: strict decoding, PromQL
// parsing, metric names, and (TestLivePrometheus) every query against a real Prometheus scraping the stack.
// The dashboard's JSON is read with package dashboard.
//
// The files checked are the canonical ones shipped by the Helm chart, helm/moviebag/files/{grafana,prometheus},
// reached through their deploy/ symlinks.
package observability

import (
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
