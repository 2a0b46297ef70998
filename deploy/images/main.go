// Command assemble-image assembles an OCI container image from files on this machine, with no base image
// to pull and no container engine: a distroless-like base layer it writes itself (users, CA certificates,
// time zones), static Go binaries, and host programs together with the shared libraries they load.
//
// It is the one image definition of moviebag: `make images` (the test cluster), skaffold's custom
// builder and the release workflow all build the service images through deploy/make/images.mk
// (image-auth, image-movies), which builds this command as bin/assemble-image and calls it. The image is
// written as a tarball (`-o`), loaded into Docker (`-docker`) or pushed to a registry (`-push`).
//
// With -index it instead pushes a multi-platform image index made of images already pushed (one per
// architecture, `-manifest REF` each), the platforms read from their configs: the release pushes one
// image per GOARCH and then the index under the version tag.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/daemon"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "assemble-image:", err)
		os.Exit(1)
	}
}

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

type options struct {
	tag        string
	out        string
	push       bool
	docker     bool
	base       bool
	files      list // SRC:DST, copied as they are
	bins       list // SRC:DST, plus the shared libraries `ldd SRC` lists
	dirs       list // DIR[:MODE], empty directories
	links      list // TARGET:LINK, symbolic links
	user       string
	entrypoint list
	cmd        list
	env        list
	ports      list
	labels     list
	workdir    string
	arch       string
	index      bool
	manifests  list // -index: image references, one per platform
	digestFile string
}

func run(args []string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("assemble-image", flag.ContinueOnError)
	fs.StringVar(&o.tag, "tag", "", "image reference (required), e.g. moviebag.local/auth:dev or ghcr.io/org/auth:v1")
	fs.StringVar(&o.out, "o", "", "write the image as a tarball to this file (docker save format, which ctr and docker load)")
	fs.BoolVar(&o.push, "push", false, "push the image to the registry named by -tag")
	fs.BoolVar(&o.docker, "docker", false, "load the image into the local Docker daemon")
	fs.BoolVar(&o.base, "base", false, "add the base layer: /etc/passwd and /etc/group (root, nonroot 65532), CA certificates, /usr/share/zoneinfo, /tmp")
	fs.Var(&o.files, "add", "SRC:DST: a file of this machine, at DST in the image (repeatable)")
	fs.Var(&o.bins, "add-bin", "SRC:DST: a dynamically linked program and every shared library it loads (repeatable)")
	fs.Var(&o.dirs, "dir", "DIR[:MODE]: an empty directory, mode octal (default 0755) (repeatable)")
	fs.Var(&o.links, "link", "TARGET:/LINK: a symbolic link (repeatable)")
	fs.StringVar(&o.user, "user", "", "user[:group] the container runs as")
	fs.Var(&o.entrypoint, "entrypoint", "entrypoint, one argument per flag (repeatable)")
	fs.Var(&o.cmd, "cmd", "default arguments, one per flag (repeatable)")
	fs.Var(&o.env, "env", "KEY=VALUE (repeatable)")
	fs.Var(&o.ports, "port", "exposed TCP port (repeatable)")
	fs.Var(&o.labels, "label", "KEY=VALUE image label (repeatable)")
	fs.StringVar(&o.workdir, "workdir", "/", "working directory")
	fs.StringVar(&o.arch, "arch", runtime.GOARCH, "architecture recorded in the image (the binaries must match it)")
	fs.BoolVar(&o.index, "index", false, "push a multi-platform image index of the -manifest images to -tag (needs -push; -label sets its annotations)")
	fs.Var(&o.manifests, "manifest", "-index: an image already in the registry, one per platform (repeatable)")
	fs.StringVar(&o.digestFile, "digest-file", "", "also write the digest of what was built (sha256:...) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.tag == "" {
		return errors.New("-tag is required")
	}
	if n := btoi(o.out != "") + btoi(o.push) + btoi(o.docker); n != 1 {
		return errors.New("give exactly one of -o FILE, -push and -docker")
	}
	ref, err := name.ParseReference(o.tag)
	if err != nil {
		return fmt.Errorf("-tag: %w", err)
	}
	if o.index {
		return pushIndex(o, ref, stdout)
	}
	if len(o.manifests) > 0 {
		return errors.New("-manifest needs -index")
	}
	img, err := build(o)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	if err := writeDigest(o.digestFile, digest); err != nil {
		return err
	}
	switch {
	case o.out != "":
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		tmp := o.out + ".tmp"
		if err := tarball.WriteToFile(tmp, ref, img); err != nil {
			return fmt.Errorf("write %s: %w", o.out, err)
		}
		if err := os.Rename(tmp, o.out); err != nil {
			return err
		}
		_, _ = fmt.Fprintf(stdout, "assemble-image: %s (%s) written to %s\n", ref, digest, o.out)
	case o.push:
		if err := remote.Write(ref, img, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		_, _ = fmt.Fprintf(stdout, "assemble-image: pushed %s@%s\n", ref.Context(), digest)
	case o.docker:
		tag, ok := ref.(name.Tag)
		if !ok {
			return fmt.Errorf("-docker needs a tag, not a digest: %s", ref)
		}
		if _, err := daemon.Write(tag, img); err != nil {
			return fmt.Errorf("load %s into Docker: %w", ref, err)
		}
		_, _ = fmt.Fprintf(stdout, "assemble-image: %s (%s) loaded into Docker\n", ref, digest)
	}
	return nil
}

// pushIndex pushes an OCI image index of the -manifest images, each with the platform its config
// records, annotated with the -label pairs.
func pushIndex(o options, ref name.Reference, stdout io.Writer) error {
	if !o.push || len(o.manifests) == 0 {
		return errors.New("-index needs -push and at least one -manifest")
	}
	auth := remote.WithAuthFromKeychain(authn.DefaultKeychain)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	seen := map[string]string{}
	for _, m := range o.manifests {
		mref, err := name.ParseReference(m)
		if err != nil {
			return fmt.Errorf("-manifest %s: %w", m, err)
		}
		img, err := remote.Image(mref, auth)
		if err != nil {
			return fmt.Errorf("-manifest %s: %w", m, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return fmt.Errorf("-manifest %s: config: %w", m, err)
		}
		if cf.OS == "" || cf.Architecture == "" {
			return fmt.Errorf("-manifest %s: its config records no os/architecture", m)
		}
		platform := cf.Platform()
		if prev, ok := seen[platform.String()]; ok {
			return fmt.Errorf("-manifest %s and %s are both %s", prev, m, platform)
		}
		seen[platform.String()] = m
		desc, err := partial.Descriptor(img)
		if err != nil {
			return err
		}
		desc.Platform = platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: *desc})
	}
	if len(o.labels) > 0 {
		ann := map[string]string{}
		for _, kv := range o.labels {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("-label %q: want KEY=VALUE", kv)
			}
			ann[k] = v
		}
		idx = mutate.Annotations(idx, ann).(v1.ImageIndex)
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(ref, idx, auth); err != nil {
		return fmt.Errorf("push index %s: %w", ref, err)
	}
	if err := writeDigest(o.digestFile, digest); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(stdout, "assemble-image: pushed index %s@%s (%d platforms)\n", ref.Context(), digest, len(o.manifests))
	return nil
}

