package k8stest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
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

// gatewayRoutes reads the local gateway's table (deploy/local/gateway: var Routes)
// from its source, so the charts are compared with the code and not a copy.
// Upstream auth is port 8081, movies 8082 (the fixed service ports).
func gatewayRoutes(t testing.TB) []route {
	t.Helper()
	path := filepath.Join(repoRoot, "deploy", "local", "gateway", "gateway.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatalf("read the local gateway's routing table: %v", err)
	}
	upstreams := map[string]string{} // const ident -> value
	var lit *ast.CompositeLit
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if i >= len(vs.Values) {
				continue
			}
			switch v := vs.Values[i].(type) {
			case *ast.BasicLit:
				if s, err := strconv.Unquote(v.Value); err == nil {
					upstreams[name.Name] = s
				}
			case *ast.CompositeLit:
				if name.Name == "Routes" {
					lit = v
				}
			}
		}
		return true
	})
	if lit == nil {
		t.Fatalf("%s: no `var Routes = []Route{...}`; update this test with the gateway", path)
	}
	ports := map[string]int32{"auth": 8081, "movies": 8082}
	var out []route
	for _, e := range lit.Elts {
		cl, ok := e.(*ast.CompositeLit)
		if !ok {
			t.Fatalf("%s: Routes element is not a literal", path)
		}
		var r route
		for _, kv := range cl.Elts {
			kv, ok := kv.(*ast.KeyValueExpr)
			if !ok {
				t.Fatalf("%s: Routes element without field names", path)
			}
			key := kv.Key.(*ast.Ident).Name
			switch v := kv.Value.(type) {
			case *ast.BasicLit:
				if key == "Path" {
					r.Path, _ = strconv.Unquote(v.Value)
				}
			case *ast.Ident:
				switch key {
				case "Prefix":
					r.Prefix = v.Name == "true"
				case "Upstream":
					r.Service = upstreams[v.Name]
				}
			}
		}
		r.Port = ports[r.Service]
		if r.Path == "" || r.Port == 0 {
			t.Fatalf("%s: cannot read route %+v", path, r)
		}
		out = append(out, r)
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
		ingressOn, routeOn := !s.off("ingress.enabled"), false
		if v, ok := valueAt(s.values, "httpRoute.enabled"); ok && v == true {
			routeOn = true
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
				if p.PathType == nil || (*p.PathType != networkingv1.PathTypePrefix && *p.PathType != networkingv1.PathTypeExact) {
					t.Errorf("Ingress %s: path %s: pathType must be Prefix or Exact (ImplementationSpecific differs between controllers)", ing.Name, p.Path)
					continue
				}
				b := p.Backend.Service
				if b == nil || b.Port.Number == 0 {
					t.Errorf("Ingress %s: path %s: backend must be a Service port number", ing.Name, p.Path)
					continue
				}
				got = append(got, route{p.Path, *p.PathType == networkingv1.PathTypePrefix, serviceOf("Ingress", b.Name, b.Port.Number), b.Port.Number})
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

// TestGatewayTable guards the parser above: the table holds the three contract routes.
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
	ingressChange := pod("--set", "ingress.host=example.com")
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
			if strings.HasPrefix(k, d) && !strings.Contains(k, "signing-keys") && ingressChange[k] != v {
				t.Errorf("%s: an ingress change rolled the pods (%s)", d, k)
			}
		}
	}
}

var _ = intstr.FromInt32
