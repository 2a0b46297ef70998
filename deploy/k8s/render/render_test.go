package render

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// releaseName and namespace of every render; the dry run creates the namespace.
const (
	releaseName = "mb"
	namespace   = "moviebag"
)

// charts are the application charts under helm/, the umbrella last.
var charts = []string{"auth", "movies", "moviebag"}

// renderCase is one chart with one values file ("" for the defaults).
type renderCase struct {
	Chart  string
	Values string // path relative to the repository root, or ""
}

func (c renderCase) Name() string {
	if c.Values == "" {
		return c.Chart + "/default"
	}
	return c.Chart + "/" + strings.TrimSuffix(filepath.Base(c.Values), "-values.yaml")
}

// renderCases lists every chart with its defaults and each of its ci/*-values.yaml.
func renderCases(t testing.TB) []renderCase {
	t.Helper()
	var cases []renderCase
	for _, chart := range charts {
		cases = append(cases, renderCase{Chart: chart})
		files, err := filepath.Glob(filepath.Join(repoRoot, "helm", chart, "ci", "*-values.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("helm/%s/ci has no *-values.yaml", chart)
		}
		sort.Strings(files)
		for _, f := range files {
			rel, _ := filepath.Rel(repoRoot, f)
			cases = append(cases, renderCase{Chart: chart, Values: rel})
		}
	}
	return cases
}

func (c renderCase) helmArgs(extra ...string) []string {
	args := []string{filepath.Join("helm", c.Chart)}
	if c.Values != "" {
		args = append(args, "-f", c.Values)
	}
	return append(args, extra...)
}

// object is one rendered manifest, decoded strictly into its typed struct.
type object struct {
	Source string // the template it came from
	GVK    schema.GroupVersionKind
	Name   string
	NS     string
	Raw    []byte // the YAML as rendered
	Obj    runtime.Object
}

func (o object) String() string { return fmt.Sprintf("%s %s (%s)", o.GVK.Kind, o.Name, o.Source) }

// scheme knows every type the charts may render: core Kubernetes, Gateway API
// and prometheus-operator. A kind it does not know fails the render test.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, gatewayv1.Install, monitoringv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// gatewayAPI tells `helm template` that the cluster serves the Gateway API's HTTPRoute, as the test cluster,
// kind and minikube (make routing-up) do: without it the umbrella leaves its HTTPRoute out
// (TestGatewayAPIGuard renders that case).
var gatewayAPI = []string{"--api-versions", "gateway.networking.k8s.io/v1/HTTPRoute"}

// offline lets a render without a cluster (helm template, helm lint) generate a throwaway signing key: the
// chart refuses otherwise (TestSigningKeysOffline), since each offline render would mint a new one.
func offline(chart string) []string {
	switch chart {
	case "auth":
		return []string{"--set", "signingKeys.generateOffline=true"}
	case "moviebag":
		return []string{"--set", "auth.signingKeys.generateOffline=true"}
	}
	return nil
}

var (
	renderMu    sync.Mutex
	renderCache = map[string][]object{}
)

// render runs `helm template` for the case (cached), on a cluster with the Gateway API, and decodes every
// object strictly.
func render(t testing.TB, c renderCase, extra ...string) []object {
	t.Helper()
	key := c.Name() + strings.Join(extra, " ")
	renderMu.Lock()
	defer renderMu.Unlock()
	if objs, ok := renderCache[key]; ok {
		return objs
	}
	chartDeps(t)
	args := append([]string{"template", releaseName}, c.helmArgs(append(append(append([]string{"--namespace", namespace}, gatewayAPI...), offline(c.Chart)...), extra...)...)...)
	out := run(t, repoRoot, tool(t, "helm"), args...)
	objs, err := decodeAll(out)
	if err != nil {
		t.Fatalf("%s: %v", c.Name(), err)
	}
	if len(objs) == 0 {
		t.Fatalf("%s: helm template rendered nothing", c.Name())
	}
	renderCache[key] = objs
	return objs
}

// decodeAll splits a multi-document stream and decodes each object strictly: an
// unknown or misspelt field, a duplicate key or a wrong type is an error.
func decodeAll(stream []byte) ([]object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var objs []object
	var errs []error
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		source := ""
		for _, line := range strings.Split(string(doc), "\n") {
			if s, ok := strings.CutPrefix(line, "# Source: "); ok {
				source = s
				break
			}
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			errs = append(errs, fmt.Errorf("%s: not YAML: %w", source, err))
			continue
		}
		if meta.Kind == "" && meta.APIVersion == "" {
			continue // an empty document (a template that rendered nothing)
		}
		gv, err := schema.ParseGroupVersion(meta.APIVersion)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", source, err))
			continue
		}
		gvk := gv.WithKind(meta.Kind)
		obj, err := scheme.New(gvk)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: no typed struct for %s: %w", source, gvk, err))
			continue
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			errs = append(errs, fmt.Errorf("%s: strict decoding into %T: %w", source, obj, err))
			continue
		}
		objs = append(objs, object{Source: source, GVK: gvk, Name: meta.Metadata.Name, NS: meta.Metadata.Namespace, Raw: doc, Obj: obj})
	}
	return objs, errors.Join(errs...)
}

