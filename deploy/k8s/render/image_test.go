package render

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"sigs.k8s.io/yaml"
)

// The version and revision a test build stamps, to be found again in the image's labels.
const (
	testImageVersion  = "v9.8.7-render"
	testImageRevision = "0123456789abcdef0123456789abcdef01234567"
)

// servicePorts are the ports of the contract: API, then admin.
var servicePorts = map[string][]string{"auth": {"8081", "9091"}, "movies": {"8082", "9092"}}

// imageMake runs a make target of the image definition in the repository root, with the service binary
// built in a directory of the test's own (bin/ is shared with the test cluster) and a fixed version.
func imageMake(t *testing.T, args ...string) []byte {
	t.Helper()
	mk := tool(t, "make")
	tool(t, "go")
	full := append([]string{"--no-print-directory", "IMAGE_BUILD_DIR=" + t.TempDir(),
		"IMAGE_VERSION=" + testImageVersion, "IMAGE_REVISION=" + testImageRevision}, args...)
	return run(t, repoRoot, mk, full...)
}

// checkServiceImage checks what the image definition promises: linux on the given architecture, the
// static binary of the service as entrypoint for that architecture, run as nonroot 65532, the contract's
// ports, the OCI labels with the build's version and revision, and a distroless-like base layer.
func checkServiceImage(t *testing.T, img v1.Image, svc, arch string) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != arch {
		t.Errorf("%s: platform %s/%s, want linux/%s (the CRI refuses an image without them)", svc, cf.OS, cf.Architecture, arch)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("%s: user %q, want 65532:65532 (nonroot, as the charts' runAsUser)", svc, c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/" + svc}) || len(c.Cmd) != 0 {
		t.Errorf("%s: entrypoint %q cmd %q, want exactly [/%s] (no shell in the image)", svc, c.Entrypoint, c.Cmd, svc)
	}
	var ports []string
	for p := range c.ExposedPorts {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	if want := []string{servicePorts[svc][0] + "/tcp", servicePorts[svc][1] + "/tcp"}; !slices.Equal(ports, want) {
		t.Errorf("%s: exposed ports %v, want %v", svc, ports, want)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.title":    "moviebag-" + svc,
		"org.opencontainers.image.source":   "https://github.com/moviebag/moviebag",
		"org.opencontainers.image.version":  testImageVersion,
		"org.opencontainers.image.revision": testImageRevision,
	} {
		if c.Labels[k] != want {
			t.Errorf("%s: label %s = %q, want %q", svc, k, c.Labels[k], want)
		}
	}
	files := imageFiles(t, img)
	if !strings.Contains(string(files["etc/passwd"]), "nonroot:x:65532:65532:") {
		t.Errorf("%s: /etc/passwd has no nonroot 65532: %q", svc, files["etc/passwd"])
	}
	if !bytes.Contains(files["etc/ssl/certs/ca-certificates.crt"], []byte("BEGIN CERTIFICATE")) {
		t.Errorf("%s: no CA certificates", svc)
	}
	if _, ok := files["usr/share/zoneinfo/Etc/UTC"]; !ok {
		t.Errorf("%s: no time zones (/usr/share/zoneinfo)", svc)
	}
	for _, shell := range []string{"bin/sh", "bin/busybox", "usr/bin/sh"} {
		if _, ok := files[shell]; ok {
			t.Errorf("%s: /%s in the image: the service images carry no shell", svc, shell)
		}
	}
	bin, ok := files[svc]
	if !ok {
		t.Fatalf("%s: no /%s in the image", svc, svc)
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("%s: /%s is not an ELF program: %v", svc, svc, err)
	}
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != machine {
		t.Errorf("%s: /%s is built for %s, the image says %s", svc, svc, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s: /%s is dynamically linked: the image has no C library", svc, svc)
		}
	}
}

// imageFiles reads every regular file of an image's layers (later layers win).
func imageFiles(t *testing.T, img v1.Image) map[string][]byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimPrefix(h.Name, "/")] = b
		}
		_ = rc.Close()
	}
	return files
}

// TestImageTarball builds auth's image as the test cluster does (`make image-auth IMAGE_OUTPUT=tar`)
// and checks the image it wrote.
func TestImageTarball(t *testing.T) {
	dir := t.TempDir()
	const ref = "moviebag.local/moviebag-auth:render"
	imageMake(t, "image-auth", "IMAGE="+ref, "IMAGE_OUTPUT=tar", "IMAGES_DIR="+dir, "GOARCH_IMAGE=amd64")
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(filepath.Join(dir, "auth.tar"), &tag)
	if err != nil {
		t.Fatalf("the tarball does not hold %s: %v", ref, err)
	}
	checkServiceImage(t, img, "auth", "amd64")
}

