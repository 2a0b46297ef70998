package render

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The Prometheus of the test cluster (a plain Deployment: the operator cannot be built here) and the rules
// it loads, which must be the chart's PrometheusRule.
const (
	clusterPrometheusManifest = "deploy/k8s/cluster/manifests/prometheus.yaml"
	rulesFile                 = "deploy/prometheus/moviebag-rules.yaml"
	// The test cluster installs the umbrella chart as this release (deploy/k8s/cluster/cluster.sh).
	clusterRelease = "moviebag"
)

// ruleJobMatcher is the matcher every selector of deploy/prometheus/moviebag-rules.yaml carries (checked by
// deploy/observability TestRulesScoped); the chart replaces it with monitoring.prometheusRule.selector.
const ruleJobMatcher = `job=~"(.+-)?(auth|movies)"`

// The PrometheusRule the chart renders carries exactly the rule groups of deploy/prometheus/moviebag-rules.yaml,
// the file the test cluster's Prometheus and the local checks (deploy/observability) load, with every
// selector scoped to the release: its two jobs in its namespace by default, or monitoring.prometheusRule.selector.
func TestPrometheusRuleIsTheRulesFile(t *testing.T) {
	file := string(readRepoFile(t, rulesFile))
	if !strings.Contains(file, ruleJobMatcher) {
		t.Fatalf("%s: no %s to scope", rulesFile, ruleJobMatcher)
	}
	cases := []struct {
		name     string
		set      []string
		selector string
	}{
		{"default: the release's jobs in its namespace", nil, `job=~"mb-auth|mb-movies", namespace="moviebag"`},
		{"monitoring.prometheusRule.selector", []string{"--set-json", `monitoring.prometheusRule.selector="cluster=\"eu1\", job=~\"mb-(auth|movies)\""`}, `cluster="eu1", job=~"mb-(auth|movies)"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want any
			if err := yaml.Unmarshal([]byte(strings.ReplaceAll(file, ruleJobMatcher, tc.selector)), &want); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, o := range render(t, renderCase{Chart: "moviebag"}, append([]string{"--set", "monitoring.prometheusRule.enabled=true"}, tc.set...)...) {
				if o.GVK.Kind != "PrometheusRule" {
					continue
				}
				n++
				if strings.Contains(string(o.Raw), "(.+-)?(auth|movies)") {
					t.Errorf("%s: an expression still reads every job named *-auth or *-movies", o)
				}
				var got struct {
					Spec any `json:"spec"`
				}
				if err := yaml.Unmarshal(o.Raw, &got); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got.Spec, want) {
					g, _ := json.MarshalIndent(got.Spec, "", " ")
					w, _ := json.MarshalIndent(want, "", " ")
					t.Errorf("%s: spec differs from %s scoped by %s:\n%s", o, rulesFile, tc.selector, firstDifference(string(g), string(w)))
				}
			}
			if n != 1 {
				t.Fatalf("%d PrometheusRules rendered, want 1", n)
			}
		})
	}
}

func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < min(len(g), len(w)); i++ {
		if g[i] != w[i] {
			return "line " + strconv.Itoa(i+1) + ":\n  rendered: " + g[i] + "\n  file:     " + w[i]
		}
	}
	return "one is a prefix of the other: " + strconv.Itoa(len(g)) + " lines rendered, " + strconv.Itoa(len(w)) + " in the file"
}

func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clusterPrometheus decodes the manifest strictly and returns its objects by kind.
func clusterPrometheus(t *testing.T) map[string][]object {
	t.Helper()
	objs, err := decodeAll(readRepoFile(t, clusterPrometheusManifest))
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string][]object{}
	for _, o := range objs {
		byKind[o.GVK.Kind] = append(byKind[o.GVK.Kind], o)
	}
	for _, kind := range []string{"Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "Service"} {
		if len(byKind[kind]) != 1 {
			t.Fatalf("%s: %d %s objects, want 1", clusterPrometheusManifest, len(byKind[kind]), kind)
		}
	}
	for kind := range byKind {
		if strings.HasPrefix(kind, "Cluster") {
			t.Errorf("%s: a %s grants cluster-wide access; discovery needs the release's namespace only", clusterPrometheusManifest, kind)
		}
	}
	return byKind
}

// scrapeConfig is the part of prometheus.yml the ServiceMonitors decide.
type scrapeConfig struct {
	RuleFiles     []string `json:"rule_files"`
	ScrapeConfigs []struct {
		JobName             string `json:"job_name"`
		HonorLabels         bool   `json:"honor_labels"`
		MetricsPath         string `json:"metrics_path"`
		Scheme              string `json:"scheme"`
		KubernetesSDConfigs []struct {
			Role       string `json:"role"`
			Namespaces struct {
				Names []string `json:"names"`
			} `json:"namespaces"`
		} `json:"kubernetes_sd_configs"`
		RelabelConfigs []struct {
			Action       string   `json:"action"`
			SourceLabels []string `json:"source_labels"`
			Regex        string   `json:"regex"`
			TargetLabel  string   `json:"target_label"`
		} `json:"relabel_configs"`
	} `json:"scrape_configs"`
}

var labelNameChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

func TestClusterPrometheus(t *testing.T) {
	objs := clusterPrometheus(t)
	ns := objs["Namespace"][0].Obj.(*corev1.Namespace)
	sa := objs["ServiceAccount"][0].Obj.(*corev1.ServiceAccount)
	role := objs["Role"][0].Obj.(*rbacv1.Role)
	binding := objs["RoleBinding"][0].Obj.(*rbacv1.RoleBinding)
	cm := objs["ConfigMap"][0].Obj.(*corev1.ConfigMap)
	dep := objs["Deployment"][0].Obj.(*appsv1.Deployment)
	var cfg scrapeConfig
	if err := yaml.Unmarshal([]byte(cm.Data["prometheus.yml"]), &cfg); err != nil {
		t.Fatalf("ConfigMap %s: prometheus.yml: %v", cm.Name, err)
	}

	// The namespace the charts' NetworkPolicies admit on the admin port (metricsFrom), restricted like the release's.
	t.Run("namespace", func(t *testing.T) {
		if ns.Name != "monitoring" || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
			t.Errorf("namespace %s labels %v: want monitoring, Pod Security restricted", ns.Name, ns.Labels)
		}
		for _, o := range []metav1.Object{sa, cm, dep, objs["Service"][0].Obj.(*corev1.Service)} {
			if o.GetNamespace() != ns.Name {
				t.Errorf("%s is in namespace %q, want %s", o.GetName(), o.GetNamespace(), ns.Name)
			}
		}
	})

	t.Run("least privilege", func(t *testing.T) {
		if role.Namespace != namespace {
			t.Errorf("Role in namespace %q, want the release's, %s", role.Namespace, namespace)
		}
		granted := map[string]bool{}
		for _, r := range role.Rules {
			if !slices.Equal(r.Verbs, []string{"get", "list", "watch"}) || len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
				t.Errorf("Role rule %+v: want exactly get, list, watch", r)
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					granted[g+"/"+res] = true
				}
			}
		}
		if want := map[string]bool{"/services": true, "/pods": true, "discovery.k8s.io/endpointslices": true}; !reflect.DeepEqual(granted, want) {
			t.Errorf("Role grants %v, want %v", granted, want)
		}
		if binding.Namespace != role.Namespace || binding.RoleRef.Kind != "Role" || binding.RoleRef.Name != role.Name ||
			len(binding.Subjects) != 1 || binding.Subjects[0].Kind != "ServiceAccount" || binding.Subjects[0].Name != sa.Name ||
			binding.Subjects[0].Namespace != sa.Namespace {
			t.Errorf("RoleBinding %+v does not bind Role %s to ServiceAccount %s/%s", binding, role.Name, sa.Namespace, sa.Name)
		}
		if dep.Spec.Template.Spec.ServiceAccountName != sa.Name {
			t.Errorf("Deployment runs as ServiceAccount %q, want %s", dep.Spec.Template.Spec.ServiceAccountName, sa.Name)
		}
	})

	t.Run("deployment", func(t *testing.T) {
		ps := dep.Spec.Template.Spec
		if len(ps.Containers) != 1 {
			t.Fatalf("%d containers, want 1", len(ps.Containers))
		}
		c := ps.Containers[0]
		if c.Image != "moviebag.local/prometheus:1" || c.ImagePullPolicy != corev1.PullNever {
			t.Errorf("image %s pull %s: want moviebag.local/prometheus:1, Never (made here, imported into the node)", c.Image, c.ImagePullPolicy)
		}
		if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Error("the root filesystem is not read-only")
		}
		mounts := map[string]string{} // ConfigMap or emptyDir volume -> mount path
		for _, m := range c.VolumeMounts {
			for _, v := range ps.Volumes {
				switch {
				case v.Name != m.Name:
				case v.ConfigMap != nil:
					mounts[v.ConfigMap.Name] = m.MountPath
				case v.EmptyDir != nil:
					mounts["emptyDir"] = m.MountPath
				}
			}
		}
		if dir := mounts[cm.Name]; !slices.Contains(c.Args, "--config.file="+dir+"/prometheus.yml") {
			t.Errorf("args %v do not read prometheus.yml from the ConfigMap %s mounted at %q", c.Args, cm.Name, dir)
		}
		// The rules ConfigMap is made from deploy/prometheus/moviebag-rules.yaml by the cluster script, so
		// there is one copy of the rules.
		if dir := mounts["prometheus-rules"]; dir == "" || !slices.Contains(cfg.RuleFiles, dir+"/*.yaml") {
			t.Errorf("rule_files %v do not load the ConfigMap prometheus-rules (mounted at %q)", cfg.RuleFiles, dir)
		}
		if dir := mounts["emptyDir"]; !slices.Contains(c.Args, "--storage.tsdb.path="+dir) {
			t.Errorf("args %v do not keep the TSDB on the emptyDir at %q (the root filesystem is read-only)", c.Args, dir)
		}
	})

	// Each ServiceMonitor of the charts has its scrape job, selecting the same Services (labels, as the
	// release the cluster installs), in the same namespace, on the same port and path, with honor_labels;
	// the job label is the Service's name, as the operator sets it and the rules expect.
	t.Run("scrape jobs select as the ServiceMonitors", func(t *testing.T) {
		sms := 0
		for _, o := range render(t, renderCase{Chart: "moviebag"}, "--set", "auth.serviceMonitor.enabled=true,movies.serviceMonitor.enabled=true") {
			sm, ok := o.Obj.(*monitoringv1.ServiceMonitor)
			if !ok {
				continue
			}
			sms++
			name := sm.Spec.Selector.MatchLabels["app.kubernetes.io/name"]
			job := -1
			for i, sc := range cfg.ScrapeConfigs {
				if sc.JobName == "serviceMonitor/"+namespace+"/"+clusterRelease+"-"+name+"/0" {
					job = i
				}
			}
			if job < 0 {
				t.Errorf("ServiceMonitor of %s: no scrape job serviceMonitor/%s/%s-%s/0", name, namespace, clusterRelease, name)
				continue
			}
			sc := cfg.ScrapeConfigs[job]
			ep := sm.Spec.Endpoints[0]
			if len(sm.Spec.Endpoints) != 1 || sc.MetricsPath != ep.Path || sc.HonorLabels != ep.HonorLabels || sc.Scheme != ep.Scheme {
				t.Errorf("%s: path %s honor_labels %v scheme %s, want the ServiceMonitor's %+v", sc.JobName, sc.MetricsPath, sc.HonorLabels, sc.Scheme, sm.Spec.Endpoints)
			}
			if len(sc.KubernetesSDConfigs) != 1 || sc.KubernetesSDConfigs[0].Role != "endpointslice" ||
				!slices.Equal(sc.KubernetesSDConfigs[0].Namespaces.Names, sm.Spec.NamespaceSelector.MatchNames) {
				t.Errorf("%s: discovery %+v, want role endpointslice in namespaces %v", sc.JobName, sc.KubernetesSDConfigs, sm.Spec.NamespaceSelector.MatchNames)
			}
			keeps := map[string]string{} // source labels -> regex of the keep rules
			jobFromService := false
			for _, r := range sc.RelabelConfigs {
				if r.Action == "keep" {
					keeps[strings.Join(r.SourceLabels, ",")] = r.Regex
				}
				if r.TargetLabel == "job" && slices.Equal(r.SourceLabels, []string{"__meta_kubernetes_service_name"}) {
					jobFromService = true
				}
			}
			want := map[string]string{"__meta_kubernetes_endpointslice_port_name": ep.Port}
			for k, v := range sm.Spec.Selector.MatchLabels {
				if k == "app.kubernetes.io/instance" {
					v = clusterRelease // this render's release is another
				}
				l := labelNameChars.ReplaceAllString(k, "_")
				want["__meta_kubernetes_service_label_"+l+",__meta_kubernetes_service_labelpresent_"+l] = "(" + regexp.QuoteMeta(v) + ");true"
			}
			if !reflect.DeepEqual(keeps, want) {
				t.Errorf("%s: keeps %v, want %v", sc.JobName, keeps, want)
			}
			if !jobFromService {
				t.Errorf("%s: the job label is not the Service's name", sc.JobName)
			}
		}
		if sms != 2 || len(cfg.ScrapeConfigs) != sms {
			t.Errorf("%d ServiceMonitors rendered, %d scrape jobs: want one job for each of auth and movies", sms, len(cfg.ScrapeConfigs))
		}
	})

	// A real API server takes every object (strict dry run), and its Pod Security admission takes the pod in
	// a restricted namespace (and refuses it once it asks for privilege escalation: the check is real).
	t.Run("server dry run", func(t *testing.T) {
		c := startCluster(t)
		for _, n := range []string{namespace, ns.Name} {
			c.namespace(t, n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, list := range objs {
			for _, o := range list {
				if o.GVK.Kind == "Namespace" {
					continue // made above, without the label: the pod check below uses its own namespace
				}
				if err := c.dryRun(ctx, o); err != nil {
					t.Errorf("%s: %v", o, err)
				}
			}
		}
		const psaNS = "prometheus-restricted"
		_, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: psaNS,
			Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		_, err = c.client.CoreV1().ServiceAccounts(psaNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa.Name}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		pod := func(spec corev1.PodSpec) error {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "prometheus", Namespace: psaNS}, Spec: spec}
			_, err := c.client.CoreV1().Pods(psaNS).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}
		if err := pod(dep.Spec.Template.Spec); err != nil {
			t.Errorf("the Prometheus pod in a restricted namespace: %v", err)
		}
		bad := *dep.Spec.Template.Spec.DeepCopy()
		yes := true
		bad.Containers[0].SecurityContext.AllowPrivilegeEscalation = &yes
		if err := pod(bad); !apierrors.IsForbidden(err) {
			t.Errorf("a pod asking for privilege escalation in a restricted namespace: %v, want Forbidden", err)
		}
	})
}
