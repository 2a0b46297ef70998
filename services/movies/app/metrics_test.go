package app_test

import (
	"testing"

	"github.com/moviebag/moviebag/libs/metrics"
	"github.com/moviebag/moviebag/libs/testkit"
)

// Every series that dashboards and alerts read exists from the first scrape,
// at zero: rate() and absent() see it before the first failure.
func TestMetricsStartAtZero(t *testing.T) {
	f := startMovies(t)
	got := testkit.Scrape(t, f.AdminURL+"/metrics")
	testkit.StartedAtZero(t, got, "movies",
		map[metrics.Dependency][]metrics.Operation{
			metrics.MongoDB: {metrics.Insert, metrics.Find, metrics.Update, metrics.Count, metrics.Delete},
			metrics.Redis:   {metrics.Set, metrics.Get, metrics.Exists, metrics.Publish},
		},
		testkit.Series(metrics.JWKSRefreshesName, "service", "movies", "result", "failure"),
	)
	// The keys were fetched once at start.
	if s := testkit.Series(metrics.JWKSRefreshesName, "service", "movies", "result", "success"); got[s] != 1 {
		t.Errorf("%s = %v, want 1", s, got[s])
	}
}
