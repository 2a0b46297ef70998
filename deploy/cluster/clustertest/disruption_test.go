package clustertest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moviebag/moviebag/deploy/cluster/load"
)

// TestDisruptions puts steady, mixed load through the Gateway (load.Run: 50 requests a second of public
// reads, authenticated creates and deletes, a login a second, a logout now and then) while the cluster
// rolls and kills the services' pods, and requires that no request fails. It runs from
// `make test-cluster-disruption` on a cluster that `cluster-up` has just installed (2 replicas of each
// service, the chart's defaults).
func TestDisruptions(t *testing.T) {
	env(t, "KUBECONFIG")
	gateway := env(t, "GATEWAY_URL")

	t.Run("helm upgrade that changes a config value of both services: 0 failed", func(t *testing.T) {
		underLoad(t, gateway, func(t *testing.T) {
			before := podUIDs(t)
			upgrade(t, "--set", "auth.config.logLevel=warn", "--set", "movies.config.logLevel=warn")
			after := podUIDs(t)
			for _, svc := range []string{"auth", "movies"} {
				if podsOf(before, svc) == podsOf(after, svc) {
					t.Errorf("%s pods were not replaced: the upgrade rolled nothing", svc)
				}
			}
		})
	})

	t.Run("kubectl delete pod of each replica of each service in turn: 0 failed", func(t *testing.T) {
		underLoad(t, gateway, func(t *testing.T) {
			for _, svc := range []string{"auth", "movies"} {
				pods := strings.Fields(kubectl(t, "-n", namespace, "get", "pods", "-l",
					"app.kubernetes.io/instance="+release+",app.kubernetes.io/name="+svc, "-o", "jsonpath={.items[*].metadata.name}"))
				if len(pods) < 2 {
					t.Fatalf("%s has %d pods, want at least 2 (the chart's default)", svc, len(pods))
				}
				for _, pod := range pods {
					t.Logf("deleting pod %s", pod)
					kubectl(t, "-n", namespace, "delete", "pod", pod, "--wait")
					kubectl(t, "-n", namespace, "rollout", "status", "deployment", release+"-"+svc, "--timeout=180s")
				}
			}
		})
	})
}

// underLoad runs disrupt while load.Run sends traffic through gateway: 15 s of load before it, 15 s
// after it, and then fails the test for every request that was not answered as expected.
func underLoad(t *testing.T, gateway string, disrupt func(t *testing.T)) {
	t.Helper()
	const settle = 15 * time.Second
	// The load's length is only known once the disruption is over: it runs until cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	var (
		rep      *load.Report
		err      error
		finished = make(chan struct{})
	)
	go func() {
		defer close(finished)
		rep, err = load.Run(ctx, load.Config{BaseURL: gateway, Duration: 30 * time.Minute, Logf: t.Logf})
	}()
	// Also when disrupt stops the test: the load (which logs through t) ends before the test does.
	defer func() { cancel(); <-finished }()
	time.Sleep(settle) // the load is steady before anything is disrupted
	start := time.Now()
	disrupt(t)
	t.Logf("disruption took %s", time.Since(start).Round(time.Second))
	time.Sleep(settle)
	cancel()
	<-finished
	if rep == nil {
		t.Fatalf("load: %v", err)
	}
	t.Logf("load: %s", rep)
	if n := rep.Failed(); n != 0 {
		for _, o := range rep.Failures {
			t.Logf("failed: %s", o)
		}
		t.Errorf("%d of %d requests failed during the disruption, want 0", n, rep.Sent())
	}
}