func writeDigest(file string, d v1.Hash) error {
	if file == "" {
		return nil
	}
	return os.WriteFile(file, []byte(d.String()+"\n"), 0o644)
}

func build(o options) (v1.Image, error) {
	var layers []*layer
	if o.base {
		l, err := baseLayer()
		if err != nil {
			return nil, fmt.Errorf("base layer: %w", err)
		}
		layers = append(layers, l)
	}
	app := newLayer()
	for _, d := range o.dirs {
		dir, mode, err := splitMode(d)
		if err != nil {
			return nil, fmt.Errorf("-dir %s: %w", d, err)
		}
		app.dir(dir, mode)
	}
	for _, f := range o.files {
		src, dst, err := splitPair(f)
		if err != nil {
			return nil, fmt.Errorf("-add %s: %w", f, err)
		}
		if err := app.file(src, dst); err != nil {
			return nil, err
		}
	}
	for _, b := range o.bins {
		src, dst, err := splitPair(b)
		if err != nil {
			return nil, fmt.Errorf("-add-bin %s: %w", b, err)
		}
		libs, err := sharedLibraries(src)
		if err != nil {
			return nil, err
		}
		for _, lib := range libs {
			if err := app.file(lib, lib); err != nil {
				return nil, err
			}
		}
		if err := app.file(src, dst); err != nil {
			return nil, err
		}
	}
	for _, ln := range o.links {
		target, link, err := splitPair(ln)
		if err != nil {
			return nil, fmt.Errorf("-link %s: %w", ln, err)
		}
		app.symlink(target, link)
	}
	layers = append(layers, app)

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, l := range layers {
		tl, err := l.finish()
		if err != nil {
			return nil, err
		}
		if img, err = mutate.Append(img, mutate.Addendum{Layer: tl, MediaType: types.OCILayer}); err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = o.arch
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config.User = o.user
	cf.Config.Entrypoint = o.entrypoint
	cf.Config.Cmd = o.cmd
	cf.Config.WorkingDir = o.workdir
	cf.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}, o.env...)
	if o.base {
		cf.Config.Env = append(cf.Config.Env, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt")
	}
	if len(o.ports) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range o.ports {
			cf.Config.ExposedPorts[p+"/tcp"] = struct{}{}
		}
	}
	if len(o.labels) > 0 {
		cf.Config.Labels = map[string]string{}
		for _, kv := range o.labels {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("-label %q: want KEY=VALUE", kv)
			}
			cf.Config.Labels[k] = v
		}
	}
	return mutate.ConfigFile(img, cf)
}

