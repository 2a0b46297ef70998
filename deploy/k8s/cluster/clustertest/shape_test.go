package clustertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// clusterShape is what the checks expect of the cluster under test: the default cluster of `make cluster-up`,
// which runs the chart on its own defaults, or the cluster of CLUSTER_SHAPE (deploy/k8s/cluster/shapes/NAME.sh),
// where every name those defaults assume is another and the chart is installed with values only. The same
// checks run against either; what differs is written here, once, as the shape promises it.
type clusterShape struct {
	release, namespace string
	// nodes is the number of nodes the cluster has.
	nodes int
	// gatewayAPI: the cluster serves the Gateway API and GATEWAY_URL is an HTTPRoute's way in. Without it the
	// chart must render no HTTPRoute, say so in its NOTES, and INGRESS_URL is the way in.
	gatewayAPI bool
	// routing and prometheus are the neighbours the chart's values name: the routing controller's pods and
	// Prometheus' pods, by namespace and labels ({} for every pod of the namespace).
	routing, prometheus neighbour
	// prometheusManifest is the file with the in-cluster Prometheus' evaluation_interval, and
	// prometheusDeployment its Deployment in namespace prometheus.namespace.
	prometheusManifest, prometheusDeployment string
	// reapplyPrometheus: TestCluster's last step takes the release's namespace away and makes it again, so
	// TestClusterMonitoring applies the manifest again (its discovery Role lives in that namespace) and
	// restarts Prometheus.
	reapplyPrometheus bool
	// inChartStores: the chart's dev MongoDB and Redis run in the release's namespace. Else externalStores
	// are the databases outside the chart that the services must reach (and otherCluster a port of the
	// cluster they must not).
	inChartStores  bool
	externalStores []probe
	otherCluster   probe
	// signingKeys names the existing Secret the signing keys come from and the kid it holds ("" when the
	// chart generates the key).
	signingKeys, signingKID string
	// readmeAnyCluster: run the README's "any cluster" command (it reinstalls the release under the
	// README's names, the default ones).
	readmeAnyCluster bool
}

type neighbour struct {
	namespace string
	labels    map[string]string
}

var shapes = map[string]clusterShape{
	// make cluster-up: deploy/k8s/cluster/cluster.sh with deploy/k8s/cluster/values.yaml.
	"": {
		release: "moviebag", namespace: "moviebag", nodes: 3, gatewayAPI: true,
		routing:            neighbour{namespace: "traefik"},
		prometheus:         neighbour{namespace: "monitoring"},
		prometheusManifest: "deploy/k8s/cluster/manifests/prometheus.yaml", prometheusDeployment: "prometheus",
		reapplyPrometheus: true, inChartStores: true, readmeAnyCluster: true,
	},
	// make cluster-up CLUSTER_SHAPE=managed: deploy/k8s/cluster/shapes/managed.sh with shapes/managed/values.yaml.
	"managed": {
		release: "mb", namespace: "apps", nodes: 2,
		routing:            neighbour{namespace: "edge", labels: map[string]string{"app": "edge-proxy"}},
		prometheus:         neighbour{namespace: "observability", labels: map[string]string{"app.kubernetes.io/name": "prometheus"}},
		prometheusManifest: "deploy/k8s/cluster/shapes/managed/prometheus.yaml", prometheusDeployment: "prometheus-kps",
		externalStores: []probe{
			{"MongoDB outside the chart", "docdb.stores.svc.cluster.local", 27017, true},
			{"Redis Sentinel", "sentinel.stores.svc.cluster.local", 26379, true},
			{"Redis primary", "redis-primary.stores.svc.cluster.local", 6379, true},
		},
		otherCluster: probe{"Prometheus", "prometheus-kps.observability.svc.cluster.local", 9090, false},
		signingKeys:  "mb-jwt-keys", signingKID: "apps-2026-12",
	},
}

// shapeName is CLUSTER_SHAPE, as test.sh and make pass it on; shape is what it promises.
var (
	shapeName         = os.Getenv("CLUSTER_SHAPE")
	shape, shapeKnown = shapes[shapeName]
	namespace         = shape.namespace
	release           = shape.release
	monitoringNS      = shape.prometheus.namespace
)

// checkShape stops the test run on a CLUSTER_SHAPE this package does not know.
func checkShape(t *testing.T) {
	t.Helper()
	if !shapeKnown {
		t.Fatalf("CLUSTER_SHAPE=%s: no such shape in shape_test.go", shapeName)
	}
}

// wayIn is the URL the API is reached through: the Gateway where the cluster has the Gateway API, else the
// Ingress.
func wayIn(t *testing.T) string {
	t.Helper()
	if shape.gatewayAPI {
		return env(t, "GATEWAY_URL")
	}
	return env(t, "INGRESS_URL")
}

// waysIn are the variables of every way in the shape has.
func waysIn() []string {
	if shape.gatewayAPI {
		return []string{"GATEWAY_URL", "INGRESS_URL"}
	}
	return []string{"INGRESS_URL"}
}

