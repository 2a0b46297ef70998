package k8stest

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
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
// trap, so a failed step leaves no user behind either.
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
		return
	}
	t.Fatal("no helm test pod signs a user up")
}