// TestImageRefusesUnknownOutput: a misspelt IMAGE_OUTPUT fails instead of writing a tarball nobody reads.
func TestImageRefusesUnknownOutput(t *testing.T) {
	out, err := runEnv(repoRoot, os.Environ(), tool(t, "make"), "--no-print-directory", "image-auth", "IMAGE_OUTPUT=registry")
	if err == nil || !strings.Contains(string(out)+err.Error(), "want tar, push or docker") {
		t.Fatalf("make image-auth IMAGE_OUTPUT=registry did not refuse: %v\n%s", err, out)
	}
}

// localRegistry is go-containerregistry's in-memory registry on loopback (plain HTTP, which
// go-containerregistry uses for 127.0.0.1); it returns the host:port to put in image references.
func localRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(nopLogger())))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestReleaseImages runs the release workflow's image step (release.yaml, job images, step push) as
// written, with ghcr.io replaced by a registry on loopback: one image per architecture, then the
// multi-arch index under every tag, with the version and revision as the index's annotations.
func TestReleaseImages(t *testing.T) {
	reg := localRegistry(t)
	b, err := os.ReadFile(filepath.Join(repoRoot, ".github", "workflows", "release.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				ID  string `json:"id"`
				Run string `json:"run"`
			} `json:"steps"`
		} `json:"jobs"`
	}
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatal(err)
	}
	script := ""
	for _, s := range wf.Jobs["images"].Steps {
		if s.ID == "push" {
			script = s.Run
		}
	}
	if !strings.Contains(script, `repo="ghcr.io/`) || !strings.Contains(script, "make \"image-${SERVICE}\"") || !strings.Contains(script, "make \"image-index-${SERVICE}\"") {
		t.Fatalf("release.yaml: job images has no step `push` that runs make image-<service> and image-index-<service> into ghcr.io:\n%s", script)
	}
	script = strings.ReplaceAll(script, `repo="ghcr.io/`, `repo="`+reg+`/`)
	tmp := t.TempDir()
	repo := reg + "/owner/moviebag-movies"
	tags := []string{repo + ":9.8.7", repo + ":9.8"}
	env := []string{
		"SERVICE=movies", "TAGS=" + strings.Join(tags, "\n"),
		"IMAGE_VERSION=" + testImageVersion, "IMAGE_REVISION=" + testImageRevision,
		"GITHUB_REPOSITORY_OWNER=Owner", "GITHUB_REF_NAME=v9.8.7",
		"GITHUB_OUTPUT=" + filepath.Join(tmp, "output"), "RUNNER_TEMP=" + tmp,
		"IMAGE_BUILD_DIR=" + filepath.Join(tmp, "build"),
	}
	tool(t, "make")
	tool(t, "go")
	if _, err := runEnv(repoRoot, append(os.Environ(), env...), "bash", "-euo", "pipefail", "-c", script); err != nil {
		t.Fatal(err)
	}
	outputs, _ := os.ReadFile(filepath.Join(tmp, "output"))
	var digest string
	for _, tag := range tags {
		ref, err := name.ParseReference(tag)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(ref)
		if err != nil {
			t.Fatalf("%s: no image index: %v", tag, err)
		}
		d, _ := idx.Digest()
		digest = d.String()
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if im.Annotations["org.opencontainers.image.version"] != testImageVersion || im.Annotations["org.opencontainers.image.revision"] != testImageRevision {
			t.Errorf("%s: index annotations %v lack the version and revision", tag, im.Annotations)
		}
		var platforms []string
		for _, m := range im.Manifests {
			if m.Platform == nil {
				t.Errorf("%s: manifest %s without a platform", tag, m.Digest)
				continue
			}
			platforms = append(platforms, m.Platform.String())
			img, err := idx.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			t.Run(m.Platform.Architecture, func(t *testing.T) { checkServiceImage(t, img, "movies", m.Platform.Architecture) })
		}
		slices.Sort(platforms)
		if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
			t.Errorf("%s: platforms %v, want linux/amd64 and linux/arm64", tag, platforms)
		}
	}
	for _, want := range []string{"name=" + repo + "\n", "digest=" + digest + "\n"} {
		if !strings.Contains(string(outputs), want) {
			t.Errorf("step outputs %q lack %q (the provenance attestation's subject)", outputs, want)
		}
	}
}