// TestHelmLint runs `helm lint --strict` on every chart with each of its values files.
func TestHelmLint(t *testing.T) {
	helm := tool(t, "helm")
	chartDeps(t)
	for _, c := range renderCases(t) {
		t.Run(c.Name(), func(t *testing.T) {
			run(t, repoRoot, helm, append([]string{"lint", "--strict", "--namespace", namespace}, c.helmArgs(offline(c.Chart)...)...)...)
		})
	}
}

// TestRenderStrict renders every case and decodes every object into its typed struct.
func TestRenderStrict(t *testing.T) {
	for _, c := range renderCases(t) {
		t.Run(c.Name(), func(t *testing.T) {
			objs := render(t, c)
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.GVK.Kind]++
			}
			t.Logf("%d objects: %v", len(objs), kinds)
		})
	}
}

// TestSchemaRefuses checks that the strict values schemas turn away what they should.
func TestSchemaRefuses(t *testing.T) {
	helm := tool(t, "helm")
	chartDeps(t)
	cases := []struct {
		chart string
		set   string
		want  string
	}{
		{"auth", "replicaCount=0", "replicaCount"},
		{"auth", "image.tag=latest", "/image/tag"},
		{"auth", "unknownKey=1", "unknownKey"},
		{"auth", "config.logLevel=loud", "logLevel"},
		{"auth", "config.requestTimeout=5", "requestTimeout"},
		{"auth", "signingKeys.keyId=a/b", "keyId"},
		{"movies", "config.jwtAlgorithms=none", "jwtAlgorithms"},
		{"movies", "networkPolicy.egress.autPort=1", "autPort"},
		{"moviebag", "ingres.enabled=true", "ingres"},
		{"moviebag", "auth.replicas=3", "replicas"},
		{"moviebag", "mongodb.image.tag=latest", "/mongodb/image/tag"},
		{"moviebag", "mongodb.enabled=false", "global.moviebag.storage.mongoUri"},
		{"moviebag", "redis.enabled=false", "global.moviebag.storage.redisUrl"},
		{"moviebag", "global.moviebag.neighbours.routing.namespace=edge", "namespace"},
		{"moviebag", "global.moviebag.neighbours.routing.ipBlocks[0]=edge", "ipBlocks"},
		{"moviebag", "global.moviebag.cloudHealthCheck=azure", "cloudHealthCheck"},
		{"moviebag", "externalStorage.redis.ports=6379", "ports"},
		{"moviebag", "monitoring.prometheusRule.release=kps", "release"},
		{"auth", "networkPolicy.ingressFrom=x", "ingressFrom"},
		{"movies", "serviceMonitor.release=kps", "release"},
	}
	for _, tc := range cases {
		t.Run(tc.chart+"/"+tc.set, func(t *testing.T) {
			out, err := runErr(repoRoot, helm, append([]string{"template", releaseName, filepath.Join("helm", tc.chart), "--set", tc.set}, offline(tc.chart)...)...)
			if err == nil {
				t.Fatalf("rendered with --set %s; want a refusal\n%s", tc.set, tail(string(out)))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("refused, but the message does not name %q:\n%v", tc.want, err)
			}
		})
	}
}

// readValues loads a case's values file as a map (empty for the defaults).
func readValues(t testing.TB, c renderCase) map[string]any {
	t.Helper()
	if c.Values == "" {
		return map[string]any{}
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, c.Values))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", c.Values, err)
	}
	return v
}

// valueAt returns the value at a dotted path of a values map.
func valueAt(v map[string]any, path string) (any, bool) {
	var cur any = v
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}
