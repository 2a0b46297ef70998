package render

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

// Module versions whose zips carry the CRDs installed into the test API server.
const (
	gatewayAPIModule         = "sigs.k8s.io/gateway-api@v1.6.3"
	prometheusOperatorModule = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
)

// cluster is an etcd and a kube-apiserver on free ports, with the CRDs the charts use.
// No controller runs: nothing is scheduled, namespaces get no default ServiceAccount
// unless the test makes one.
type cluster struct {
	dir        string
	procs      []*exec.Cmd
	cfg        *rest.Config
	kubeconfig string
	client     kubernetes.Interface
	dynamic    dynamic.Interface
	mapper     *restmapper.DeferredDiscoveryRESTMapper
}

var (
	clusterOnce sync.Once
	theCluster  *cluster
	clusterErr  error
)

// startCluster starts the shared API server on first use.
func startCluster(t testing.TB) *cluster {
	t.Helper()
	etcd := tool(t, "etcd")
	apiserver := tool(t, "kube-apiserver")
	crds := crdFiles(t)
	clusterOnce.Do(func() {
		theCluster, clusterErr = newCluster(etcd, apiserver, crds)
	})
	if clusterErr != nil {
		t.Fatalf("start etcd + kube-apiserver: %v", clusterErr)
	}
	return theCluster
}

func stopCluster() {
	if theCluster == nil {
		return
	}
	for i := len(theCluster.procs) - 1; i >= 0; i-- {
		p := theCluster.procs[i]
		_ = p.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
		}
	}
	_ = os.RemoveAll(theCluster.dir)
}

