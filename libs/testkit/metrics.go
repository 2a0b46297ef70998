package testkit

import (
	"bufio"
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moviebag/moviebag/libs/apierr"
	"github.com/moviebag/moviebag/libs/metrics"
)

// Scrape reads a service's /metrics at url, as Prometheus would, and returns
// each sample's value by its series, written as Series writes it.
func Scrape(t testing.TB, url string) map[string]float64 {
	t.Helper()
	r := CallAPI(t, "GET", url, "")
	if r.Status != 200 {
		t.Fatalf("GET %s: %d %s", url, r.Status, r.Body)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// The text format puts the value after the last space; the client
		// library writes no timestamps.
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("%s: unreadable sample %q", url, line)
		}
		samples[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return samples
}

// Series names one series of metric the way the text format writes it:
// labels alternate names and values, and are written sorted by name, as the
// Prometheus client library writes them.
func Series(metric string, labels ...string) string {
	type label struct{ name, value string }
	var ls []label
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, label{labels[i], labels[i+1]})
	}
	slices.SortFunc(ls, func(a, b label) int { return strings.Compare(a.name, b.name) })
	pairs := make([]string, len(ls))
	for i, l := range ls {
		pairs[i] = l.name + "=" + strconv.Quote(l.value)
	}
	return metric + "{" + strings.Join(pairs, ",") + "}"
}

// StartedAtZero fails the test unless samples, a Scrape of service taken
// before its first request, hold at zero moviebag_errors_total for every
// catalog code, moviebag_dependency_errors_total for each operation in ops,
// and each series in more.
func StartedAtZero(t testing.TB, samples map[string]float64, service string,
	ops map[metrics.Dependency][]metrics.Operation, more ...string,
) {
	t.Helper()
	var want []string
	for _, code := range apierr.Codes() {
		want = append(want, Series(metrics.ErrorsName, "service", service, "code", string(code), "status", strconv.Itoa(code.Status())))
	}
	for dep, depOps := range ops {
		for _, op := range depOps {
			want = append(want, Series(metrics.DependencyErrorsName,
				"service", service, "dependency", string(dep), "operation", string(op)))
		}
	}
	for _, s := range append(want, more...) {
		if v, ok := samples[s]; !ok {
			t.Errorf("%s is not exported before the first request", s)
		} else if v != 0 {
			t.Errorf("%s = %v before the first request, want 0", s, v)
		}
	}
}
