package render

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSigningKeysOffline: where helm cannot see the cluster (helm template, as Argo CD renders) the chart
// refuses to generate a signing key, which every render would mint anew, and says how to make the Secret
// once; with signingKeys.existingSecret it renders no key at all.
func TestSigningKeysOffline(t *testing.T) {
	helm := tool(t, "helm")
	chartDeps(t)
	for _, chart := range []string{"auth", "moviebag"} {
		t.Run(chart, func(t *testing.T) {
			out, err := runErr(repoRoot, helm, "template", releaseName, "helm/"+chart, "--namespace", namespace)
			if err == nil {
				t.Fatalf("helm template generated a signing key without a cluster: every render (every Argo CD sync) would mint a new one\n%s", tail(string(out)))
			}
			for _, want := range []string{"existingSecret", "kubectl -n " + namespace + " create secret generic", "openssl genpkey -algorithm RSA"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the refusal does not say %q: %v", want, err)
				}
			}
		})
	}
	key := map[string]string{"auth": "signingKeys.existingSecret=keys", "moviebag": "auth.signingKeys.existingSecret=keys"}
	for chart, set := range key {
		t.Run(chart+" existingSecret", func(t *testing.T) {
			out := run(t, repoRoot, helm, "template", releaseName, "helm/"+chart, "--namespace", namespace, "--set", set)
			objs, err := decodeAll(out)
			if err != nil {
				t.Fatal(err)
			}
			for _, sec := range each[*corev1.Secret](set_(objs)) {
				if strings.HasSuffix(sec.Name, "-signing-keys") {
					t.Errorf("rendered Secret %s although signingKeys.existingSecret is set", sec.Name)
				}
			}
		})
	}
}

// set_ wraps objects for each[].
func set_(objs []object) *set { return &set{objs: objs} }

// TestExistingSecretChecksum: with an existing storage Secret, new credentials in it change the pods'
// checksum/storage (so `helm upgrade` rolls them), and the same Secret gives the same checksum (an upgrade
// with nothing changed rolls nothing).
func TestExistingSecretChecksum(t *testing.T) {
	c := startCluster(t)
	helm := tool(t, "helm")
	chartDeps(t)
	const ns = "rotate"
	c.namespace(t, ns)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "moviebag-storage", Namespace: ns},
		Data:       map[string][]byte{"MONGO_URI": []byte("mongodb://user:one@db:27017"), "REDIS_URL": []byte("redis://:one@redis:6379/0")},
	}
	ctx := context.Background()
	if _, err := c.client.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	checksums := func() map[string]string {
		out := run(t, repoRoot, helm, "template", releaseName, "helm/moviebag", "--namespace", ns, "--dry-run=server", "--kubeconfig", c.kubeconfig,
			"--set", "global.moviebag.storage.existingSecret=moviebag-storage", "--set", "mongodb.enabled=false", "--set", "redis.enabled=false")
		objs, err := decodeAll(out)
		if err != nil {
			t.Fatal(err)
		}
		sums := map[string]string{}
		for _, d := range each[*appsv1.Deployment](set_(objs)) {
			sums[d.Name] = d.Spec.Template.Annotations["checksum/storage"]
		}
		if len(sums) != 2 || sums[releaseName+"-auth"] == "" || sums[releaseName+"-movies"] == "" {
			t.Fatalf("want checksum/storage on both Deployments: %v", sums)
		}
		return sums
	}
	before := checksums()
	if again := checksums(); again[releaseName+"-auth"] != before[releaseName+"-auth"] {
		t.Errorf("two renders of the same Secret differ: every upgrade would roll the pods")
	}
	secret.Data["MONGO_URI"] = []byte("mongodb://user:two@db:27017")
	if _, err := c.client.CoreV1().Secrets(ns).Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	after := checksums()
	for name, sum := range before {
		if after[name] == sum {
			t.Errorf("%s: checksum/storage unchanged after the existing Secret's credentials changed: helm upgrade restarts nothing", name)
		}
	}
}

// TestAutoscalingKeepsRunningCount: against a cluster, an upgrade with autoscaling on renders the replicas the
// Deployment runs now (the HPA's choice), not minReplicas: an upgrade never scales an autoscaled service down.
func TestAutoscalingKeepsRunningCount(t *testing.T) {
	c := startCluster(t)
	helm := tool(t, "helm")
	chartDeps(t)
	const ns = "scaled"
	c.namespace(t, ns)
	render := func() map[string]int32 {
		out := run(t, repoRoot, helm, "template", releaseName, "helm/moviebag", "--namespace", ns, "--dry-run=server", "--kubeconfig", c.kubeconfig,
			"--set", "auth.autoscaling.enabled=true", "--set", "movies.autoscaling.enabled=true")
		objs, err := decodeAll(out)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int32{}
		for _, d := range each[*appsv1.Deployment](set_(objs)) {
			if d.Spec.Replicas == nil {
				t.Fatalf("Deployment %s: no replicas", d.Name)
			}
			got[d.Name] = *d.Spec.Replicas
		}
		return got
	}
	if got := render(); got[releaseName+"-auth"] != 2 {
		t.Fatalf("install: auth replicas %d, want minReplicas 2", got[releaseName+"-auth"])
	}
	// The HPA scaled auth to 5: the Deployment in the cluster says so.
	objs, err := decodeAll(run(t, repoRoot, helm, "template", releaseName, "helm/moviebag", "--namespace", ns, "--dry-run=server", "--kubeconfig", c.kubeconfig,
		"--set", "auth.autoscaling.enabled=true", "--show-only", "charts/auth/templates/deployment.yaml"))
	if err != nil || len(objs) != 1 {
		t.Fatalf("auth Deployment: %v", err)
	}
	dep := objs[0].Obj.(*appsv1.Deployment)
	five := int32(5)
	dep.Spec.Replicas = &five
	if _, err := c.client.AppsV1().Deployments(ns).Create(context.Background(), dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := render(); got[releaseName+"-auth"] != 5 || got[releaseName+"-movies"] != 2 {
		t.Errorf("upgrade: replicas %v, want auth's running 5 kept and movies at minReplicas 2", got)
	}
}