// crdFiles finds the CRDs of the kinds the charts render in the module cache
// (`make deps-k8s` downloads the modules).
func crdFiles(t testing.TB) []string {
	t.Helper()
	dir := func(mod string) string {
		out, err := runErr(repoRoot, "go", "mod", "download", "-json", mod)
		if err != nil {
			t.Fatalf("module %s is not in the module cache: run `make deps-k8s`: %v", mod, err)
		}
		var info struct{ Dir string }
		if err := yaml.Unmarshal(out, &info); err != nil || info.Dir == "" {
			t.Fatalf("go mod download %s: %v %s", mod, err, out)
		}
		return info.Dir
	}
	gw, po := dir(gatewayAPIModule), dir(prometheusOperatorModule)
	files := []string{
		filepath.Join(gw, "config", "crd", "standard", "gateway.networking.k8s.io_gatewayclasses.yaml"),
		filepath.Join(gw, "config", "crd", "standard", "gateway.networking.k8s.io_gateways.yaml"),
		filepath.Join(gw, "config", "crd", "standard", "gateway.networking.k8s.io_httproutes.yaml"),
		filepath.Join(po, "example", "prometheus-operator-crd", "monitoring.coreos.com_servicemonitors.yaml"),
		filepath.Join(po, "example", "prometheus-operator-crd", "monitoring.coreos.com_prometheusrules.yaml"),
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("CRD file: %v", err)
		}
	}
	return files
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func newCluster(etcdBin, apiserverBin string, crds []string) (c *cluster, err error) {
	c = &cluster{}
	if c.dir, err = os.MkdirTemp("", "render-apiserver-"); err != nil {
		return nil, err
	}
	theCluster = c // so stopCluster cleans up after a partial start
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	if err := c.start("etcd", etcdBin,
		"--name", "render", "--data-dir", filepath.Join(c.dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "render="+peerURL); err != nil {
		return nil, err
	}
	if err := c.waitHTTP("etcd", etcdURL+"/health", "", 30*time.Second); err != nil {
		return nil, err
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	const token = "render-admin-token"
	files := map[string][]byte{
		"sa.key":     pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"tokens.csv": []byte(token + ",admin,admin-uid,system:masters\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(c.dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	host := fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	if err := c.start("kube-apiserver", apiserverBin,
		"--etcd-servers", etcdURL, "--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(ports[2]),
		"--advertise-address", "127.0.0.1", "--cert-dir", filepath.Join(c.dir, "certs"),
		"--service-account-key-file", filepath.Join(c.dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(c.dir, "sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--token-auth-file", filepath.Join(c.dir, "tokens.csv"),
		"--authorization-mode", "AlwaysAllow", "--anonymous-auth=false"); err != nil {
		return nil, err
	}
	if err := c.waitHTTP("kube-apiserver", host+"/readyz", token, 90*time.Second); err != nil {
		return nil, err
	}

	c.cfg = &rest.Config{Host: host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 200, Burst: 400}
	c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: render, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: %q}}]
contexts: [{name: render, context: {cluster: render, user: admin}}]
current-context: render
`, host, token)
	if err := os.WriteFile(c.kubeconfig, []byte(kc), 0o600); err != nil {
		return nil, err
	}
	if c.client, err = kubernetes.NewForConfig(c.cfg); err != nil {
		return nil, err
	}
	if c.dynamic, err = dynamic.NewForConfig(c.cfg); err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.cfg)
	if err != nil {
		return nil, err
	}
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	if err := c.installCRDs(crds); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *cluster) start(name, bin string, args ...string) error {
	logf, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	c.procs = append(c.procs, cmd)
	return nil
}

func (c *cluster) logTail(name string) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, name+".log"))
	return tail(string(b))
}

func (c *cluster) waitHTTP(name, url, token string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready at %s after %s (%s); its log:\n%s", name, url, timeout, last, c.logTail(name))
}

func (c *cluster) installCRDs(files []string) error {
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var names []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		for _, doc := range bytes.Split(b, []byte("\n---")) {
			u, err := toUnstructured(doc)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			if u == nil || u.GetKind() != "CustomResourceDefinition" {
				continue
			}
			if _, err := c.dynamic.Resource(crdGVR).Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create CRD %s: %w", u.GetName(), err)
			}
			names = append(names, u.GetName())
		}
	}
	for _, name := range names {
		for {
			u, err := c.dynamic.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			established := false
			for _, cond := range conds {
				m, _ := cond.(map[string]any)
				established = established || (m["type"] == "Established" && m["status"] == "True")
			}
			if established {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("CRD %s never became Established", name)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	c.mapper.Reset()
	return nil
}

func toUnstructured(doc []byte) (*unstructured.Unstructured, error) {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	if s := strings.TrimSpace(string(j)); s == "null" || s == "{}" || s == "" {
		return nil, nil
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		return nil, err
	}
	return u, nil
}

// namespace creates a namespace and its default ServiceAccount (no controller makes it).
func (c *cluster) namespace(t testing.TB, name string) {
	t.Helper()
	ctx := context.Background()
	_, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	_, err = c.client.CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// dryRun sends one object to the server as a dry-run create with strict field
// validation: schema, unknown fields, CRD validation and CEL rules, admission.
func (c *cluster) dryRun(ctx context.Context, o object) error {
	u, err := toUnstructured(o.Raw)
	if err != nil {
		return err
	}
	m, err := c.mapper.RESTMapping(o.GVK.GroupKind(), o.GVK.Version)
	if err != nil {
		return fmt.Errorf("the server does not serve %s: %w", o.GVK, err)
	}
	var ri dynamic.ResourceInterface = c.dynamic.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = c.dynamic.Resource(m.Resource).Namespace(u.GetNamespace())
	}
	_, err = ri.Create(ctx, u, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
	return err
}

// TestServerDryRun sends every rendered object of every case to a real
// kube-apiserver as a strict dry-run create.
func TestServerDryRun(t *testing.T) {
	c := startCluster(t)
	for _, ns := range []string{namespace, "monitoring"} {
		c.namespace(t, ns)
	}
	for _, rc := range renderCases(t) {
		t.Run(rc.Name(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for _, o := range render(t, rc) {
				if err := c.dryRun(ctx, o); err != nil {
					t.Errorf("%s: %v", o, err)
				}
			}
		})
	}
}

// TestServerRefusesBrokenObjects makes sure the dry run is not a rubber stamp:
// mistakes rendering cannot see are refused by the server.
func TestServerRefusesBrokenObjects(t *testing.T) {
	c := startCluster(t)
	c.namespace(t, namespace)
	ctx := context.Background()
	broken := map[string]string{
		"HTTPRoute path without a leading slash": `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: broken, namespace: moviebag}
spec:
  parentRefs: [{name: eg}]
  rules: [{matches: [{path: {type: PathPrefix, value: api/movies}}], backendRefs: [{name: mb-movies, port: 8082}]}]`,
		"ServiceMonitor with a malformed interval": `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: broken, namespace: moviebag}
spec:
  selector: {matchLabels: {app: x}}
  endpoints: [{port: admin, interval: 30 seconds}]`,
		"Deployment with an unknown field": `apiVersion: apps/v1
kind: Deployment
metadata: {name: broken, namespace: moviebag}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: x, image: "x:1", imagePullPolicyy: Always}]}`,
		"Deployment whose selector misses its labels": `apiVersion: apps/v1
