package render

import (
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestAutoscalingKeepsReplicas: with autoscaling on, the Deployments still say how many pods to run (at least
// minReplicas: leaving `replicas` out makes the upgrade that turns autoscaling on drop to 1 pod until the HPA
// acts), and the HPA does not scale out at trivial load: its per-pod CPU threshold is at least 250m, about 5
// logins a second at the 50 ms of CPU a login costs in `make bench` (docs/benchmarks.md).
func TestAutoscalingKeepsReplicas(t *testing.T) {
	const minCPU = "250m"
	objs := render(t, renderCase{Chart: "moviebag"}, "--set", "auth.autoscaling.enabled=true", "--set", "movies.autoscaling.enabled=true")
	s := set_(objs)
	deps := each[*appsv1.Deployment](s)
	hpas := each[*autoscalingv2.HorizontalPodAutoscaler](s)
	if len(deps) != 2 || len(hpas) != 2 {
		t.Fatalf("rendered %d Deployments and %d HPAs, want 2 and 2", len(deps), len(hpas))
	}
	for _, hpa := range hpas {
		var dep *appsv1.Deployment
		for _, d := range deps {
			if d.Name == hpa.Spec.ScaleTargetRef.Name {
				dep = d
			}
		}
		if dep == nil {
			t.Fatalf("HPA %s: scales %s, not rendered", hpa.Name, hpa.Spec.ScaleTargetRef.Name)
		}
		minReplicas := int32(1)
		if hpa.Spec.MinReplicas != nil {
			minReplicas = *hpa.Spec.MinReplicas
		}
		if dep.Spec.Replicas == nil || *dep.Spec.Replicas < minReplicas {
			t.Errorf("Deployment %s: replicas %v with autoscaling on, want at least minReplicas %d: the upgrade that turns autoscaling on would drop to 1 pod", dep.Name, dep.Spec.Replicas, minReplicas)
		}
		for _, m := range hpa.Spec.Metrics {
			if m.Resource == nil || m.Resource.Name != corev1.ResourceCPU {
				continue
			}
			var perPod resource.Quantity
			switch m.Resource.Target.Type {
			case autoscalingv2.AverageValueMetricType:
				perPod = *m.Resource.Target.AverageValue
			case autoscalingv2.UtilizationMetricType:
				req := dep.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU]
				perPod = *resource.NewMilliQuantity(req.MilliValue()*int64(*m.Resource.Target.AverageUtilization)/100, resource.DecimalSI)
			}
			if perPod.Cmp(resource.MustParse(minCPU)) < 0 {
				t.Errorf("HPA %s: scales out at %s of CPU per pod, under %s (about 5 logins/s): trivial load adds pods", hpa.Name, perPod.String(), minCPU)
			}
		}
	}
}

// TestHelmTestRemovesItsUser: the `helm test` pod deletes the user it signs up (DELETE /api/auth/me), from a
// trap, so a failed step leaves no user behind either; a deletion that fails fails the test.
func TestHelmTestRemovesItsUser(t *testing.T) {
	for _, pod := range each[*corev1.Pod](set_(render(t, renderCase{Chart: "moviebag"}))) {
		if pod.Annotations["helm.sh/hook"] != "test" {
			continue
		}
		script := strings.Join(append(pod.Spec.Containers[0].Command, pod.Spec.Containers[0].Args...), "\n")
		if !strings.Contains(script, "/api/auth/signup") {
			continue
		}
		if !strings.Contains(script, "-X DELETE") || !strings.Contains(script, `"$AUTH_URL/api/auth/me"`) {
			t.Errorf("%s: signs a user up and never deletes it (DELETE $AUTH_URL/api/auth/me): every helm test leaves one in the database", pod.Name)
		}
		if !strings.Contains(script, "trap cleanup EXIT") {
			t.Errorf("%s: the user is not deleted when a step fails (no trap on EXIT)", pod.Name)
		}
		// DELETE /api/auth/me is part of the API: a test that cannot delete its user fails.
		if strings.Contains(script, "404|405") || !strings.Contains(script, `test -n "$deleted" || exit 1`) {
			t.Errorf("%s: passes when the test user could not be deleted", pod.Name)
		}
		return
	}
	t.Fatal("no helm test pod signs a user up")
}

// TestCloudHealthCheck: global.moviebag.cloudHealthCheck points a cloud load balancer's health checks at the
// admin port's /readyz (by default they ask GET / on the serving port, 404 there, and mark every backend
// unhealthy), and the NetworkPolicies admit the routing neighbour's addresses on that port.
func TestCloudHealthCheck(t *testing.T) {
	lb := endpoint{Name: "an ALB health checker in the VPC", IP: "10.0.3.7"}
	t.Run("aws", func(t *testing.T) {
		objs := render(t, renderCase{Chart: "moviebag"}, "--set", "global.moviebag.cloudHealthCheck=aws",
			"--set", "global.moviebag.neighbours.routing.ipBlocks={10.0.0.0/16}")
		s := set_(objs)
		svcs := each[*corev1.Service](s)
		n := 0
		for _, svc := range svcs {
			var admin int32
			for _, p := range svc.Spec.Ports {
				if p.Name == "admin" {
					admin = p.Port
				}
			}
			if admin == 0 || svc.Labels["app.kubernetes.io/component"] != "api" {
				continue
			}
			n++
			if svc.Annotations["alb.ingress.kubernetes.io/healthcheck-port"] != strconv.Itoa(int(admin)) || svc.Annotations["alb.ingress.kubernetes.io/healthcheck-path"] != "/readyz" {
				t.Errorf("Service %s: ALB health check annotations %v, want port %d and path /readyz", svc.Name, svc.Annotations, admin)
			}
		}
		if n != 2 {
			t.Fatalf("%d API Services, want auth's and movies'", n)
		}
		for _, d := range kinds(objs, "Deployment") {
			p := podEndpoint(workloadOf(d))
			if !allowed(each[*networkingv1.NetworkPolicy](s), lb, p, p.Ports["admin"], corev1.ProtocolTCP) {
				t.Errorf("%s: the load balancer's health checks (from routing.ipBlocks) cannot reach the admin port", p.Name)
			}
		}
	})
	t.Run("gke", func(t *testing.T) {
		chartDeps(t)
		out := string(run(t, repoRoot, tool(t, "helm"), append([]string{"template", releaseName, "helm/moviebag", "--namespace", namespace,
			"--set", "global.moviebag.cloudHealthCheck=gke", "--api-versions", "networking.gke.io/v1/HealthCheckPolicy"}, offline("moviebag")...)...))
		for _, kind := range []string{"BackendConfig", "HealthCheckPolicy"} {
			if got := strings.Count(out, "\nkind: "+kind+"\n"); got != 2 {
				t.Errorf("rendered %d %s objects, want one per service", got, kind)
			}
		}
		if strings.Count(out, "requestPath: /readyz") != 4 || !strings.Contains(out, `cloud.google.com/backend-config: '{"default":"mb-auth"}'`) {
			t.Errorf("GKE health checks not on /readyz of the admin port, or the Services do not name their BackendConfig")
		}
	})
	t.Run("off by default", func(t *testing.T) {
		for _, svc := range each[*corev1.Service](set_(render(t, renderCase{Chart: "moviebag"}))) {
			for k := range svc.Annotations {
				if strings.HasPrefix(k, "alb.") || strings.HasPrefix(k, "cloud.google.com/") {
					t.Errorf("Service %s: annotation %s without cloudHealthCheck", svc.Name, k)
				}
			}
		}
	})
}
