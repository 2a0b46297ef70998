package k8stest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestSkaffold renders the deployment of each profile offline (skaffold calls helm)
// and checks that the built images reach the charts and the port-forwards reach
// rendered Services. Building needs Docker and is left to the e2e workflow.
func TestSkaffold(t *testing.T) {
	skaffold := tool(t, "skaffold")
	tool(t, "helm") // skaffold runs it from PATH
	chartDeps(t)
	var cfg struct {
		APIVersion string `json:"apiVersion"`
		Build      struct {
			Artifacts []struct {
				Image  string `json:"image"`
				Docker struct {
					Dockerfile string `json:"dockerfile"`
				} `json:"docker"`
			} `json:"artifacts"`
		} `json:"build"`
		PortForward []struct {
			ResourceType string `json:"resourceType"`
			ResourceName string `json:"resourceName"`
			Namespace    string `json:"namespace"`
			Port         int32  `json:"port"`
		} `json:"portForward"`
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, "skaffold.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.APIVersion != "skaffold/v4beta13" {
		t.Errorf("apiVersion %q, want skaffold/v4beta13", cfg.APIVersion)
	}
	for _, a := range cfg.Build.Artifacts {
		if _, err := os.Stat(filepath.Join(repoRoot, a.Docker.Dockerfile)); err != nil {
			t.Errorf("artifact %s: %v", a.Image, err)
		}
	}
	for _, profile := range []string{"kind", "minikube"} {
		t.Run(profile, func(t *testing.T) {
			// diagnose --yaml-only parses and validates the whole config with the profile applied.
			eff := run(t, repoRoot, skaffold, "diagnose", "-p", profile, "--yaml-only")
			if !slices.Contains([]string{"kind-moviebag", "minikube"}, kubeContext(t, eff)) {
				t.Errorf("profile %s: kubeContext %q", profile, kubeContext(t, eff))
			}
			out := run(t, repoRoot, skaffold, "render", "-p", profile, "--offline=true", "--digest-source=tag", "--tag", "k8stest")
			objs, err := decodeAll(out)
			if err != nil {
				t.Fatal(err)
			}
			images := map[string]string{}
			services := map[string]*corev1.Service{}
			for _, o := range objs {
				switch v := o.Obj.(type) {
				case *appsv1.Deployment:
					c := v.Spec.Template.Spec.Containers[0]
					images[c.Name] = c.Image
					if c.ImagePullPolicy != corev1.PullIfNotPresent {
						t.Errorf("%s: pullPolicy %s: a locally built image must not be pulled", v.Name, c.ImagePullPolicy)
					}
				case *corev1.Service:
					services[v.Namespace+"/"+v.Name] = v
				}
				if o.NS != "moviebag" {
					t.Errorf("%s: namespace %q, want moviebag", o, o.NS)
				}
			}
			for _, svc := range []string{"auth", "movies"} {
				if want := "moviebag-" + svc + ":k8stest"; images[svc] != want {
					t.Errorf("%s image %q, want the built %q", svc, images[svc], want)
				}
			}
			for _, pf := range cfg.PortForward {
				svc := services[pf.Namespace+"/"+pf.ResourceName]
				if pf.ResourceType != "service" || svc == nil || !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == pf.Port }) {
					t.Errorf("portForward %s/%s:%d does not reach a rendered Service port", pf.Namespace, pf.ResourceName, pf.Port)
				}
			}
		})
	}
}

func kubeContext(t *testing.T, effective []byte) string {
	var eff struct {
		Deploy struct {
			KubeContext string `json:"kubeContext"`
		} `json:"deploy"`
	}
	if err := yaml.Unmarshal(effective, &eff); err != nil {
		t.Fatalf("skaffold diagnose output: %v", err)
	}
	return eff.Deploy.KubeContext
}
