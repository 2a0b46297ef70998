package render

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// renderPlain runs `helm template` of the umbrella with exactly these arguments (no --api-versions: a
// cluster without the Gateway API) and decodes the objects.
func renderPlain(t *testing.T, extra ...string) []object {
	t.Helper()
	chartDeps(t)
	args := append(append([]string{"template", releaseName, "helm/moviebag", "--namespace", namespace}, offline("moviebag")...), extra...)
	objs, err := decodeAll(run(t, repoRoot, tool(t, "helm"), args...))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// renderNotes renders the umbrella's NOTES.txt offline. `helm template` leaves NOTES.txt out, so a copy of
// the chart carries it as a plain file, rendered by tpl into a ConfigMap.
func renderNotes(t *testing.T, extra ...string) string {
	t.Helper()
	chartDeps(t)
	dir := filepath.Join(t.TempDir(), "moviebag")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(repoRoot, "helm", "moviebag"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "templates", "NOTES.txt"), filepath.Join(dir, "notes-under-test.txt")); err != nil {
		t.Fatal(err)
	}
	const tmpl = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ tpl (.Files.Get \"notes-under-test.txt\") . | quote }}\n"
	if err := os.WriteFile(filepath.Join(dir, "templates", "zz-notes.yaml"), []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{"template", releaseName, dir, "--namespace", namespace, "--show-only", "templates/zz-notes.yaml"}, offline("moviebag")...), extra...)
	objs, err := decodeAll(run(t, repoRoot, tool(t, "helm"), args...))
	if err != nil || len(objs) != 1 {
		t.Fatalf("NOTES: %v (%d objects)", err, len(objs))
	}
	return objs[0].Obj.(*corev1.ConfigMap).Data["notes"]
}

// workloadOf is a rendered Deployment's pod template.
func workloadOf(o object) workload {
	d := o.Obj.(*appsv1.Deployment)
	return workload{"Deployment", d.Name, d.Spec.Template.Labels, d.Spec.Template.Spec, o}
}