kind: Deployment
metadata: {name: broken, namespace: moviebag}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: other}}
    spec: {containers: [{name: x, image: "x:1"}]}`,
	}
	for name, doc := range broken {
		t.Run(name, func(t *testing.T) {
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatal(err)
			}
			gv, _ := schema.ParseGroupVersion(meta.APIVersion)
			err := c.dryRun(ctx, object{GVK: gv.WithKind(meta.Kind), Raw: []byte(doc)})
			if err == nil {
				t.Fatalf("the server accepted it")
			}
			t.Logf("refused: %v", err)
		})
	}
}

// TestHelmInstallDryRunServer runs `helm install --dry-run=server` of the umbrella
// against the API server (helm's own checks, lookups and capabilities).
func TestHelmInstallDryRunServer(t *testing.T) {
	c := startCluster(t)
	helm := tool(t, "helm")
	chartDeps(t)
	c.namespace(t, namespace)
	c.namespace(t, "monitoring")
	for _, rc := range renderCases(t) {
		if rc.Chart != "moviebag" {
			continue
		}
		t.Run(rc.Name(), func(t *testing.T) {
			args := append([]string{"install", releaseName}, rc.helmArgs("--namespace", namespace, "--dry-run=server", "--kubeconfig", c.kubeconfig)...)
			out := run(t, repoRoot, helm, args...)
			if !bytes.Contains(out, []byte("STATUS: pending-install")) || !bytes.Contains(out, []byte("NOTES:")) {
				t.Fatalf("unexpected helm install --dry-run=server output:\n%s", tail(string(out)))
			}
		})
	}
}

// TestSigningKeysKeptAcrossUpgrades: with a signing-keys Secret already in the
// namespace, the chart reuses it (lookup) instead of generating a new key, so an
// upgrade never invalidates issued tokens; and the pods' checksum/signing-keys is the
// same whether the Secret exists (an upgrade) or not (the install), so the first
// upgrade rolls nothing.
func TestSigningKeysKeptAcrossUpgrades(t *testing.T) {
	c := startCluster(t)
	helm := tool(t, "helm")
	chartDeps(t)
	const ns, fresh = "keys", "keys-fresh"
	c.namespace(t, ns)
	c.namespace(t, fresh)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	existing := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: releaseName + "-auth-signing-keys", Namespace: ns},
		Data:       map[string][]byte{"key-0007.pem": pemKey},
	}
	if _, err := c.client.CoreV1().Secrets(ns).Create(context.Background(), existing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	renderKeys := func(ns string) (map[string][]byte, string) {
		out := run(t, repoRoot, helm, "template", releaseName, "helm/moviebag", "--namespace", ns, "--dry-run=server", "--kubeconfig", c.kubeconfig)
		objs, err := decodeAll(out)
		if err != nil {
			t.Fatal(err)
		}
		var data map[string][]byte
		checksum := ""
		for _, o := range objs {
			switch v := o.Obj.(type) {
			case *corev1.Secret:
				if v.Name == existing.Name {
					data = v.Data
				}
			case *appsv1.Deployment:
				if v.Name == releaseName+"-auth" {
					checksum = v.Spec.Template.Annotations["checksum/signing-keys"]
				}
			}
		}
		if checksum == "" {
			t.Fatalf("namespace %s: the auth Deployment has no checksum/signing-keys annotation", ns)
		}
		return data, checksum
	}
	data, upgrade := renderKeys(ns)
	if len(data) != 1 || !bytes.Equal(data["key-0007.pem"], pemKey) {
		t.Fatalf("the chart did not reuse the existing signing keys; rendered keys: %v", keysOf(data))
	}
	freshData, install := renderKeys(fresh)
	if len(freshData) != 1 || freshData["key-0007.pem"] != nil {
		t.Fatalf("without a Secret the chart must generate one key, rendered %v", keysOf(freshData))
	}
	if install != upgrade {
		t.Errorf("checksum/signing-keys differs between install (%s) and upgrade (%s): the first upgrade would roll auth", install, upgrade)
	}
	if _, again := renderKeys(ns); again != upgrade {
		t.Errorf("two renders against the same cluster differ: an upgrade would roll the pods for nothing")
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

var _ = errors.Join
