package clustertest

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moviebag/moviebag/deploy/k8s/cluster/load"
)

// services are the release's Deployments whose replicas must stand on different nodes.
var services = []string{"auth", "movies"}

// nodesOf maps each Running, not terminating pod of the release's app name to its node.
func nodesOf(t *testing.T, name string) map[string]string {
	t.Helper()
	return podNodes(t, namespace, "app.kubernetes.io/instance="+release+",app.kubernetes.io/name="+name)
}

// podNodes maps each Running, not terminating pod of namespace ns that selector selects to its node.
func podNodes(t *testing.T, ns, selector string) map[string]string {
	t.Helper()
	out := kubectl(t, "-n", ns, "get", "pods", "-l", selector,
		"-o", `jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase} {.metadata.deletionTimestamp}{"\n"}{end}`)
	pods := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[2] == "Running" {
			pods[f[0]] = f[1]
		}
	}
	return pods
}

// checkSpread fails the test unless the replicas of each service, and of CoreDNS, stand on as many
// different nodes as there are replicas (the chart's topology spread over kubernetes.io/hostname does it,
// and deploy/k8s/cluster/manifests/coredns.yaml's).
func checkSpread(t *testing.T) {
	t.Helper()
	// CoreDNS's pods by its Deployment's own selector: each shape of cluster labels them its way.
	var match map[string]string
	if err := json.Unmarshal([]byte(kubectl(t, "-n", "kube-system", "get", "deployment", "coredns", "-o", "jsonpath={.spec.selector.matchLabels}")), &match); err != nil {
		t.Fatalf("CoreDNS's selector: %v", err)
	}
	var selector []string
	for k, v := range match {
		selector = append(selector, k+"="+v)
	}
	sets := map[string]map[string]string{"CoreDNS": podNodes(t, "kube-system", strings.Join(selector, ","))}
	for _, svc := range services {
		sets[svc] = nodesOf(t, svc)
	}
	for _, svc := range append(slices.Clone(services), "CoreDNS") {
		pods := sets[svc]
		if len(pods) < 2 {
			t.Errorf("%s: %d running pods, want at least 2", svc, len(pods))
			continue
		}
		var nodes []string
		for _, n := range pods {
			if !slices.Contains(nodes, n) {
				nodes = append(nodes, n)
			}
		}
		if len(nodes) != len(pods) {
			t.Errorf("%s: %d pods on %d nodes, want each on a node of its own: %v", svc, len(pods), len(nodes), pods)
		} else {
			t.Logf("%s: %v", svc, pods)
		}
	}
}

// clusterNodes lists the cluster's nodes, and those of them that are workers (no control-plane role).
func clusterNodes(t *testing.T) (all, workers []string) {
	t.Helper()
	all = strings.Fields(kubectl(t, "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"))
	workers = strings.Fields(kubectl(t, "get", "nodes", "-l", "!node-role.kubernetes.io/control-plane", "-o", "jsonpath={.items[*].metadata.name}"))
	return all, workers
}

// nodeLost is what clients may see while a node is lost and its pods are still the Services' endpoints:
// any failure (the Gateway's 502 or 504 for a request sent to a pod that no longer answers).
func nodeLost(w *load.Window) load.Degradation {
	return load.Degradation{Name: "node lost", Window: w, Allow: func(load.Outcome) bool { return true }}
}

// endpointsOn counts the ready endpoints of the release's services that are on node.
func endpointsOn(t *testing.T, node string) int {
	t.Helper()
	out, err := try(30*time.Second, "kubectl", "-n", namespace, "get", "endpointslices", "-l", "app.kubernetes.io/instance="+release,
		"-o", `jsonpath={range .items[*].endpoints[*]}{.nodeName} {.conditions.ready}{"\n"}{end}`)
	if err != nil {
		return -1
	}
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if l == node+" true" {
			n++
		}
	}
	return n
}