func kinds(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.GVK.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// TestGatewayAPIGuard: on a cluster without the Gateway API the umbrella renders no HTTPRoute (the install
// would fail with "no matches for kind HTTPRoute"), and its NOTES say so and how traffic gets in instead;
// with the API it renders the route and the NOTES say where it is attached.
func TestGatewayAPIGuard(t *testing.T) {
	t.Run("no Gateway API", func(t *testing.T) {
		if hr := kinds(renderPlain(t), "HTTPRoute"); len(hr) != 0 {
			t.Errorf("rendered %v on a cluster without the Gateway API: the install fails with \"no matches for kind HTTPRoute\"", hr)
		}
		notes := renderNotes(t)
		for _, want := range []string{"NO HTTPROUTE", "does not serve the Gateway API", "ingress.enabled=true", "--api-versions gateway.networking.k8s.io/v1/HTTPRoute"} {
			if !strings.Contains(notes, want) {
				t.Errorf("NOTES do not say %q:\n%s", want, notes)
			}
		}
	})
	t.Run("no Gateway API, the Ingress on", func(t *testing.T) {
		objs := renderPlain(t, "--set", "ingress.enabled=true")
		if len(kinds(objs, "HTTPRoute")) != 0 || len(kinds(objs, "Ingress")) != 1 {
			t.Errorf("want the Ingress and no HTTPRoute")
		}
		notes := renderNotes(t, "--set", "ingress.enabled=true")
		for _, want := range []string{"NO HTTPROUTE", "Traffic gets in through the Ingress", "Through the Ingress (class traefik"} {
			if !strings.Contains(notes, want) {
				t.Errorf("NOTES do not say %q:\n%s", want, notes)
			}
		}
	})
	t.Run("no Gateway API seen, check skipped", func(t *testing.T) {
		if hr := kinds(renderPlain(t, "--set", "httpRoute.skipCapabilityCheck=true"), "HTTPRoute"); len(hr) != 1 {
			t.Errorf("rendered %d HTTPRoutes with httpRoute.skipCapabilityCheck=true, want 1", len(hr))
		}
	})
	t.Run("Gateway API", func(t *testing.T) {
		if hr := kinds(renderPlain(t, gatewayAPI...), "HTTPRoute"); len(hr) != 1 {
			t.Errorf("rendered %d HTTPRoutes on a cluster with the Gateway API, want 1", len(hr))
		}
		notes := renderNotes(t, gatewayAPI...)
		if !strings.Contains(notes, "HTTPRoute mb is attached to traefik/traefik-gateway") || strings.Contains(notes, "NO HTTPROUTE") {
			t.Errorf("NOTES do not say where the HTTPRoute is attached:\n%s", notes)
		}
	})
}

// TestHTTPSRedirect: on a Gateway with HTTP and HTTPS listeners the API route attaches to the listener its
// sectionName names, and httpsRedirect answers the HTTP listener with a redirect to https; a parentRef
// without sectionName is refused (it would attach to every listener, the API served in clear text too).
func TestHTTPSRedirect(t *testing.T) {
	on := []string{"--set", "httpRoute.parentRefs[0].name=gw", "--set", "httpRoute.parentRefs[0].namespace=edge",
		"--set", "httpRoute.httpsRedirect.enabled=true",
		"--set", "httpRoute.httpsRedirect.parentRefs[0].name=gw", "--set", "httpRoute.httpsRedirect.parentRefs[0].namespace=edge",
		"--set", "httpRoute.httpsRedirect.parentRefs[0].sectionName=web"}
	t.Run("no sectionName", func(t *testing.T) {
		out, err := runErr(repoRoot, tool(t, "helm"), append(append([]string{"template", releaseName, "helm/moviebag"}, offline("moviebag")...), append(gatewayAPI, on...)...)...)
		if err == nil || !strings.Contains(err.Error(), "sectionName") {
			t.Fatalf("rendered (or refused without naming sectionName) an API route attached to every listener next to a redirect: %v\n%s", err, tail(string(out)))
		}
	})
	objs := render(t, renderCase{Chart: "moviebag"}, append(on, "--set", "httpRoute.parentRefs[0].sectionName=websecure")...)
	routes := each[*gatewayv1.HTTPRoute](&set{objs: objs})
	if len(routes) != 2 {
		t.Fatalf("rendered %d HTTPRoutes, want the API's and the redirect", len(routes))
	}
	for _, hr := range routes {
		redirect := strings.HasSuffix(hr.Name, "-https-redirect")
		want := map[bool]string{true: "web", false: "websecure"}[redirect]
		for _, ref := range hr.Spec.ParentRefs {
			if ref.SectionName == nil || string(*ref.SectionName) != want {
				t.Errorf("HTTPRoute %s: parentRef %s without sectionName %s", hr.Name, ref.Name, want)
			}
		}
		if !redirect {
			continue
		}
		if len(hr.Spec.Rules) != 1 || len(hr.Spec.Rules[0].Filters) != 1 || hr.Spec.Rules[0].Filters[0].RequestRedirect == nil ||
			hr.Spec.Rules[0].Filters[0].RequestRedirect.Scheme == nil || *hr.Spec.Rules[0].Filters[0].RequestRedirect.Scheme != "https" ||
			len(hr.Spec.Rules[0].BackendRefs) != 0 {
			t.Errorf("HTTPRoute %s: want one rule redirecting to https and no backends: %+v", hr.Name, hr.Spec.Rules)
		}
	}
}

// TestNeighboursNamedOnce: global.moviebag.neighbours alone moves the routing controller, Prometheus and DNS
// for both services' NetworkPolicies, their ServiceMonitors and the PrometheusRule.
func TestNeighboursNamedOnce(t *testing.T) {
	nb := "global.moviebag.neighbours."
	base := []string{"--set", "auth.serviceMonitor.enabled=true", "--set", "movies.serviceMonitor.enabled=true", "--set", "monitoring.prometheusRule.enabled=true"}
	objs := render(t, renderCase{Chart: "moviebag"}, append(base,
		"--set", nb+"routing.namespaces={edge}", "--set", nb+"routing.podLabels.app=edge-proxy",
		"--set", nb+"routing.ipBlocks={35.191.0.0/16,130.211.0.0/22}",
		"--set", nb+"prometheus.namespace=observability", "--set", nb+"prometheus.podLabels.app\\.kubernetes\\.io/name=prometheus",
		"--set", nb+"prometheus.releaseLabel=kps",
		"--set", nb+"dns.ipBlocks={169.254.20.10/32}")...)
	s := &set{c: renderCase{Chart: "moviebag"}, objs: objs}
	nps := each[*networkingv1.NetworkPolicy](s)

	// Every ServiceMonitor and the PrometheusRule carry the one release label.
	sms, prs := each[*monitoringv1.ServiceMonitor](s), each[*monitoringv1.PrometheusRule](s)
	if len(sms) != 2 || len(prs) != 1 {
		t.Fatalf("rendered %d ServiceMonitors and %d PrometheusRules, want 2 and 1", len(sms), len(prs))
	}
	for _, sm := range sms {
		if sm.Labels["release"] != "kps" {
			t.Errorf("ServiceMonitor %s: release=%q, want kps (global.moviebag.neighbours.prometheus.releaseLabel)", sm.Name, sm.Labels["release"])
		}
	}
	if prs[0].Labels["release"] != "kps" {
		t.Errorf("PrometheusRule %s: release=%q, want kps", prs[0].Name, prs[0].Labels["release"])
	}

	pods := map[string]endpoint{}
	for _, d := range kinds(objs, "Deployment") {
		s.workloads = append(s.workloads, workloadOf(d))
	}
	for _, w := range s.workloads {
		pods[w.Labels["app.kubernetes.io/name"]] = podEndpoint(w)
	}
	type flow struct {
		src, dst endpoint
		port     int32
		proto    corev1.Protocol
		want     bool
	}
	proxy := endpoint{Name: "edge proxy", NS: "edge", Labels: map[string]string{"app": "edge-proxy"}}
	otherEdgePod := endpoint{Name: "another pod of edge", NS: "edge", Labels: map[string]string{"app": "other"}}
	traefik := endpoint{Name: "Traefik (the default)", NS: "traefik", Labels: map[string]string{"app.kubernetes.io/name": "traefik"}}
	neg := endpoint{Name: "a GKE NEG health checker", IP: "35.191.10.1"}
	prom := endpoint{Name: "Prometheus in observability", NS: "observability", Labels: map[string]string{"app.kubernetes.io/name": "prometheus"}}
	oldProm := endpoint{Name: "Prometheus in monitoring (the default)", NS: "monitoring", Labels: map[string]string{"app.kubernetes.io/name": "prometheus"}}
	nodeLocal := endpoint{Name: "NodeLocal DNSCache", IP: "169.254.20.10"}
	coredns := endpoint{Name: "CoreDNS", NS: "kube-system", Labels: map[string]string{"k8s-app": "kube-dns"}}
	elsewhere := endpoint{Name: "a DNS server elsewhere", IP: "203.0.113.53"}
	var flows []flow
	for _, svc := range []string{"auth", "movies"} {
		p, ok := pods[svc]
		if !ok {
			t.Fatalf("no %s Deployment rendered", svc)
		}
		api, admin := p.Ports["http"], p.Ports["admin"]
		flows = append(flows,
			flow{proxy, p, api, corev1.ProtocolTCP, true},
			flow{neg, p, api, corev1.ProtocolTCP, true},
			flow{otherEdgePod, p, api, corev1.ProtocolTCP, false},
			flow{traefik, p, api, corev1.ProtocolTCP, false},
			flow{prom, p, admin, corev1.ProtocolTCP, true},
			flow{oldProm, p, admin, corev1.ProtocolTCP, false},
			flow{p, nodeLocal, 53, corev1.ProtocolUDP, true},
			flow{p, coredns, 53, corev1.ProtocolUDP, true},
			flow{p, elsewhere, 53, corev1.ProtocolUDP, false},
		)
	}
	for _, f := range flows {
		if got := allowed(nps, f.src, f.dst, f.port, f.proto); got != f.want {
			t.Errorf("%s -> %s:%d/%s: allowed %v, want %v", f.src.Name, f.dst.Name, f.port, f.proto, got, f.want)
		}
	}

	t.Run("any DNS", func(t *testing.T) {
		objs := render(t, renderCase{Chart: "moviebag"}, "--set", nb+"dns.any=true")
		s := &set{objs: objs}
		for _, d := range kinds(objs, "Deployment") {
			p := podEndpoint(workloadOf(d))
			if !allowed(each[*networkingv1.NetworkPolicy](s), p, elsewhere, 53, corev1.ProtocolUDP) {
				t.Errorf("%s: DNS to any address refused with dns.any=true", p.Name)
			}
		}
	})
	// Labels given for the DNS pods replace the default ones: a default in values.yaml would be merged with
	// them key by key (also null cannot take it out through the subcharts' globals), and no pod carries both.
	t.Run("DNS pods labelled otherwise", func(t *testing.T) {
		objs := render(t, renderCase{Chart: "moviebag"}, "--set", nb+"dns.podLabels.app\\.kubernetes\\.io/name=coredns")
		s := &set{objs: objs}
		upstream := endpoint{Name: "CoreDNS labelled app.kubernetes.io/name=coredns", NS: "kube-system", Labels: map[string]string{"app.kubernetes.io/name": "coredns"}}
		for _, d := range kinds(objs, "Deployment") {
			p := podEndpoint(workloadOf(d))
			nps := each[*networkingv1.NetworkPolicy](s)
			if !allowed(nps, p, upstream, 53, corev1.ProtocolUDP) {
				t.Errorf("%s: DNS to the pods of dns.podLabels refused", p.Name)
			}
			if allowed(nps, p, coredns, 53, corev1.ProtocolUDP) {
				t.Errorf("%s: DNS to pods labelled k8s-app=kube-dns still allowed although dns.podLabels names others", p.Name)
			}
		}
	})
	t.Run("no DNS named", func(t *testing.T) {
		out, err := runErr(repoRoot, tool(t, "helm"), append([]string{"template", releaseName, "helm/moviebag", "--set", nb + "dns.namespace=", "--set", nb + "dns.podLabels=null"}, offline("moviebag")...)...)
		if err == nil || !strings.Contains(err.Error(), "neighbours.dns") {
			t.Fatalf("rendered with no DNS server allowed (pods would never resolve a name), or refused without naming neighbours.dns: %v\n%s", err, tail(string(out)))
		}
	})
}

// TestNeighbourDefaultsAgree: the umbrella and both service charts carry the same defaults for
// global.moviebag.neighbours (the umbrella's win when installed together; the service charts' when alone).
func TestNeighbourDefaultsAgree(t *testing.T) {
	var want any
	for i, chart := range charts {
		v := readValues(t, renderCase{Chart: chart, Values: filepath.Join("helm", chart, "values.yaml")})
		got, ok := valueAt(v, "global.moviebag.neighbours")
		if !ok {
			t.Fatalf("helm/%s/values.yaml: no global.moviebag.neighbours", chart)
		}
		if i == 0 {
			want = got
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("helm/%s/values.yaml: global.moviebag.neighbours %v differs from helm/%s's %v", chart, got, charts[0], want)
		}
	}
}
