package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// route is one line of a routing table: a path, matched exactly or as a
// path-element prefix, sent to a service (auth or movies) on a port.
type route struct {
	Path    string
	Prefix  bool
	Service string
	Port    int32
}

func (r route) String() string {
	m := "exact"
	if r.Prefix {
		m = "prefix"
	}
	return fmt.Sprintf("%s %s -> %s:%d", m, r.Path, r.Service, r.Port)
}

// gatewayRoutes reads the local gateway's routing table, the file it embeds
// (deploy/local/gateway/routes.json), so the charts are compared with what
// the gateway serves and not with a copy. Upstream auth is port 8081, movies
// 8082 (the fixed service ports).
func gatewayRoutes(t testing.TB) []route {
	t.Helper()
	path := filepath.Join(repoRoot, "deploy", "local", "gateway", "routes.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the local gateway's routing table: %v", err)
	}
	var table []struct {
		Path     string `json:"path"`
		Prefix   bool   `json:"prefix"`
		Upstream string `json:"upstream"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&table); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	ports := map[string]int32{"auth": 8081, "movies": 8082}
	out := make([]route, 0, len(table))
	for _, r := range table {
		if r.Path == "" || ports[r.Upstream] == 0 {
			t.Fatalf("%s: cannot read route %+v", path, r)
		}
		out = append(out, route{r.Path, r.Prefix, r.Upstream, ports[r.Upstream]})
	}
	return out
}

func sortRoutes(rs []route) []route {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b route) int { return strings.Compare(a.String(), b.String()) })
	return rs
}

// checkRoutes: the Ingress and the HTTPRoute route exactly as the local gateway,
// to rendered Services whose ports lead to real container ports.
func checkRoutes(t *testing.T, s *set) {
	want := sortRoutes(gatewayRoutes(t))
	services := map[string]*corev1.Service{}
	for _, svc := range each[*corev1.Service](s) {
		services[svc.Name] = svc
	}
	// serviceOf maps a backend Service to the service it fronts ("auth"/"movies"),
	// checking the port exists and targets a container port of the selected pods.
	serviceOf := func(kind, name string, port int32) string {
		svc := services[name]
		if svc == nil {
			t.Errorf("%s: backend Service %q is not rendered", kind, name)
			return ""
		}
		i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == port })
		if i < 0 {
			t.Errorf("%s: backend %s:%d: the Service has no such port", kind, name, port)
			return ""
		}
		for _, w := range s.selected(svc.Spec.Selector) {
			if !hasContainerPort(w, svc.Spec.Ports[i].TargetPort) {
				t.Errorf("%s: backend %s:%d does not reach a container port of %s", kind, name, port, w)
			}
		}
		return svc.Spec.Selector["app.kubernetes.io/name"]
	}
	ingresses := each[*networkingv1.Ingress](s)
	routes := each[*gatewayv1.HTTPRoute](s)
	if s.c.Chart == "moviebag" {
		// The defaults: the HTTPRoute on, the Ingress off.
		ingressOn, routeOn := false, !s.off("httpRoute.enabled")
		if v, ok := valueAt(s.values, "ingress.enabled"); ok && v == true {
			ingressOn = true
		}
		if (len(ingresses) == 1) != ingressOn || (len(routes) == 1) != routeOn {
			t.Fatalf("want Ingress %v and HTTPRoute %v, rendered %d and %d", ingressOn, routeOn, len(ingresses), len(routes))
		}
	}
	for _, ing := range ingresses {
		var got []route
		if ing.Spec.DefaultBackend != nil {
			t.Errorf("Ingress %s: a default backend routes what the gateway does not", ing.Name)
		}
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				t.Errorf("Ingress %s: rule without http", ing.Name)
				continue
			}
			for _, p := range rule.HTTP.Paths {
				if err := strictIngressPath(p); err != nil {
					t.Errorf("Ingress %s: %v", ing.Name, err)
					continue
				}
				b := p.Backend.Service
				if b == nil || b.Port.Number == 0 {
					t.Errorf("Ingress %s: path %s: backend must be a Service port number", ing.Name, p.Path)
					continue
				}
				prefix := *p.PathType == networkingv1.PathTypePrefix
				if *p.PathType == networkingv1.PathTypeImplementationSpecific {
					// A prefix match on ingress-nginx and Traefik; it stands for the gateway's route of that path.
					prefix = slices.ContainsFunc(want, func(r route) bool { return r.Path == p.Path && r.Prefix })
				}
				got = append(got, route{p.Path, prefix, serviceOf("Ingress", b.Name, b.Port.Number), b.Port.Number})
			}
		}
		if g := sortRoutes(got); !slices.Equal(g, want) {
			t.Errorf("Ingress %s routes\n  %v\nthe local gateway routes\n  %v", ing.Name, g, want)
		}
	}
	for _, hr := range routes {
		var got []route
		if len(hr.Spec.ParentRefs) == 0 {
			t.Errorf("HTTPRoute %s: no parentRefs", hr.Name)
		}
		for _, rule := range hr.Spec.Rules {
			if len(rule.Matches) != 1 || len(rule.BackendRefs) != 1 || len(rule.Filters) != 0 {
				t.Errorf("HTTPRoute %s: want one match and one backend per rule and no filters: %+v", hr.Name, rule)
				continue
			}
			m, b := rule.Matches[0], rule.BackendRefs[0]
			if m.Path == nil || m.Path.Type == nil || m.Path.Value == nil || m.Method != nil || len(m.Headers)+len(m.QueryParams) != 0 {
				t.Errorf("HTTPRoute %s: a match must be a path only: %+v", hr.Name, m)
				continue
			}
			if b.Kind != nil && *b.Kind != "Service" || b.Port == nil {
				t.Errorf("HTTPRoute %s: backend must be a Service with a port", hr.Name)
				continue
			}
			prefix := *m.Path.Type == gatewayv1.PathMatchPathPrefix
			if !prefix && *m.Path.Type != gatewayv1.PathMatchExact {
				t.Errorf("HTTPRoute %s: path type %s", hr.Name, *m.Path.Type)
			}
			got = append(got, route{*m.Path.Value, prefix, serviceOf("HTTPRoute", string(b.Name), int32(*b.Port)), int32(*b.Port)})
		}
		if g := sortRoutes(got); !slices.Equal(g, want) {
			t.Errorf("HTTPRoute %s routes\n  %v\nthe local gateway routes\n  %v", hr.Name, g, want)
		}
	}
}

// ingressNginxStrictPath is the path ingress-nginx accepts in an Exact or Prefix rule when it validates
// paths strictly (the default from controller v1.12): letters, digits, "_", "-" and "/" only.
var ingressNginxStrictPath = regexp.MustCompile(`^/[[:alnum:]_\-/]*$`)

// strictIngressPath: a path every Ingress controller admits. Exact and Prefix paths pass ingress-nginx's
// strict validation (a dot, as in /.well-known/jwks.json, is refused at admission there); any other path
// is ImplementationSpecific, the type that validation leaves alone.
func strictIngressPath(p networkingv1.HTTPIngressPath) error {
	switch {
	case p.PathType == nil:
		return fmt.Errorf("path %s: no pathType", p.Path)
	case *p.PathType == networkingv1.PathTypeExact || *p.PathType == networkingv1.PathTypePrefix:
		if !ingressNginxStrictPath.MatchString(p.Path) {
			return fmt.Errorf("path %s: pathType %s with characters ingress-nginx's strict path validation refuses (use ImplementationSpecific)", p.Path, *p.PathType)
		}
	case *p.PathType == networkingv1.PathTypeImplementationSpecific:
		if ingressNginxStrictPath.MatchString(p.Path) {
			return fmt.Errorf("path %s: ImplementationSpecific differs between controllers; a plain path is Prefix or Exact", p.Path)
		}
	default:
		return fmt.Errorf("path %s: pathType %s", p.Path, *p.PathType)
	}
	return nil
}

// TestIngressJWKSPath: the Ingress's JWKS path, the one with a dot, is neither Exact nor Prefix, and the
// check refuses the shape ingress-nginx turned away.
func TestIngressJWKSPath(t *testing.T) {
	for _, class := range []string{"traefik", "nginx"} {
		t.Run(class, func(t *testing.T) {
			found := false
			for _, o := range render(t, renderCase{Chart: "moviebag"}, "--set", "ingress.enabled=true", "--set", "ingress.className="+class) {
				ing, ok := o.Obj.(*networkingv1.Ingress)
				if !ok {
					continue
				}
				for _, p := range ing.Spec.Rules[0].HTTP.Paths {
					if p.Path != "/.well-known/jwks.json" {
						continue
					}
					found = true
					if p.PathType == nil || *p.PathType == networkingv1.PathTypeExact || *p.PathType == networkingv1.PathTypePrefix {
						t.Errorf("JWKS path has pathType %v: ingress-nginx's strict validation refuses a dot in an Exact or Prefix path", p.PathType)
					}
					if err := strictIngressPath(p); err != nil {
						t.Error(err)
					}
				}
				if got := ing.Annotations["nginx.ingress.kubernetes.io/proxy-body-size"]; (class == "nginx") != (got == "8m") {
					t.Errorf("class %s: proxy-body-size annotation %q (ingress.maxBodySize is 8m; only ingress-nginx reads it)", class, got)
				}
			}
			if !found {
				t.Fatal("no Ingress path /.well-known/jwks.json rendered")
			}
		})
	}
	exact := networkingv1.PathTypeExact
	if strictIngressPath(networkingv1.HTTPIngressPath{Path: "/.well-known/jwks.json", PathType: &exact}) == nil {
		t.Error("strictIngressPath accepts an Exact path with a dot")
	}
}

// TestGatewayTable guards the reading above: the table holds the three contract routes.
func TestGatewayTable(t *testing.T) {
	got := sortRoutes(gatewayRoutes(t))
	want := sortRoutes([]route{
		{"/api/auth", true, "auth", 8081},
		{"/.well-known/jwks.json", false, "auth", 8081},
		{"/api/movies", true, "movies", 8082},
	})
	if !slices.Equal(got, want) {
		t.Fatalf("gateway routes %v, want the contract %v", got, want)
	}
}

// TestChecksumRollsPods: a config change changes the pod template (so pods roll),
// an unrelated one does not.
func TestChecksumRollsPods(t *testing.T) {
	c := renderCase{Chart: "moviebag"}
	pod := func(extra ...string) map[string]string {
		out := map[string]string{}
		for _, o := range render(t, c, extra...) {
			if o.GVK.Kind == "Deployment" {
				d := o.Obj.(*appsv1.Deployment)
				for k, v := range d.Spec.Template.Annotations {
					out[o.Name+" "+k] = v
				}
			}
		}
		return out
	}
	base := pod()
	logChange := pod("--set", "auth.config.logLevel=debug")
	uriChange := pod("--set", "global.moviebag.storage.redisUrl=redis://elsewhere:6379/0")
	ingressChange := pod("--set", "ingress.enabled=true", "--set", "ingress.host=example.com", "--set", "httpRoute.hostnames[0]=example.com")
	if base["mb-auth checksum/config"] == logChange["mb-auth checksum/config"] {
		t.Errorf("auth LOG_LEVEL changed but checksum/config did not")
	}
	if base["mb-movies checksum/config"] != logChange["mb-movies checksum/config"] {
		t.Errorf("auth's setting rolled movies")
	}
	for _, d := range []string{"mb-auth", "mb-movies"} {
		if base[d+" checksum/storage"] == uriChange[d+" checksum/storage"] {
			t.Errorf("%s: REDIS_URL changed but checksum/storage did not", d)
		}
		for k, v := range base {
			if strings.HasPrefix(k, d) && ingressChange[k] != v {
				t.Errorf("%s: a routing change rolled the pods (%s)", d, k)
			}
		}
	}
}

var _ = intstr.FromInt32

// TestKindPortsOnLoopback: the kind cluster's host ports listen on 127.0.0.1 only (kind's default, 0.0.0.0,
// exposes the API to the LAN).
func TestKindPortsOnLoopback(t *testing.T) {
	var cfg struct {
		Nodes []struct {
			ExtraPortMappings []struct {
				HostPort      int    `json:"hostPort"`
				ListenAddress string `json:"listenAddress"`
			} `json:"extraPortMappings"`
		} `json:"nodes"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "deploy/k8s/kind/cluster.yaml"), &cfg); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, node := range cfg.Nodes {
		for _, m := range node.ExtraPortMappings {
			n++
			if m.ListenAddress != "127.0.0.1" {
				t.Errorf("deploy/k8s/kind/cluster.yaml: host port %d listens on %q, want 127.0.0.1", m.HostPort, m.ListenAddress)
			}
		}
	}
	if n == 0 {
		t.Fatal("deploy/k8s/kind/cluster.yaml maps no host port")
	}
}