// noGatewayAPI: on a cluster without the Gateway API CRDs, the release has no HTTPRoute (the install did
// not fail on one), its NOTES say that none was rendered and that the Ingress is the way in, and the
// Ingress is there with the values' class.
func noGatewayAPI(t *testing.T) {
	if out, err := try(time.Minute, "kubectl", "get", "crd", "httproutes.gateway.networking.k8s.io"); err == nil {
		t.Fatalf("the cluster has the HTTPRoute CRD, which this shape must not have:\n%s", out)
	}
	manifest := sh(t, time.Minute, "helm", "get", "manifest", release, "-n", namespace)
	if strings.Contains(manifest, "kind: HTTPRoute") {
		t.Error("the release's manifest has an HTTPRoute on a cluster without the Gateway API")
	}
	notes := sh(t, time.Minute, "helm", "get", "notes", release, "-n", namespace)
	for _, want := range []string{"NO HTTPROUTE", "Traffic gets in through the Ingress"} {
		if !strings.Contains(notes, want) {
			t.Errorf("the NOTES do not say %q:\n%s", want, notes)
		}
	}
	class := kubectl(t, "-n", namespace, "get", "ingress", release, "-o", "jsonpath={.spec.ingressClassName}")
	t.Logf("Ingress %s/%s, class %q; NOTES:\n%s", namespace, release, class, notes)
}

// signingKeysFromSecret: the JWKS served through the way in publishes exactly the key of the existing
// Secret, which the auth pods mount; the chart made no signing key of its own.
func signingKeysFromSecret(t *testing.T, base string) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(strings.TrimRight(base, "/") + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /.well-known/jwks.json: %d %v", resp.StatusCode, err)
	}
	var kids []string
	for _, k := range jwks.Keys {
		kids = append(kids, k.Kid)
	}
	if len(kids) != 1 || kids[0] != shape.signingKID {
		t.Errorf("JWKS kids %v, want exactly [%s], the key of Secret %s", kids, shape.signingKID, shape.signingKeys)
	}
	volumes := kubectl(t, "-n", namespace, "get", "deployment", release+"-auth", "-o", "jsonpath={.spec.template.spec.volumes[*].secret.secretName}")
	if !slices.Contains(strings.Fields(volumes), shape.signingKeys) {
		t.Errorf("auth's pods mount the Secrets %q, not %s", volumes, shape.signingKeys)
	}
	if out, err := try(time.Minute, "kubectl", "-n", namespace, "get", "secret", release+"-auth-signing-keys"); err == nil {
		t.Errorf("the chart made a signing-key Secret although signingKeys.existingSecret is set:\n%s", out)
	}
}

// gitOpsRender: the render a GitOps controller makes (Argo CD runs `helm template` with the cluster's API
// versions; lookup sees nothing there) of the same chart and values gives the objects the install made, one
// for one, but for the existing storage Secret's checksum on the pods (its name there; its data where helm
// reads the cluster). So applying that render installs what the checks proved.
func gitOpsRender(t *testing.T) {
	values := sh(t, time.Minute, "helm", "get", "values", release, "-n", namespace, "-o", "yaml")
	file := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(file, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	apiVersions := strings.Fields(kubectl(t, "api-versions"))
	args := []string{"template", release, chartDir(t), "-n", namespace, "-f", file, "--skip-tests"}
	for _, v := range apiVersions {
		args = append(args, "--api-versions", v)
	}
	for _, kind := range []string{"monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule"} {
		args = append(args, "--api-versions", kind)
	}
	rendered := manifestObjects(t, sh(t, 2*time.Minute, "helm", args...))
	installed := manifestObjects(t, sh(t, time.Minute, "helm", "get", "manifest", release, "-n", namespace))
	var keys []string
	for k := range installed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r, ok := rendered[k]
		if !ok {
			t.Errorf("%s: installed, not in the GitOps render", k)
			continue
		}
		if !reflect.DeepEqual(r, installed[k]) {
			a, _ := json.MarshalIndent(installed[k], "", " ")
			b, _ := json.MarshalIndent(r, "", " ")
			t.Errorf("%s differs: installed\n%s\nrendered\n%s", k, a, b)
		}
	}
	for k := range rendered {
		if _, ok := installed[k]; !ok {
			t.Errorf("%s: in the GitOps render, not installed", k)
		}
	}
	t.Logf("the GitOps render and the install agree on %d objects (the storage checksum aside)", len(installed))
}

// manifestObjects decodes a multi-document manifest into its objects by kind/namespace/name, without the
// hooks and without the pods' checksum/storage annotation.
func manifestObjects(t *testing.T, manifest string) map[string]map[string]any {
	t.Helper()
	objs := map[string]map[string]any{}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(manifest, -1) {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		if o == nil {
			continue
		}
		meta, _ := o["metadata"].(map[string]any)
		if ann, _ := meta["annotations"].(map[string]any); ann["helm.sh/hook"] != nil {
			continue
		}
		if spec, _ := o["spec"].(map[string]any); spec != nil {
			if tmpl, _ := spec["template"].(map[string]any); tmpl != nil {
				if m, _ := tmpl["metadata"].(map[string]any); m != nil {
					if ann, _ := m["annotations"].(map[string]any); ann != nil {
						delete(ann, "checksum/storage")
					}
				}
			}
		}
		objs[fmt.Sprintf("%v %v/%v", o["kind"], meta["namespace"], meta["name"])] = o
	}
	return objs
}