// baseLayer is what the services need of an operating system, as distroless/static has it.
func baseLayer() (*layer, error) {
	l := newLayer()
	l.dir("/tmp", 0o1777)
	l.bytes("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"))
	l.bytes("/etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\nnogroup:x:65534:\n"))
	l.dir("/home/nonroot", 0o700)
	l.owner("/home/nonroot", 65532)
	l.bytes("/etc/nsswitch.conf", 0o644, []byte("hosts: files dns\n"))
	certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		return nil, fmt.Errorf("CA certificates (Debian package ca-certificates): %w", err)
	}
	l.bytes("/etc/ssl/certs/ca-certificates.crt", 0o644, certs)
	if err := l.tree("/usr/share/zoneinfo"); err != nil {
		return nil, fmt.Errorf("time zones (Debian package tzdata): %w", err)
	}
	return l, nil
}

// sharedLibraries lists, through ldd, the files a dynamically linked program loads (none for a static one).
func sharedLibraries(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %v: %s", bin, err, out)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0]) // the dynamic loader
		case strings.Contains(line, "not found"):
			return nil, fmt.Errorf("ldd %s: %s", bin, strings.TrimSpace(line))
		}
	}
	return libs, nil
}

// layer builds one tar layer in memory, with fixed times and owners so the same inputs give the same digest.
type layer struct {
	entries map[string]entry
}

type entry struct {
	hdr  tar.Header
	data []byte
}

func newLayer() *layer { return &layer{entries: map[string]entry{}} }

func (l *layer) parents(p string) {
	for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
		if _, ok := l.entries[d]; !ok {
			l.dir(d, 0o755)
		}
	}
}

func (l *layer) dir(p string, mode int64) {
	p = path.Clean("/" + p)
	l.parents(p)
	l.entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(p, "/") + "/", Mode: mode}}
}

func (l *layer) owner(p string, id int) {
	e := l.entries[path.Clean("/"+p)]
	e.hdr.Uid, e.hdr.Gid = id, id
	l.entries[path.Clean("/"+p)] = e
}

func (l *layer) bytes(p string, mode int64, data []byte) {
	p = path.Clean("/" + p)
	l.parents(p)
	l.entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: mode, Size: int64(len(data))}, data: data}
}

func (l *layer) symlink(target, p string) {
	p = path.Clean("/" + p)
	l.parents(p)
	l.entries[p] = entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(p, "/"), Linkname: target, Mode: 0o777}}
}

// file copies a host file (symlinks followed), keeping its permission bits.
func (l *layer) file(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	l.bytes(dst, int64(st.Mode().Perm()), data)
	return nil
}

// tree copies a host directory, keeping symlinks as links.
func (l *layer) tree(root string) error {
	return filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			l.dir(p, int64(info.Mode().Perm()))
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			l.symlink(target, p)
		case info.Mode().IsRegular():
			return l.file(p, p)
		}
		return nil
	})
}

func (l *layer) finish() (v1.Layer, error) {
	names := make([]string, 0, len(l.entries))
	for n := range l.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := l.entries[n]
		e.hdr.ModTime = time.Unix(0, 0)
		e.hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

func splitPair(s string) (src, dst string, err error) {
	src, dst, ok := strings.Cut(s, ":")
	if !ok || src == "" || !strings.HasPrefix(dst, "/") {
		return "", "", errors.New("want SRC:/absolute/destination")
	}
	return src, dst, nil
}

func splitMode(s string) (string, int64, error) {
	dir, mode, ok := strings.Cut(s, ":")
	if !ok {
		return dir, 0o755, nil
	}
	var m int64
	if _, err := fmt.Sscanf(mode, "%o", &m); err != nil {
		return "", 0, fmt.Errorf("mode %q: want octal such as 0755", mode)
	}
	return dir, m, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
