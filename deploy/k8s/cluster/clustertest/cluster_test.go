// Package clustertest proves the charts on the real cluster that `make cluster-up` builds: the umbrella
// chart installed with its defaults into a Pod Security "restricted" namespace, helm test, the end-to-end
// walk through the Gateway and through the Ingress, NetworkPolicy enforcement, upgrades that restart
// nothing or roll the pods, and the README's command for any cluster with storage outside the chart;
// and (TestClusterMonitoring) the in-cluster Prometheus scraping, recording and alerting on it.
//
// It runs from `make test-cluster`, which brings the cluster up, exports the lines cluster-up ends
// with (KUBECONFIG, GATEWAY_URL, INGRESS_URL, PROMETHEUS_URL) and takes the cluster down afterwards; then
// again on the managed shape (CLUSTER_SHAPE=managed, shape_test.go), whose names are all different.
package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// env returns the variable cluster-up printed, or stops the test run: without a cluster there is
// nothing to test, and a silent skip would hide it.
func env(t *testing.T, key string) string {
	t.Helper()
	checkShape(t)
	v := os.Getenv(key)
	if v == "" {
		t.Fatalf("%s is not set: run these tests with `make test-cluster` (it brings the cluster up and sets it)", key)
	}
	return v
}

// chartDir is the copy of the umbrella chart, with its dependencies built, that cluster-up installed.
func chartDir(t *testing.T) string {
	t.Helper()
	state := os.Getenv("CLUSTER_STATE")
	if state == "" {
		// As cluster.sh names it: CLUSTER_NAME, else the shape's name, else moviebag.
		name := os.Getenv("CLUSTER_NAME")
		if name == "" {
			name = shapeName
		}
		state = filepath.Join(repoRoot(t), ".data/cluster")
		if name != "" && name != "moviebag" {
			state += "-" + name
		}
	}
	return filepath.Join(state, "charts/moviebag")
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// sh runs a command with a deadline and returns its standard output; a failure ends the test with the
// command, its output and its error.
func sh(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	out, err := try(timeout, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func try(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return sh(t, 2*time.Minute, "kubectl", args...)
}

// TestCluster runs the checks in order: each later one changes what the earlier ones looked at.
func TestCluster(t *testing.T) {
	env(t, "KUBECONFIG")
	ingress := env(t, "INGRESS_URL")

	t.Run("installed into a restricted namespace, every pod Ready", func(t *testing.T) {
		label := kubectl(t, "get", "namespace", namespace, "-o", `jsonpath={.metadata.labels.pod-security\.kubernetes\.io/enforce}`)
		if label != "restricted" {
			t.Fatalf("namespace %s: Pod Security enforce label %q, want restricted", namespace, label)
		}
		kubectl(t, "-n", namespace, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=300s")
		pods := kubectl(t, "-n", namespace, "get", "pods", "-o", "jsonpath={range .items[*]}{.metadata.labels.app\\.kubernetes\\.io/name}{\"\\n\"}{end}")
		want := []string{"auth", "movies"}
		if shape.inChartStores {
			want = append(want, "mongodb", "redis")
		}
		for _, want := range want {
			if !strings.Contains(pods, want+"\n") {
				t.Errorf("no %s pod among %q", want, pods)
			}
		}
	})

	t.Run(fmt.Sprintf("%d nodes, the replicas of each service on different nodes", shape.nodes), func(t *testing.T) {
		if all, _ := clusterNodes(t); len(all) < shape.nodes {
			t.Errorf("nodes %v, want %d", all, shape.nodes)
		}
		checkSpread(t)
	})

	t.Run("helm test", func(t *testing.T) {
		// Not --logs: the chart deletes a test pod that succeeded (hook-succeeded) before helm reads its
		// logs, and `helm test --logs` then fails although the test passed. A failed one is kept: read it.
		out, err := try(5*time.Minute, "helm", "test", release, "-n", namespace, "--timeout", "4m")
		if err != nil || !strings.Contains(out, "Phase:          Succeeded") {
			logs, _ := try(time.Minute, "kubectl", "-n", namespace, "logs", release+"-test-api")
			t.Fatalf("helm test did not succeed (%v):\n%s\ntest pod's logs:\n%s", err, out, logs)
		}
	})

	e2e := filepath.Join(repoRoot(t), "deploy/e2e.sh")
	if shape.gatewayAPI {
		t.Run("end to end through the Gateway (HTTPRoute)", func(t *testing.T) {
			t.Log(sh(t, 5*time.Minute, "bash", e2e, env(t, "GATEWAY_URL")))
		})
	} else {
		t.Run("no Gateway API: no HTTPRoute, and the NOTES say the Ingress is the way in", func(t *testing.T) { noGatewayAPI(t) })
	}
	t.Run("end to end through the Ingress", func(t *testing.T) {
		t.Log(sh(t, 5*time.Minute, "bash", e2e, ingress))
	})

	if shape.signingKeys != "" {
		t.Run("the signing key comes from the existing Secret", func(t *testing.T) { signingKeysFromSecret(t, ingress) })
		t.Run("a GitOps render (helm template) gives the objects the install made", func(t *testing.T) { gitOpsRender(t) })
	}

	t.Run("NetworkPolicies are enforced", func(t *testing.T) { networkPolicies(t) })

	t.Run("helm upgrade with unchanged values restarts no pod", func(t *testing.T) {
		before := podUIDs(t)
		upgrade(t)
		if after := podUIDs(t); after != before {
			t.Fatalf("pods changed on an upgrade with the same values:\nbefore %s\nafter  %s", before, after)
		}
	})
	t.Run("a changed config value rolls the pods", func(t *testing.T) {
		before := podUIDs(t)
		upgrade(t, "--set", "auth.config.logLevel=debug", "--set", "movies.config.logLevel=debug")
		after := podUIDs(t)
		for _, svc := range []string{"auth", "movies"} {
			if podsOf(before, svc) == podsOf(after, svc) {
				t.Errorf("%s pods were not replaced after its LOG_LEVEL changed: %s", svc, podsOf(after, svc))
			}
		}
	})

	if shape.readmeAnyCluster {
		t.Run("the README's command for any cluster, storage outside the chart", func(t *testing.T) { anyCluster(t, env(t, "GATEWAY_URL")) })
	}
}

// upgrade runs the same upgrade cluster-up's install ran, plus args.
func upgrade(t *testing.T, args ...string) {
	t.Helper()
	chart := chartDir(t)
	base := []string{"upgrade", release, chart, "-n", namespace, "--reuse-values", "--wait", "--timeout", "5m"}
	sh(t, 6*time.Minute, "helm", append(base, args...)...)
	kubectl(t, "-n", namespace, "rollout", "status", "deployment", "--timeout=300s")
}

// podUIDs lists "name uid" of every pod of the release's services and databases, sorted.
func podUIDs(t *testing.T) string {
	t.Helper()
	out := kubectl(t, "-n", namespace, "get", "pods", "-l", "app.kubernetes.io/instance="+release,
		"-o", `jsonpath={range .items[*]}{.metadata.labels.app\.kubernetes\.io/name} {.metadata.uid}{"\n"}{end}`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	return strings.Join(lines, ";")
}

func podsOf(uids, name string) string {
	var mine []string
	for _, l := range strings.Split(uids, ";") {
		if strings.HasPrefix(l, name+" ") {
			mine = append(mine, l)
		}
	}
	return strings.Join(mine, ";")
}

// probe is one connection attempt from a pod: want says whether it must get through.
type probe struct {
	what, host string
	port       int
	want       bool
}

// networkPolicies starts a pod in another namespace, and in the routing controller's and Prometheus'
// (as their pods, and, where the chart's values name their labels, as another pod there), and has it try
// every port of the release; then a pod labelled as movies tries what movies must reach, and must not.
func networkPolicies(t *testing.T) {
	svc := func(name string) string { return fmt.Sprintf("%s-%s.%s.svc.cluster.local", release, name, namespace) }
	all := func(api, admin, storage bool) []probe {
		probes := []probe{
			{"auth API", svc("auth"), 8081, api},
			{"movies API", svc("movies"), 8082, api},
			{"auth admin", svc("auth"), 9091, admin},
			{"movies admin", svc("movies"), 9092, admin},
		}
		if shape.inChartStores {
			// The dev databases are headless Services: their names resolve to the pods.
			probes = append(probes, probe{"MongoDB", svc("mongodb"), 27017, storage}, probe{"Redis", svc("redis"), 6379, storage})
		}
		return probes
	}
	type from struct {
		namespace string
		labels    map[string]string
		probes    []probe
	}
	cases := []from{
		{"np-outsider", nil, all(false, false, false)},
		// The routing controller's pods reach the API, nothing else.
		{shape.routing.namespace, shape.routing.labels, all(true, false, false)},
		// Prometheus' pods reach the admin ports (metrics), nothing else.
		{shape.prometheus.namespace, shape.prometheus.labels, all(false, true, false)},
	}
	// Where the values name the pods, other pods of their namespace reach nothing.
	for _, n := range []neighbour{shape.routing, shape.prometheus} {
		if len(n.labels) > 0 {
			cases = append(cases, from{n.namespace, nil, all(false, false, false)})
		}
	}
	for _, c := range cases {
		what := "from namespace " + c.namespace
		if len(c.labels) > 0 {
			what += fmt.Sprintf(" as %v", c.labels)
		}
		t.Run(what, func(t *testing.T) {
			results := probeFrom(t, c.namespace, c.labels, c.probes)
			for _, p := range c.probes {
				got := results[fmt.Sprintf("%s:%d", p.host, p.port)]
				if got != p.want {
					t.Errorf("%s (%s:%d) from namespace %s: reachable=%v, want %v", p.what, p.host, p.port, c.namespace, got, p.want)
				}
			}
		})
	}
	name := "movies reaches auth's JWKS"
	if len(shape.externalStores) > 0 {
		name += ", the databases outside the chart (every port), and no other port of the cluster"
	}
	t.Run(name, func(t *testing.T) {
		// The only client of the JWKS inside the cluster: a pod with the movies pods' labels.
		probes := []probe{{"auth API", svc("auth"), 8081, true}}
		if len(shape.externalStores) > 0 {
			probes = append(append(probes, shape.externalStores...), shape.otherCluster)
		}
		// This pod is under the movies pods' egress policies, which the agent applies a moment after it
		// starts: until then it reaches anything. What must stay closed is tried once they are in force.
		settle := 0
		if len(shape.externalStores) > 0 {
			settle = 10
		}
		results := probeFromPod(t, namespace, "np-as-movies", map[string]string{
			"app.kubernetes.io/name": "movies", "app.kubernetes.io/instance": release,
		}, settle, probes)
		for _, p := range probes {
			if got := results[fmt.Sprintf("%s:%d", p.host, p.port)]; got != p.want {
				t.Errorf("%s (%s:%d) from a pod labelled as movies: reachable=%v, want %v", p.what, p.host, p.port, got, p.want)
			}
		}
	})
}

// probeFrom runs the probes from a pod with labels in namespace ns, made (Pod Security restricted) if
// there is none.
func probeFrom(t *testing.T, ns string, labels map[string]string, probes []probe) map[string]bool {
	t.Helper()
	if _, err := try(time.Minute, "kubectl", "get", "namespace", ns); err != nil {
		kubectl(t, "create", "namespace", ns)
		kubectl(t, "label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
	}
	return probeFromPod(t, ns, "np-probe", labels, 0, probes)
}

// probeFromPod runs the tools image as a pod that tries each address, all at once, once a second for
// up to 20 s (a 2 s connect timeout each), and prints "host:port open|closed"; it returns which were
// open. The retries are not leniency: a NetworkPolicy agent admits a new pod's address only once it has
// seen the pod, a moment after its containers start (kube-router, Calico and Cilium alike), so a first
// attempt can be refused that a second one is not; and an address that must stay closed gets twenty
// chances to leak instead of one.
//
// settle is seconds to wait before the first attempt: for a pod under an egress policy, which it may pass
// until the agent has applied it (kube-router does so a few seconds after the pod starts).
func probeFromPod(t *testing.T, ns, name string, labels map[string]string, settle int, probes []probe) map[string]bool {
	t.Helper()
	var script strings.Builder
	if settle > 0 {
		fmt.Fprintf(&script, "sleep %d\n", settle)
	}
	for _, p := range probes {
		// busybox's nc has no -z: curl's time_connect tells whether a TCP connection was made, whatever
		// the server then answers (or not) to an HTTP request.
		fmt.Fprintf(&script, "(r=closed; i=0; while [ $i -lt 20 ]; do "+
			"t=$(curl -s -o /dev/null --connect-timeout 2 -m 3 -w '%%{time_connect}' http://%[1]s:%[2]d/); "+
			"if [ \"${t:-0.000000}\" != 0.000000 ]; then r=open; break; fi; i=$((i+1)); sleep 1; done; "+
			"echo %[1]s:%[2]d $r) &\n", p.host, p.port)
	}
	script.WriteString("wait\n")
	var lbl strings.Builder
	for k, v := range labels {
		fmt.Fprintf(&lbl, "    %s: %q\n", k, v)
	}
	pod := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
  labels:
    app.kubernetes.io/component: np-probe
%s
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 100
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: probe
      image: moviebag.local/tools:1
      imagePullPolicy: Never
      command: ["sh", "-c", %q]
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: ["ALL"]}
`, name, ns, lbl.String(), script.String())
	file := filepath.Join(t.TempDir(), "pod.yaml")
	if err := os.WriteFile(file, []byte(pod), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _ = try(time.Minute, "kubectl", "-n", ns, "delete", "pod", name, "--ignore-not-found", "--wait")
	kubectl(t, "apply", "-f", file)
	kubectl(t, "-n", ns, "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/"+name, "--timeout=180s")
	logs := kubectl(t, "-n", ns, "logs", name)
	_, _ = try(time.Minute, "kubectl", "-n", ns, "delete", "pod", name, "--wait=false")
	open := map[string]bool{}
	for _, line := range strings.Split(logs, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			open[f[0]] = f[1] == "open"
		}
	}
	if len(open) != len(probes) {
		t.Fatalf("probe pod printed %d results for %d probes:\n%s", len(open), len(probes), logs)
	}
	return open
}

// anyCluster runs the README's "Deploy with Helm to any cluster" block as written, but for the chart
// reference (the checkout's chart) and the images (those of this cluster), with MongoDB and Redis in a
// namespace of their own (as mongo.example and redis.example in the README), then the end-to-end walk.
func anyCluster(t *testing.T, gateway string) {
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)### Deploy with Helm to any cluster.*?```sh\n(.*?)```").FindSubmatch(readme)
	if block == nil {
		t.Fatal(`README.md has no "### Deploy with Helm to any cluster" section with a sh block`)
	}
	script := string(block[1])
	// The service images' tag is the one the main release runs (the commit's, as cluster.sh installs it).
	tag := kubectl(t, "-n", namespace, "get", "deployment", release+"-auth", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
	tag = tag[strings.LastIndex(tag, ":")+1:]
	for old, repl := range map[string]string{
		"oci://ghcr.io/<owner>/charts/moviebag --version <version>": chartDir(t) + " --values " + filepath.Join(root, "deploy/k8s/cluster/values.yaml") +
			" --set-string auth.image.tag=" + tag + ",movies.image.tag=" + tag,
		// The stand-in for an external MongoDB is FerretDB v1, which has no SCRAM authentication (the
		// driver's default for a URI with credentials): the same Secret, without the credentials.
		"mongodb://user:pass@mongo.example:27017/?authSource=admin": "mongodb://mongo.external-storage.svc.cluster.local:27017/",
		"redis.example": "redis.external-storage.svc.cluster.local",
	} {
		if !strings.Contains(script, old) {
			t.Fatalf("the README's command no longer contains %q: update this test with it", old)
		}
		script = strings.ReplaceAll(script, old, repl)
	}

	// The main release goes first: same name and namespace as the README's.
	sh(t, 5*time.Minute, "helm", "uninstall", release, "-n", namespace, "--wait", "--timeout", "4m")
	kubectl(t, "delete", "namespace", namespace, "--wait", "--timeout=180s")
	kubectl(t, "apply", "-f", filepath.Join(root, "deploy/k8s/cluster/manifests/external-storage.yaml"))
	kubectl(t, "-n", "external-storage", "rollout", "status", "deployment", "--timeout=180s")

	dir := t.TempDir()
	out := sh(t, 10*time.Minute, "bash", "-euo", "pipefail", "-c", "cd "+dir+"\n"+script)
	t.Log(out)
	kubectl(t, "-n", namespace, "wait", "--for=condition=Ready", "pod", "-l", "app.kubernetes.io/instance="+release, "--timeout=300s")
	t.Log(sh(t, 5*time.Minute, "bash", filepath.Join(root, "deploy/e2e.sh"), gateway))
}