// loseNode kills a worker that runs service replicas and no dev database (cluster.sh kill-node: its
// kubelet, containerd, kube-proxy, kube-router and every process of its pods at once, its link down)
// under load. Requests may fail from the kill until its pods have left the Services' endpoints (the node
// controller marks it NotReady after --node-monitor-grace-period, the endpoints' pods then turn unready)
// and 10 s after, for the Gateway to follow; none after that. It reports both times and when the lost
// replicas ran elsewhere (after the pods' unreachable toleration, which the API server defaults), then
// brings the node back.
func loseNode(t *testing.T, gateway string) {
	_, workers := clusterNodes(t)
	var node string
	for _, w := range workers {
		busy := false
		for _, db := range []string{"redis", "mongodb"} {
			for _, n := range nodesOf(t, db) {
				busy = busy || n == w
			}
		}
		if !busy && endpointsOn(t, w) > 0 {
			node = w
			break
		}
	}
	if node == "" {
		t.Fatalf("no worker of %v runs service replicas without a dev database", workers)
	}
	short := node[strings.LastIndex(node, "-")+1:]
	script := filepath.Join(repoRoot(t), "deploy/k8s/cluster/cluster.sh")
	lost := map[string]bool{}
	for _, svc := range services {
		for pod, n := range nodesOf(t, svc) {
			if n == node {
				lost[pod] = true
			}
		}
	}
	w := &load.Window{}
	var killed, unendpointed, elsewhere time.Time
	rep := underLoad(t, load.Config{BaseURL: gateway, Expected: []load.Degradation{nodeLost(w)}, SlowAfter: slowAfter}, func(t *testing.T) {
		w.Open()
		killed = time.Now()
		sh(t, time.Minute, script, "kill-node", short)
		t.Logf("node %s lost (pods %v)", node, lost)
		waitFor(t, 3*time.Minute, "no ready endpoint on "+node, func() bool { return endpointsOn(t, node) == 0 })
		unendpointed = time.Now()
		w.CloseAt(unendpointed.Add(10 * time.Second))
		t.Logf("its endpoints gone %s after the kill", unendpointed.Sub(killed).Round(time.Second))
		waitFor(t, 10*time.Minute, "every service's replicas running on the other nodes", func() bool {
			for _, svc := range services {
				pods := nodesOf(t, svc)
				running := 0
				for pod, n := range pods {
					if n != node && !lost[pod] {
						running++
					}
				}
				if running < 2 {
					return false
				}
			}
			return true
		})
		elsewhere = time.Now()
		t.Logf("its replicas running on other nodes %s after the kill", elsewhere.Sub(killed).Round(time.Second))
		time.Sleep(10 * time.Second) // past the window: every request must succeed again
	})
	if rep.Tolerated() > 0 {
		t.Logf("node lost: %d requests failed (the load's line above says how), sent from %s after the kill until %s after",
			rep.Tolerated(), rep.FirstTolerated.Sub(killed).Round(100*time.Millisecond), rep.LastTolerated.Sub(killed).Round(100*time.Millisecond))
	}
	t.Logf("node lost: clients saw failures for %s (endpoints left it %s after the kill); replicas elsewhere after %s",
		rep.LastTolerated.Sub(killed).Round(100*time.Millisecond), unendpointed.Sub(killed).Round(time.Second), elsewhere.Sub(killed).Round(time.Second))
	sh(t, 5*time.Minute, script, "start-node", short)
	t.Logf("node %s back and Ready", node)
	waitFor(t, 3*time.Minute, "the lost pods gone", func() bool {
		for _, svc := range services {
			out, _ := try(30*time.Second, "kubectl", "-n", namespace, "get", "pods", "-l", "app.kubernetes.io/name="+svc, "-o", "jsonpath={.items[*].metadata.name}")
			for _, p := range strings.Fields(out) {
				if lost[p] {
					return false
				}
			}
		}
		return true
	})
}

// drainStorage drains the node (or nodes) of the dev Redis and MongoDB under load, only of them (the
// drain's pod selector), and waits for both to be Ready on another node. Their volumes are directories
// that every node of this cluster sees (deploy/k8s/cluster/provisioner), so they move with their data. While
// they move, clients may see what the Redis and MongoDB outages allow, until 30 s after both are Ready;
// nothing else may fail, and what was stored before must still be there.
func drainStorage(t *testing.T, gateway string) *load.Report {
	w := &load.Window{}
	var start, ready time.Time
	rep := underLoad(t, load.Config{BaseURL: gateway, Expected: []load.Degradation{load.RedisOutage(w), load.MongoOutage(w)}, SlowAfter: slowAfter},
		func(t *testing.T) {
			from := map[string]string{}
			for _, db := range []string{"redis", "mongodb"} {
				for _, n := range nodesOf(t, db) {
					from[db] = n
				}
			}
			// Both move to one node: the control plane's, or the first worker when they run on the control
			// plane's; every other node is cordoned meanwhile. So a worker lost after this runs neither (a
			// StatefulSet's pod on a lost node is replaced only once the node is back).
			all, workers := clusterNodes(t)
			dest := ""
			for _, n := range append(slices.DeleteFunc(slices.Clone(all), func(n string) bool { return slices.Contains(workers, n) }), workers...) {
				if dest == "" && n != from["redis"] && n != from["mongodb"] {
					dest = n
				}
			}
			drained := map[string]bool{}
			for _, n := range all {
				if n != dest && n != from["redis"] && n != from["mongodb"] {
					kubectl(t, "cordon", n)
					drained[n] = true
				}
			}
			w.Open()
			start = time.Now()
			draining := map[string]bool{}
			for _, n := range from {
				if draining[n] {
					continue
				}
				draining[n], drained[n] = true, true
				t.Logf("draining %s of the dev databases (%v)", n, from)
				sh(t, 6*time.Minute, "kubectl", "drain", n, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=5m",
					"--pod-selector", "app.kubernetes.io/name in (redis,mongodb)")
			}
			waitFor(t, 5*time.Minute, "Redis and MongoDB Ready on other nodes", func() bool {
				for db, old := range from {
					out, _ := try(30*time.Second, "kubectl", "-n", namespace, "get", "pods", "-l", "app.kubernetes.io/instance="+release+",app.kubernetes.io/name="+db,
						"-o", `jsonpath={range .items[*]}{.spec.nodeName} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
					node, status, _ := strings.Cut(strings.TrimSpace(out), " ")
					if node == "" || node == old || status != "True" {
						return false
					}
				}
				return true
			})
			ready = time.Now()
			w.CloseAt(ready.Add(recovery))
			t.Logf("Redis and MongoDB moved from %v and Ready in %s", from, ready.Sub(start).Round(time.Second))
			for n := range drained {
				kubectl(t, "uncordon", n)
			}
			time.Sleep(recovery)
		})
	logOutage(t, rep, start, ready)
	return rep
}
