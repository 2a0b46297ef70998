package k8stest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfiles checks what matters in the images without a Docker engine:
// multi-stage, static build stamped with the version, distroless nonroot final
// stage, a non-root USER and an exec-form ENTRYPOINT, the ports of the contract.
func TestDockerfiles(t *testing.T) {
	ports := map[string][]string{"auth": {"8081", "9091"}, "movies": {"8082", "9092"}}
	for svc, want := range ports {
		t.Run(svc, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(repoRoot, "services", svc, "Dockerfile"))
			if err != nil {
				t.Fatal(err)
			}
			df := string(b)
			froms := regexp.MustCompile(`(?m)^FROM\s+(.+)$`).FindAllStringSubmatch(df, -1)
			if len(froms) < 2 {
				t.Fatalf("want a multi-stage build, got %d stages", len(froms))
			}
			final := df[strings.LastIndex(df, "\nFROM "):]
			for _, w := range []string{
				"CGO_ENABLED=0", "GOWORK=off", "-trimpath",
				"-X github.com/moviebag/moviebag/libs/buildinfo.Version=${VERSION}",
				"-X github.com/moviebag/moviebag/libs/buildinfo.Revision=${REVISION}",
				"COPY libs/ libs/", "COPY services/" + svc + "/ services/" + svc + "/",
				"cd services/" + svc + " &&",
				"gcr.io/distroless/static-debian12:nonroot",
			} {
				if !strings.Contains(df, w) {
					t.Errorf("Dockerfile lacks %q", w)
				}
			}
			if !regexp.MustCompile(`(?m)^USER 65532:65532$`).MatchString(final) {
				t.Errorf("final stage: want USER 65532:65532 (distroless nonroot)")
			}
			if !strings.Contains(final, `ENTRYPOINT ["/`+svc+`"]`) {
				t.Errorf("final stage: want exec-form ENTRYPOINT [\"/%s\"] (no shell in the image)", svc)
			}
			if regexp.MustCompile(`(?m)^RUN `).MatchString(final) {
				t.Errorf("final stage runs commands: it has no shell and must only copy")
			}
			for _, p := range want {
				if !regexp.MustCompile(`(?m)^EXPOSE .*\b` + p + `\b`).MatchString(df) {
					t.Errorf("EXPOSE lacks %s", p)
				}
			}
		})
	}
	di, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"*", "!libs/", "!services/"} {
		if !strings.Contains(string(di), "\n"+w+"\n") {
			t.Errorf(".dockerignore lacks %q (send only libs/ and services/)", w)
		}
	}
}
