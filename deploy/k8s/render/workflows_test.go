package render

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func workflowFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, ".github", "workflows", "*.y*ml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows in .github/workflows: %v", err)
	}
	return files
}

// TestActionlint lints every workflow, with shellcheck on the run: scripts (without
// shellcheck actionlint silently skips that rule, so its absence fails here).
func TestActionlint(t *testing.T) {
	actionlint := tool(t, "actionlint")
	shellcheck := tool(t, "shellcheck")
	args := append([]string{"-no-color", "-shellcheck", shellcheck}, workflowFiles(t)...)
	run(t, repoRoot, actionlint, args...)
}

// TestWorkflowsPinned: every action is pinned to a full version (vX.Y.Z) or a commit,
// never a branch or a floating major tag.
func TestWorkflowsPinned(t *testing.T) {
	uses := regexp.MustCompile(`(?m)^\s*(?:-\s*)?uses:\s*["']?([^"'\s#]+)`)
	pinned := regexp.MustCompile(`@(v\d+\.\d+\.\d+|[0-9a-f]{40})$`)
	for _, f := range workflowFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range uses.FindAllStringSubmatch(string(b), -1) {
			n++
			if strings.HasPrefix(m[1], "./") || strings.HasPrefix(m[1], "docker://") {
				continue
			}
			if !pinned.MatchString(m[1]) {
				t.Errorf("%s: %s is not pinned to a version (vX.Y.Z or a commit SHA)", filepath.Base(f), m[1])
			}
		}
		if n == 0 {
			t.Errorf("%s: no actions found; is the pattern still right?", filepath.Base(f))
		}
	}
}

// TestWorkflowShape: the jobs the project relies on are there and run what they should.
func TestWorkflowShape(t *testing.T) {
	type step struct {
		Uses string            `json:"uses"`
		Run  string            `json:"run"`
		With map[string]any    `json:"with"`
		Env  map[string]string `json:"env"`
	}
	type job struct {
		Services map[string]struct {
			Image string `json:"image"`
		} `json:"services"`
		Steps []step `json:"steps"`
	}
	read := func(name string) map[string]job {
		b, err := os.ReadFile(filepath.Join(repoRoot, ".github", "workflows", name))
		if err != nil {
			t.Fatal(err)
		}
		var wf struct {
			Jobs map[string]job `json:"jobs"`
		}
		if err := yaml.Unmarshal(b, &wf); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return wf.Jobs
	}
	runs := func(j job) string {
		var sb strings.Builder
		for _, s := range j.Steps {
			sb.WriteString(s.Uses + "\n" + s.Run + "\n")
		}
		return sb.String()
	}
	ci := read("ci.yaml")
	for name, want := range map[string][]string{
		// go vet's analyzers run in golangci-lint's govet (.golangci.yml; checked below).
		"lint": {"gofmt", "golangci-lint"},
		"test": {"make deps", "make test"},
		"e2e": {"helm/kind-action", "deploy/k8s/kind/cluster.yaml", "actions/setup-go", "make routing-up KUBE_CONTEXT=kind-moviebag",
			"skaffold run -p kind", "helm test", "deploy/e2e.sh http://localhost\n", "deploy/e2e.sh http://localhost:8080\n"},
	} {
		j, ok := ci[name]
		if !ok {
			t.Errorf("ci.yaml: no job %s", name)
			continue
		}
		all := runs(j)
		for _, s := range j.Steps {
			for _, v := range s.With {
				if str, ok := v.(string); ok {
					all += str + "\n"
				}
			}
		}
		for _, w := range want {
			if !strings.Contains(all, w) {
				t.Errorf("ci.yaml job %s does not run %q", name, w)
			}
		}
	}
	if cfg, err := os.ReadFile(filepath.Join(repoRoot, ".golangci.yml")); err != nil {
		t.Error(err)
	} else if !strings.Contains(string(cfg), "govet:") {
		t.Errorf(".golangci.yml does not configure govet: the workflows' lint would run none of go vet's analyzers")
	}
	if svc := ci["test"].Services; svc["mongodb"].Image == "" || svc["redis"].Image == "" {
		t.Errorf("ci.yaml job test: needs MongoDB and Redis service containers, has %v", svc)
	}
	if b, _ := os.ReadFile(filepath.Join(repoRoot, ".github", "workflows", "ci.yaml")); strings.Contains(string(b), "ingress-nginx") {
		t.Errorf("ci.yaml still installs ingress-nginx (retired upstream): the e2e job uses Traefik from make routing-up")
	}
	rel := read("release.yaml")
	all := runs(rel["images"]) + runs(rel["charts"])
	// The images come from the one image definition (TestReleaseImages runs that step); no Docker build.
	for _, w := range []string{`make "image-${SERVICE}"`, `make "image-index-${SERVICE}"`, "for arch in amd64 arm64", "actions/attest-build-provenance", "helm package", "helm push"} {
		if !strings.Contains(all, w) {
			t.Errorf("release.yaml does not run %q", w)
		}
	}
	for _, w := range []string{"docker/build-push-action", "Dockerfile"} {
		if strings.Contains(all, w) {
			t.Errorf("release.yaml uses %q: the images are built by make image-<service> only", w)
		}
	}
}

// TestShellScripts: shellcheck on the e2e script and on the helm test pod's script
// (the latter as POSIX sh: the curl image has no bash).
func TestShellScripts(t *testing.T) {
	shellcheck := tool(t, "shellcheck")
	run(t, repoRoot, shellcheck, filepath.Join("deploy", "e2e.sh"))
	found := false
	for _, o := range render(t, renderCase{Chart: "moviebag"}) {
		pod, ok := o.Obj.(*corev1.Pod)
		if !ok || pod.Annotations["helm.sh/hook"] != "test" {
			continue
		}
		found = true
		c := pod.Spec.Containers[0]
		if len(c.Command) < 2 || c.Command[0] != "/bin/sh" || len(c.Args) != 1 {
			t.Fatalf("helm test pod: want /bin/sh -ec SCRIPT, got %v %v", c.Command, c.Args)
		}
		f := filepath.Join(t.TempDir(), "helm-test.sh")
		if err := os.WriteFile(f, []byte(c.Args[0]), 0o600); err != nil {
			t.Fatal(err)
		}
		run(t, repoRoot, shellcheck, "-s", "sh", f)
	}
	if !found {
		t.Fatal("the umbrella chart renders no helm test pod")
	}
}
