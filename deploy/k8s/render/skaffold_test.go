package render

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// skaffoldArtifact is one build artifact of skaffold.yaml: a custom builder.
type skaffoldArtifact struct {
	Image   string `json:"image"`
	Context string `json:"context"`
	Custom  struct {
		BuildCommand string `json:"buildCommand"`
		Dependencies struct {
			Paths []string `json:"paths"`
		} `json:"dependencies"`
	} `json:"custom"`
}

func skaffoldArtifacts(t *testing.T) []skaffoldArtifact {
	t.Helper()
	var cfg struct {
		Build struct {
			Artifacts []skaffoldArtifact `json:"artifacts"`
		} `json:"build"`
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, "skaffold.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Build.Artifacts) != 2 {
		t.Fatalf("skaffold.yaml builds %d artifacts, want moviebag-auth and moviebag-movies", len(cfg.Build.Artifacts))
	}
	return cfg.Build.Artifacts
}

// TestSkaffoldBuild runs each artifact's custom build command as skaffold does (sh -c in the context,
// with IMAGE and PUSH_IMAGE set): with PUSH_IMAGE=true it pushes, here to a registry on loopback, the
// image of the project's one definition; with PUSH_IMAGE=false it loads into Docker (checked with
// make -n: no Docker engine runs here).
func TestSkaffoldBuild(t *testing.T) {
	tool(t, "make")
	tool(t, "go")
	reg := localRegistry(t)
	for _, a := range skaffoldArtifacts(t) {
		svc := strings.TrimPrefix(a.Image, "moviebag-")
		t.Run(svc, func(t *testing.T) {
			if _, ok := servicePorts[svc]; !ok || a.Custom.BuildCommand == "" {
				t.Fatalf("artifact %s: want moviebag-auth or moviebag-movies built by a custom buildCommand", a.Image)
			}
			for _, dep := range []string{"libs", "services/" + svc, "deploy/images"} {
				if !slices.Contains(a.Custom.Dependencies.Paths, dep) {
					t.Errorf("artifact %s: dependencies do not watch %s: skaffold dev would not rebuild on its changes", a.Image, dep)
				}
			}
			dir := filepath.Join(repoRoot, a.Context)
			ref := reg + "/" + a.Image + ":render"
			base := append(os.Environ(), "IMAGE="+ref, "BUILD_CONTEXT="+dir, "IMAGE_BUILD_DIR="+t.TempDir(),
				"IMAGE_VERSION="+testImageVersion, "IMAGE_REVISION="+testImageRevision)
			if _, err := runEnv(dir, append(base, "PUSH_IMAGE=true"), "sh", "-c", a.Custom.BuildCommand); err != nil {
				t.Fatal(err)
			}
			r, err := name.ParseReference(ref)
			if err != nil {
				t.Fatal(err)
			}
			img, err := remote.Image(r)
			if err != nil {
				t.Fatalf("PUSH_IMAGE=true did not push %s: %v", ref, err)
			}
			checkServiceImage(t, img, svc, runtime.GOARCH)
			out, err := runEnv(dir, append(base, "PUSH_IMAGE=false", "MAKEFLAGS=n"), "sh", "-c", a.Custom.BuildCommand)
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`assemble-image -tag ` + regexp.QuoteMeta(ref) + ` -docker `).Match(out) {
				t.Errorf("PUSH_IMAGE=false does not load %s into Docker:\n%s", ref, out)
			}
		})
	}
}

// TestSkaffold renders the deployment of each profile offline (skaffold calls helm)
// and checks that the built images reach the charts and the port-forwards reach
// rendered Services. How skaffold builds is TestSkaffoldBuild's.
func TestSkaffold(t *testing.T) {
	skaffold := tool(t, "skaffold")
	tool(t, "helm") // skaffold runs it from PATH
	chartDeps(t)
	var cfg struct {
		APIVersion string `json:"apiVersion"`
		Build      struct {
			Artifacts []skaffoldArtifact `json:"artifacts"`
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
	for _, profile := range []string{"kind", "minikube"} {
		t.Run(profile, func(t *testing.T) {
			// diagnose --yaml-only parses and validates the whole config with the profile applied.
			eff := run(t, repoRoot, skaffold, "diagnose", "-p", profile, "--yaml-only")
			if !slices.Contains([]string{"kind-moviebag", "minikube"}, kubeContext(t, eff)) {
				t.Errorf("profile %s: kubeContext %q", profile, kubeContext(t, eff))
			}
			out := run(t, repoRoot, skaffold, "render", "-p", profile, "--offline=true", "--digest-source=tag", "--tag", "render")
			objs, err := decodeAll(out)
			if err != nil {
				t.Fatal(err)
			}
			images := map[string]string{}
			services := map[string]*corev1.Service{}
			routes := 0
			for _, o := range objs {
				switch v := o.Obj.(type) {
				case *gatewayv1.HTTPRoute:
					routes++
				case *networkingv1.Ingress:
					routes++
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
				if want := "moviebag-" + svc + ":render"; images[svc] != want {
					t.Errorf("%s image %q, want the built %q", svc, images[svc], want)
				}
			}
			if routes != 2 {
				t.Errorf("profile %s renders %d of the HTTPRoute and the Ingress, want both (e2e runs through each)", profile, routes)
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
