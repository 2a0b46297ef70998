package render

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// workload is a pod template with where it came from.
type workload struct {
	Kind, Name string
	Labels     map[string]string
	Spec       corev1.PodSpec
	Owner      object
}

func (w workload) String() string { return w.Kind + " " + w.Name }

// set is everything one render produced, indexed for the checks.
type set struct {
	c         renderCase
	values    map[string]any
	objs      []object
	workloads []workload
}

func newSet(t *testing.T, c renderCase) *set {
	s := &set{c: c, values: readValues(t, c), objs: render(t, c)}
	for _, o := range s.objs {
		switch v := o.Obj.(type) {
		case *appsv1.Deployment:
			s.workloads = append(s.workloads, workload{"Deployment", v.Name, v.Spec.Template.Labels, v.Spec.Template.Spec, o})
		case *appsv1.StatefulSet:
			s.workloads = append(s.workloads, workload{"StatefulSet", v.Name, v.Spec.Template.Labels, v.Spec.Template.Spec, o})
		case *corev1.Pod:
			s.workloads = append(s.workloads, workload{"Pod", v.Name, v.Labels, v.Spec, o})
		}
	}
	return s
}

// each returns the objects of one Go type.
func each[T any](s *set) []T {
	var out []T
	for _, o := range s.objs {
		if v, ok := o.Obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func (s *set) has(kind, name string) bool {
	for _, o := range s.objs {
		if o.GVK.Kind == kind && o.Name == name {
			return true
		}
	}
	return false
}

// off reports whether the case's values file switches a part off on purpose
// (path relative to the chart, tried also under the umbrella's auth./movies. keys).
func (s *set) off(path string) bool {
	for _, p := range []string{path, "auth." + path, "movies." + path} {
		if v, ok := valueAt(s.values, p); ok && v == false {
			return true
		}
	}
	return false
}

// existingKeys are the values that name an object the chart uses but does not make, per kind, relative
// to a service chart (tried also under the umbrella's auth. and movies. keys).
var existingKeys = map[string][]string{
	"Secret":         {"global.moviebag.storage.existingSecret", "storage.existingSecret", "signingKeys.existingSecret"},
	"ServiceAccount": {"serviceAccount.name"},
}

// existing reports whether the case's values name this object at one of the keys that tell the chart to
// use an existing one (an existingSecret, a ServiceAccount it does not create).
func (s *set) existing(kind, name string) bool {
	for _, key := range existingKeys[kind] {
		for _, p := range []string{key, "auth." + key, "movies." + key} {
			if v, ok := valueAt(s.values, p); ok && v == name {
				if kind == "ServiceAccount" {
					if create, set := valueAt(s.values, strings.TrimSuffix(p, ".name")+".create"); !set || create != false {
						continue // the name of the ServiceAccount the chart creates
					}
				}
				return true
			}
		}
	}
	return false
}

// emptied reports whether the case's values set a list to [] on purpose (chart-relative path, also under
// auth. and movies.).
func (s *set) emptied(path string) bool {
	for _, p := range []string{path, "auth." + path, "movies." + path} {
		if v, ok := valueAt(s.values, p); ok {
			if l, isList := v.([]any); isList && len(l) == 0 {
				return true
			}
		}
	}
	return false
}

func (s *set) selected(sel map[string]string) []workload {
	var out []workload
	if len(sel) == 0 {
		return out
	}
	for _, w := range s.workloads {
		if labels.SelectorFromSet(sel).Matches(labels.Set(w.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

func labelSelected(sel *metav1.LabelSelector, ws []workload) ([]workload, error) {
	if sel == nil {
		return nil, nil
	}
	ls, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, err
	}
	var out []workload
	for _, w := range ws {
		if ls.Matches(labels.Set(w.Labels)) {
			out = append(out, w)
		}
	}
	return out, nil
}

func hasContainerPort(w workload, p intstr.IntOrString) bool {
	for _, c := range w.Spec.Containers {
		for _, cp := range c.Ports {
			if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
				return true
			}
		}
	}
	return false
}

// TestPolicies runs the checks a linter such as kube-linter would make, and the
// project's own, over every render.
func TestPolicies(t *testing.T) {
	for _, c := range renderCases(t) {
		t.Run(c.Name(), func(t *testing.T) {
			s := newSet(t, c)
			t.Run("pods", func(t *testing.T) { checkPods(t, s) })
			t.Run("deployments", func(t *testing.T) { checkDeployments(t, s) })
			t.Run("references", func(t *testing.T) { checkReferences(t, s) })
			t.Run("services", func(t *testing.T) { checkServices(t, s) })
			t.Run("networkpolicies", func(t *testing.T) { checkNetworkPolicies(t, s) })
			t.Run("monitoring", func(t *testing.T) { checkMonitoring(t, s) })
			t.Run("routes", func(t *testing.T) { checkRoutes(t, s) })
			t.Run("secrets", func(t *testing.T) { checkSecrets(t, s) })
			t.Run("labels", func(t *testing.T) { checkLabels(t, s) })
		})
	}
}

// checkPods: security context, resources, images, probes, no host access.
func checkPods(t *testing.T, s *set) {
	if len(s.workloads) == 0 {
		t.Fatal("no workloads rendered")
	}
	for _, w := range s.workloads {
		ps := w.Spec
		psc := ps.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", w)
		}
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod seccompProfile is not RuntimeDefault", w)
		}
		if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
			t.Errorf("%s: runs as uid 0", w)
		}
		if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken is not false", w)
		}
		if ps.HostNetwork || ps.HostPID || ps.HostIPC {
			t.Errorf("%s: uses the host network/PID/IPC namespace", w)
		}
		for _, v := range ps.Volumes {
			if v.HostPath != nil {
				t.Errorf("%s: hostPath volume %s", w, v.Name)
			}
		}
		if len(ps.InitContainers) > 0 {
			t.Errorf("%s: init containers are not expected (check them here before adding one)", w)
		}
		for _, ctr := range ps.Containers {
			name := fmt.Sprintf("%s container %s", w, ctr.Name)
			sc := ctr.SecurityContext
			switch {
			case sc == nil:
				t.Errorf("%s: no securityContext", name)
				continue
			case sc.Privileged != nil && *sc.Privileged:
				t.Errorf("%s: privileged", name)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", name)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem is not true", name)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities must drop ALL and add none: %+v", name, sc.Capabilities)
			}
			if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
				t.Errorf("%s: runs as uid 0", name)
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := ctr.Resources.Requests[r]; !ok {
					t.Errorf("%s: no %s request", name, r)
				}
				if _, ok := ctr.Resources.Limits[r]; !ok {
					t.Errorf("%s: no %s limit", name, r)
				}
			}
			if req, lim := ctr.Resources.Requests.Memory(), ctr.Resources.Limits.Memory(); req.Cmp(*lim) > 0 {
				t.Errorf("%s: memory request %s above limit %s", name, req, lim)
			}
			checkImage(t, name, ctr.Image)
			for _, e := range ctr.Env {
				if (e.Name == "MONGO_URI" || e.Name == "REDIS_URL") && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
					t.Errorf("%s: %s must come from a Secret", name, e.Name)
				}
			}
			if w.Kind == "Pod" {
				continue // the helm test pod runs to completion: no probes
			}
			if ctr.ReadinessProbe == nil || ctr.LivenessProbe == nil || ctr.StartupProbe == nil {
				t.Errorf("%s: needs startup, readiness and liveness probes", name)
			}
		}
	}
}

func checkImage(t *testing.T, name, image string) {
	t.Helper()
	ref, digest, _ := strings.Cut(image, "@")
	if digest != "" && !strings.HasPrefix(digest, "sha256:") {
		t.Errorf("%s: bad digest in %q", name, image)
	}
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if colon < slash+1 || colon == len(ref)-1 {
		t.Errorf("%s: image %q has no tag", name, image)
		return
	}
	if tag := ref[colon+1:]; tag == "latest" {
		t.Errorf("%s: image %q uses the latest tag", name, image)
	}
}

// checkDeployments: the services' Deployments: admin-port probes, rollout never
// below the desired replicas, PDB, HPA, spread constraints, drain timing, checksums.
func checkDeployments(t *testing.T, s *set) {
	deps := each[*appsv1.Deployment](s)
	if len(deps) == 0 {
		t.Fatal("no Deployment rendered")
	}
	hpas := each[*autoscalingv2.HorizontalPodAutoscaler](s)
	pdbs := each[*policyv1.PodDisruptionBudget](s)
	cms := map[string]*corev1.ConfigMap{}
	for _, cm := range each[*corev1.ConfigMap](s) {
		cms[cm.Name] = cm
	}
	for _, d := range deps {
		name := "Deployment " + d.Name
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: selector %v does not match its pod labels %v", name, d.Spec.Selector, d.Spec.Template.Labels)
		}
		ru := d.Spec.Strategy.RollingUpdate
		if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 || ru.MaxSurge == nil || ru.MaxSurge.IntValue() < 1 {
			t.Errorf("%s: a rollout must never go below the desired replicas (maxUnavailable 0, maxSurge >= 1): %+v", name, d.Spec.Strategy)
		}
		var hpa *autoscalingv2.HorizontalPodAutoscaler
		for _, h := range hpas {
			if h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name {
				hpa = h
			}
		}
		switch {
		// With an HPA the offline render starts at minReplicas; against a cluster the chart keeps the running
		// count (lookup), so an upgrade neither resets the scale nor, leaving replicas out, drops it to 1.
		case hpa != nil && (d.Spec.Replicas == nil || hpa.Spec.MinReplicas == nil || *d.Spec.Replicas != *hpa.Spec.MinReplicas):
			t.Errorf("%s: replicas %v while an HPA scales it: want minReplicas (the running count on upgrade)", name, d.Spec.Replicas)
		case hpa == nil && (d.Spec.Replicas == nil || *d.Spec.Replicas < 1):
			t.Errorf("%s: no replicas and no HPA", name)
		case hpa != nil && (hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas > hpa.Spec.MaxReplicas):
			t.Errorf("HPA %s: minReplicas must be set and <= maxReplicas", hpa.Name)
		}
		var pdb *policyv1.PodDisruptionBudget
		for _, p := range pdbs {
			if ps, err := metav1.LabelSelectorAsSelector(p.Spec.Selector); err == nil && !ps.Empty() && ps.Matches(labels.Set(d.Spec.Template.Labels)) {
				pdb = p
			}
		}
		if pdb == nil && !s.off("pdb.enabled") {
			t.Errorf("%s: no PodDisruptionBudget selects its pods", name)
		}
		if pdb != nil && pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
			t.Errorf("PDB %s: neither minAvailable nor maxUnavailable", pdb.Name)
		}
		pod := d.Spec.Template
		if len(pod.Spec.TopologySpreadConstraints) == 0 && !s.emptied("topologySpreadConstraints") {
			t.Errorf("%s: no topologySpreadConstraints", name)
		}
		for _, tsc := range pod.Spec.TopologySpreadConstraints {
			if ws, _ := labelSelected(tsc.LabelSelector, []workload{{Labels: pod.Labels}}); len(ws) != 1 {
				t.Errorf("%s: spread constraint on %s does not select its own pods", name, tsc.TopologyKey)
			}
			// A hard spread that counts cordoned or unreachable nodes as domains leaves an evicted pod
			// Pending when one of two nodes is drained or lost.
			if tsc.WhenUnsatisfiable == corev1.DoNotSchedule &&
				(tsc.NodeTaintsPolicy == nil || *tsc.NodeTaintsPolicy != corev1.NodeInclusionPolicyHonor) {
				t.Errorf("%s: spread constraint on %s is DoNotSchedule without nodeTaintsPolicy Honor", name, tsc.TopologyKey)
			}
		}
		if pod.Annotations["checksum/config"] == "" || pod.Annotations["checksum/storage"] == "" {
			t.Errorf("%s: pod template lacks checksum/config and checksum/storage annotations", name)
		}
		if len(pod.Spec.Containers) != 1 {
			t.Fatalf("%s: want one container, got %d", name, len(pod.Spec.Containers))
		}
		ctr := pod.Spec.Containers[0]
		for probe, path := range map[*corev1.Probe]string{ctr.StartupProbe: "/healthz", ctr.ReadinessProbe: "/readyz", ctr.LivenessProbe: "/healthz"} {
			if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || probe.HTTPGet.Port.String() != "admin" {
				t.Errorf("%s: probe %+v: want GET %s on the admin port", name, probe, path)
			}
		}
		env := map[string]string{}
		for _, ef := range ctr.EnvFrom {
			if ef.ConfigMapRef != nil {
				if cm := cms[ef.ConfigMapRef.Name]; cm != nil {
					for k, v := range cm.Data {
						env[k] = v
					}
				}
			}
		}
		for _, e := range ctr.Env {
			env[e.Name] = e.Value
		}
		ports := map[string]int32{}
		for _, p := range ctr.Ports {
			ports[p.Name] = p.ContainerPort
		}
		if env["HTTP_ADDR"] != fmt.Sprintf(":%d", ports["http"]) || env["ADMIN_ADDR"] != fmt.Sprintf(":%d", ports["admin"]) {
			t.Errorf("%s: HTTP_ADDR %q / ADMIN_ADDR %q do not match the container ports %v", name, env["HTTP_ADDR"], env["ADMIN_ADDR"], ports)
		}
		drain, err1 := time.ParseDuration(env["SHUTDOWN_DRAIN_DELAY"])
		shutdown, err2 := time.ParseDuration(env["SHUTDOWN_TIMEOUT"])
		grace := pod.Spec.TerminationGracePeriodSeconds
		switch {
		case err1 != nil || err2 != nil:
			t.Errorf("%s: SHUTDOWN_DRAIN_DELAY %q / SHUTDOWN_TIMEOUT %q: %v %v", name, env["SHUTDOWN_DRAIN_DELAY"], env["SHUTDOWN_TIMEOUT"], err1, err2)
		case drain < 3*time.Second:
			t.Errorf("%s: SHUTDOWN_DRAIN_DELAY %s: endpoints need a few seconds to drop the pod", name, drain)
		case grace == nil || time.Duration(*grace)*time.Second < drain+shutdown+5*time.Second:
			t.Errorf("%s: terminationGracePeriodSeconds %v must be at least drain %s + shutdown %s + 5s", name, grace, drain, shutdown)
		}
		for _, k := range []string{"MONGO_DATABASE", "LOG_LEVEL", "JWT_ISSUER", "JWT_AUDIENCE", "REQUEST_TIMEOUT", "BODY_LIMIT_BYTES"} {
			if env[k] == "" {
				t.Errorf("%s: %s is not set", name, k)
			}
		}
		switch ctr.Name {
		case "auth":
			dir := env["JWT_KEYS_DIR"]
			mounted := false
			for _, m := range ctr.VolumeMounts {
				mounted = mounted || (m.MountPath == dir && m.ReadOnly)
			}
			if dir == "" || !mounted {
				t.Errorf("%s: JWT_KEYS_DIR %q is not a read-only mount", name, dir)
			}
		case "movies":
			if !strings.HasSuffix(env["JWKS_URL"], ":8081/.well-known/jwks.json") {
				t.Errorf("%s: JWKS_URL %q is not auth's Service", name, env["JWKS_URL"])
			}
			if s.c.Chart == "moviebag" {
				if want := fmt.Sprintf("http://%s-auth:8081/.well-known/jwks.json", releaseName); env["JWKS_URL"] != want || !s.has("Service", releaseName+"-auth") {
					t.Errorf("%s: JWKS_URL %q, want %q (a rendered Service)", name, env["JWKS_URL"], want)
				}
			}
		default:
			t.Errorf("%s: unexpected container %s", name, ctr.Name)
		}
	}
}

// checkReferences: what pods name (Secrets, ConfigMaps, ServiceAccounts) is rendered,
// or is an existing object the values file names on purpose.
func checkReferences(t *testing.T, s *set) {
	for _, w := range s.workloads {
		need := func(kind, name string) {
			if !s.has(kind, name) && !s.existing(kind, name) {
				t.Errorf("%s: refers to %s %q, which is neither rendered nor an existing one the values name", w, kind, name)
			}
		}
		if sa := w.Spec.ServiceAccountName; sa != "" && sa != "default" {
			need("ServiceAccount", sa)
		}
		for _, v := range w.Spec.Volumes {
			if v.Secret != nil {
				need("Secret", v.Secret.SecretName)
			}
			if v.ConfigMap != nil {
				need("ConfigMap", v.ConfigMap.Name)
			}
			if v.PersistentVolumeClaim != nil {
				t.Errorf("%s: use volumeClaimTemplates, not a bare PVC", w)
			}
		}
		for _, c := range w.Spec.Containers {
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil {
					need("ConfigMap", ef.ConfigMapRef.Name)
				}
				if ef.SecretRef != nil {
					need("Secret", ef.SecretRef.Name)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					need("Secret", e.ValueFrom.SecretKeyRef.Name)
				}
			}
			mounts := map[string]bool{}
			for _, m := range c.VolumeMounts {
				mounts[m.Name] = true
			}
			for m := range mounts {
				found := slices.ContainsFunc(w.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == m })
				if sts, ok := w.Owner.Obj.(*appsv1.StatefulSet); ok && !found {
					found = slices.ContainsFunc(sts.Spec.VolumeClaimTemplates, func(p corev1.PersistentVolumeClaim) bool { return p.Name == m })
				}
				if !found {
					t.Errorf("%s: mounts volume %q that does not exist", w, m)
				}
			}
		}
	}
	for _, h := range each[*autoscalingv2.HorizontalPodAutoscaler](s) {
		if !s.has(h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name) {
			t.Errorf("HPA %s: target %s %s is not rendered", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
		}
	}
	for _, st := range each[*appsv1.StatefulSet](s) {
		if !s.has("Service", st.Spec.ServiceName) {
			t.Errorf("StatefulSet %s: serviceName %q is not a rendered Service", st.Name, st.Spec.ServiceName)
		}
	}
}

// checkServices: each Service selects rendered pods and targets real container ports.
func checkServices(t *testing.T, s *set) {
	for _, svc := range each[*corev1.Service](s) {
		ws := s.selected(svc.Spec.Selector)
		if len(ws) == 0 {
			t.Errorf("Service %s: selector %v selects no rendered pod", svc.Name, svc.Spec.Selector)
			continue
		}
		for _, p := range svc.Spec.Ports {
			tp := p.TargetPort
			if tp.Type == intstr.Int && tp.IntVal == 0 {
				tp = intstr.FromInt32(p.Port)
			}
			for _, w := range ws {
				if !hasContainerPort(w, tp) {
					t.Errorf("Service %s port %s: targetPort %s is not a container port of %s", svc.Name, p.Name, tp.String(), w)
				}
			}
		}
	}
}

// endpoint is one end of a connection in the NetworkPolicy model: a pod (its namespace and labels, and
// its named container ports when rendered here) or, with nil Labels, an address outside the cluster.
type endpoint struct {
	Name   string
	NS     string
	Labels map[string]string
	IP     string
	Ports  map[string]int32
	policy bool // a rendered pod, whose own policies apply
}

func podEndpoint(w workload) endpoint {
	ports := map[string]int32{}
	for _, c := range w.Spec.Containers {
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
	}
	return endpoint{Name: w.String(), NS: namespace, Labels: w.Labels, Ports: ports, policy: true}
}

// nsLabels are the labels every namespace carries (the API server sets kubernetes.io/metadata.name).
func nsLabels(ns string) labels.Set { return labels.Set{"kubernetes.io/metadata.name": ns} }

// peerMatches applies NetworkPolicy's rules for one peer of a policy in namespace policyNS: a
// podSelector alone means pods of the policy's namespace, a namespaceSelector alone every pod of the
// selected namespaces, both together the selected pods of the selected namespaces; an ipBlock matches
// addresses (pods here have none: the model does not give them one).
func peerMatches(peer networkingv1.NetworkPolicyPeer, policyNS string, ep endpoint) bool {
	if peer.IPBlock != nil {
		if ep.IP == "" {
			return false
		}
		_, cidr, err := net.ParseCIDR(peer.IPBlock.CIDR)
		if err != nil || !cidr.Contains(net.ParseIP(ep.IP)) {
			return false
		}
		for _, ex := range peer.IPBlock.Except {
			if _, e, err := net.ParseCIDR(ex); err == nil && e.Contains(net.ParseIP(ep.IP)) {
				return false
			}
		}
		return true
	}
	if ep.Labels == nil {
		return false
	}
	if peer.NamespaceSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
		if err != nil || !sel.Matches(nsLabels(ep.NS)) {
			return false
		}
	} else if ep.NS != policyNS {
		return false
	}
	if peer.PodSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
		if err != nil || !sel.Matches(labels.Set(ep.Labels)) {
			return false
		}
	}
	return true
}

// portMatches: a rule's ports admit the destination's port (by number, or by the name of the
// destination pod's container port); no ports means every port.
func portMatches(ports []networkingv1.NetworkPolicyPort, dst endpoint, port int32, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp != proto {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.Int && p.Port.IntVal == port:
			return true
		case p.Port.Type == intstr.String && dst.Ports != nil && dst.Ports[p.Port.StrVal] == port && port != 0:
			return true
		}
	}
	return false
}

// allowed evaluates the rendered policies for src -> dst:port/proto: the destination's policies of type
// Ingress must admit it (or none select it), and so must the source's policies of type Egress.
func allowed(nps []*networkingv1.NetworkPolicy, src, dst endpoint, port int32, proto corev1.Protocol) bool {
	side := func(ep, other endpoint, typ networkingv1.PolicyType) bool {
		if !ep.policy {
			return true // not ours: no rendered policy selects it
		}
		selected, ok := false, false
		for _, np := range nps {
			if np.Namespace != ep.NS || !slices.Contains(np.Spec.PolicyTypes, typ) {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if err != nil || !sel.Matches(labels.Set(ep.Labels)) {
				continue
			}
			selected = true
			if typ == networkingv1.PolicyTypeIngress {
				for _, r := range np.Spec.Ingress {
					if portMatches(r.Ports, dst, port, proto) && (len(r.From) == 0 || slices.ContainsFunc(r.From, func(p networkingv1.NetworkPolicyPeer) bool { return peerMatches(p, np.Namespace, other) })) {
						ok = true
					}
				}
			} else {
				for _, r := range np.Spec.Egress {
					if portMatches(r.Ports, dst, port, proto) && (len(r.To) == 0 || slices.ContainsFunc(r.To, func(p networkingv1.NetworkPolicyPeer) bool { return peerMatches(p, np.Namespace, other) })) {
						ok = true
					}
				}
			}
		}
		return !selected || ok
	}
	return side(dst, src, networkingv1.PolicyTypeIngress) && side(src, dst, networkingv1.PolicyTypeEgress)
}

// checkNetworkPolicies: every long-running pod is selected by a policy restricting its ingress and one
// restricting its egress; each policy selects rendered pods; no peer admits every namespace; a peer
// naming pods of the release's namespace selects rendered pods; named ports exist.
func checkNetworkPolicies(t *testing.T, s *set) {
	nps := each[*networkingv1.NetworkPolicy](s)
	if len(nps) == 0 && !s.off("networkPolicy.enabled") {
		t.Fatal("no NetworkPolicy rendered")
	}
	inCovered, outCovered := map[string]bool{}, map[string]bool{}
	for _, np := range nps {
		ws, err := labelSelected(&np.Spec.PodSelector, s.workloads)
		if err != nil || len(ws) == 0 || len(np.Spec.PodSelector.MatchLabels)+len(np.Spec.PodSelector.MatchExpressions) == 0 {
			t.Errorf("NetworkPolicy %s: podSelector %v selects no rendered pod (or everything)", np.Name, np.Spec.PodSelector)
			continue
		}
		if len(np.Spec.PolicyTypes) == 0 {
			t.Errorf("NetworkPolicy %s: no policyTypes", np.Name)
		}
		for _, w := range ws {
			inCovered[w.String()] = inCovered[w.String()] || slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
			outCovered[w.String()] = outCovered[w.String()] || slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
		checkPeers := func(dir string, peers []networkingv1.NetworkPolicyPeer) {
			for _, peer := range peers {
				if peer.NamespaceSelector != nil && len(peer.NamespaceSelector.MatchLabels)+len(peer.NamespaceSelector.MatchExpressions) == 0 {
					t.Errorf("NetworkPolicy %s %s: a peer with an empty namespaceSelector admits every namespace", np.Name, dir)
				}
				if peer.PodSelector == nil {
					continue
				}
				// Pods of the release's own namespace (no namespaceSelector, or one that selects it) must be rendered ones.
				if peer.NamespaceSelector != nil {
					sel, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
					if err != nil || !sel.Matches(nsLabels(namespace)) {
						continue // pods of another namespace (the DNS servers, a gateway): checked by the flows
					}
				}
				if n := peer.PodSelector.MatchLabels["app.kubernetes.io/name"]; s.c.Chart != "moviebag" && n != "" && n != s.c.Chart {
					continue // another chart's pods (movies -> auth): only the umbrella renders them together
				}
				if got, err := labelSelected(peer.PodSelector, s.workloads); err != nil || len(got) == 0 {
					// The umbrella's peers for its dev databases stay in the services' policies when those are
					// off (a subchart cannot see the switch); storage-egress.yaml opens the way out instead.
					if db := peer.PodSelector.MatchLabels["app.kubernetes.io/name"]; s.c.Chart == "moviebag" && (db == "mongodb" || db == "redis") && s.off(db+".enabled") {
						continue
					}
					t.Errorf("NetworkPolicy %s %s: peer podSelector %v selects no rendered pod", np.Name, dir, peer.PodSelector.MatchLabels)
				}
			}
		}
		for _, r := range np.Spec.Ingress {
			if len(r.From) == 0 {
				t.Errorf("NetworkPolicy %s: an ingress rule without `from` admits every source", np.Name)
			}
			checkPeers("ingress", r.From)
			for _, p := range r.Ports {
				if p.Port == nil {
					t.Errorf("NetworkPolicy %s: an ingress rule opens every port", np.Name)
					continue
				}
				for _, w := range ws {
					if !hasContainerPort(w, *p.Port) {
						t.Errorf("NetworkPolicy %s: ingress port %s is not a container port of %s", np.Name, p.Port.String(), w)
					}
				}
			}
		}
		for _, r := range np.Spec.Egress {
			if len(r.Ports) == 0 {
				t.Errorf("NetworkPolicy %s: an egress rule without ports", np.Name)
			}
			checkPeers("egress", r.To)
		}
	}
	if s.off("networkPolicy.enabled") {
		return
	}
	for _, w := range s.workloads {
		if w.Kind != "Pod" && (!inCovered[w.String()] || !outCovered[w.String()]) {
			t.Errorf("%s: not covered by NetworkPolicies restricting both its ingress (%v) and its egress (%v)", w, inCovered[w.String()], outCovered[w.String()])
		}
	}
	checkFlows(t, s, nps)
}

// checkFlows walks the connections the stack needs, and some it must not have, through the policies.
func checkFlows(t *testing.T, s *set, nps []*networkingv1.NetworkPolicy) {
	pods := map[string]endpoint{}
	for _, w := range s.workloads {
		pods[w.Labels["app.kubernetes.io/name"]] = podEndpoint(w)
	}
	outsider := endpoint{Name: "a pod of another namespace", NS: "elsewhere", Labels: map[string]string{"app.kubernetes.io/name": "movies", "app.kubernetes.io/instance": releaseName}}
	internet := endpoint{Name: "an address outside the cluster", IP: "203.0.113.7"}
	dns := endpoint{Name: "CoreDNS", NS: "kube-system", Labels: map[string]string{"k8s-app": "kube-dns"}}
	// The neighbours as the case's values name them (global.moviebag.neighbours), else the charts' defaults.
	promNS, _ := valueAt(s.values, "global.moviebag.neighbours.prometheus.namespace")
	if promNS == nil {
		promNS = "monitoring"
	}
	prometheus := endpoint{Name: "Prometheus", NS: promNS.(string), Labels: withLabels(map[string]string{"app.kubernetes.io/name": "prometheus"}, s.values, "global.moviebag.neighbours.prometheus.podLabels")}
	routingNS := []any{"traefik"}
	if v, ok := valueAt(s.values, "global.moviebag.neighbours.routing.namespaces"); ok {
		routingNS, _ = v.([]any)
	}
	type flow struct {
		src, dst endpoint
		port     string // a named port of dst, or a number
		proto    corev1.Protocol
		want     bool
	}
	var flows []flow
	add := func(src endpoint, dst string, port string, want bool) {
		if d, ok := pods[dst]; ok {
			flows = append(flows, flow{src, d, port, corev1.ProtocolTCP, want})
		}
	}
	for _, svc := range []string{"auth", "movies"} {
		if src, ok := pods[svc]; ok {
			flows = append(flows, flow{src, dns, "53", corev1.ProtocolUDP, true}, flow{src, internet, "443", corev1.ProtocolTCP, false})
			add(src, "mongodb", "mongodb", true)
			add(src, "redis", "redis", true)
		}
		add(prometheus, svc, "admin", true)
		add(outsider, svc, "http", false)
		add(outsider, svc, "admin", false)
		// The routing controller: its pods in every namespace global.moviebag.neighbours.routing names, and in
		// the namespace of every Gateway the HTTPRoute attaches to (the values must admit those).
		controller := func(ns string) endpoint {
			return endpoint{Name: "the routing controller in " + ns, NS: ns, Labels: withLabels(map[string]string{"app.kubernetes.io/name": "gateway"}, s.values, "global.moviebag.neighbours.routing.podLabels")}
		}
		for _, ns := range routingNS {
			add(controller(ns.(string)), svc, "http", true)
		}
		for _, hr := range each[*gatewayv1.HTTPRoute](s) {
			for _, ref := range hr.Spec.ParentRefs {
				ns := hr.Namespace
				if ref.Namespace != nil {
					ns = string(*ref.Namespace)
				}
				add(controller(ns), svc, "http", true)
			}
		}
	}
	if m, ok := pods["movies"]; ok {
		add(m, "auth", "http", true)
		add(m, "auth", "admin", false) // only Prometheus scrapes
	}
	if tp, ok := pods["moviebag-test"]; ok {
		add(tp, "auth", "http", true)
		add(tp, "movies", "http", true)
	}
	for _, db := range []string{"mongodb", "redis"} {
		add(outsider, db, db, false)
	}
	// Storage outside the chart: each destination externalStorage names, on its port.
	if s.c.Chart == "moviebag" {
		for _, db := range []string{"mongodb", "redis"} {
			if _, inChart := pods[db]; inChart {
				continue
			}
			ports, _ := valueAt(s.values, "externalStorage."+db+".ports")
			if ports == nil {
				ports = []any{map[string]any{"mongodb": 27017.0, "redis": 6379.0}[db]}
			}
			for _, port := range ports.([]any) {
				for _, dst := range externalDestinations(t, s, db) {
					dst.Ports = map[string]int32{db: int32(port.(float64))}
					for _, svc := range []string{"auth", "movies"} {
						if src, ok := pods[svc]; ok {
							flows = append(flows, flow{src, dst, db, corev1.ProtocolTCP, true})
						}
					}
				}
			}
		}
	}
	for _, f := range flows {
		num, err := strconv.Atoi(f.port)
		if err != nil {
			num = int(f.dst.Ports[f.port])
		}
		if num == 0 {
			t.Errorf("flow %s -> %s:%s: no such port", f.src.Name, f.dst.Name, f.port)
			continue
		}
		if got := allowed(nps, f.src, f.dst, int32(num), f.proto); got != f.want {
			verb := map[bool]string{true: "is allowed", false: "is not allowed"}[got]
			t.Errorf("flow %s -> %s:%s/%s %s by the NetworkPolicies, want %v", f.src.Name, f.dst.Name, f.port, f.proto, verb, f.want)
		}
	}
}

// withLabels adds the labels at a values path (a map of strings) to base.
func withLabels(base map[string]string, values map[string]any, path string) map[string]string {
	out := maps.Clone(base)
	if m, ok := valueAt(values, path); ok {
		for k, v := range m.(map[string]any) {
			if v != nil {
				out[k] = fmt.Sprint(v)
			}
		}
	}
	return out
}

// externalDestinations makes one endpoint for each peer of externalStorage.<db>.to: an address inside
// an ipBlock, a pod of a namespace with the selector's labels; [] (any address) gives an outside address.
func externalDestinations(t *testing.T, s *set, db string) []endpoint {
	to, _ := valueAt(s.values, "externalStorage."+db+".to")
	peers, _ := to.([]any)
	if len(peers) == 0 {
		return []endpoint{{Name: db + " at any address", IP: "198.51.100.20"}}
	}
	var out []endpoint
	for i, p := range peers {
		b, _ := json.Marshal(p)
		var peer networkingv1.NetworkPolicyPeer
		if err := json.Unmarshal(b, &peer); err != nil {
			t.Fatalf("externalStorage.%s.to[%d]: %v", db, i, err)
		}
		ep := endpoint{Name: fmt.Sprintf("external %s (to[%d])", db, i)}
		switch {
		case peer.IPBlock != nil:
			ip, _, err := net.ParseCIDR(peer.IPBlock.CIDR)
			if err != nil {
				t.Fatalf("externalStorage.%s.to[%d]: %v", db, i, err)
			}
			ep.IP = ip.String()
		default:
			ep.NS, ep.Labels = namespace, map[string]string{}
			if peer.NamespaceSelector != nil {
				ep.NS = peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]
			}
			if peer.PodSelector != nil {
				ep.Labels = peer.PodSelector.MatchLabels
			}
		}
		out = append(out, ep)
	}
	return out
}

// checkMonitoring: ServiceMonitors honour the services' own labels and select real
// Services and ports; PrometheusRule and dashboards carry content.
func checkMonitoring(t *testing.T, s *set) {
	// One release label on every ServiceMonitor and the PrometheusRule: global.moviebag.neighbours.prometheus.releaseLabel.
	release := "kube-prometheus-stack"
	if v, ok := valueAt(s.values, "global.moviebag.neighbours.prometheus.releaseLabel"); ok {
		release = v.(string)
	}
	for _, sm := range each[*monitoringv1.ServiceMonitor](s) {
		if sm.Labels["release"] != release {
			t.Errorf("ServiceMonitor %s: release label %q, want %q (global.moviebag.neighbours.prometheus.releaseLabel)", sm.Name, sm.Labels["release"], release)
		}
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		var svc *corev1.Service
		for _, v := range each[*corev1.Service](s) {
			if err == nil && !sel.Empty() && sel.Matches(labels.Set(v.Labels)) {
				svc = v
			}
		}
		if svc == nil {
			t.Errorf("ServiceMonitor %s: selects no rendered Service", sm.Name)
			continue
		}
		if len(sm.Spec.Endpoints) == 0 {
			t.Errorf("ServiceMonitor %s: no endpoints", sm.Name)
		}
		for _, ep := range sm.Spec.Endpoints {
			if !ep.HonorLabels {
				t.Errorf("ServiceMonitor %s: honorLabels must be true (the metrics' service label would become exported_service)", sm.Name)
			}
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) || ep.Port != "admin" {
				t.Errorf("ServiceMonitor %s: endpoint port %v is not the Service's admin port", sm.Name, ep.Port)
			}
			if ep.Path != "/metrics" {
				t.Errorf("ServiceMonitor %s: path %q", sm.Name, ep.Path)
			}
		}
	}
	for _, pr := range each[*monitoringv1.PrometheusRule](s) {
		if pr.Labels["release"] != release || len(pr.Spec.Groups) == 0 {
			t.Errorf("PrometheusRule %s: needs release label %q (it has %q) and rule groups", pr.Name, release, pr.Labels["release"])
		}
		for _, g := range pr.Spec.Groups {
			for _, r := range g.Rules {
				if r.Expr.String() == "" || (r.Alert == "") == (r.Record == "") {
					t.Errorf("PrometheusRule %s group %s: a rule needs an expr and exactly one of alert/record: %+v", pr.Name, g.Name, r)
				}
			}
		}
	}
	for _, cm := range each[*corev1.ConfigMap](s) {
		if cm.Labels["grafana_dashboard"] == "" {
			continue
		}
		if cm.Labels["grafana_dashboard"] != "1" || len(cm.Data) == 0 {
			t.Errorf("ConfigMap %s: a dashboard ConfigMap needs grafana_dashboard: \"1\" and data", cm.Name)
		}
		for k, v := range cm.Data {
			var d map[string]any
			if err := json.Unmarshal([]byte(v), &d); err != nil || d["panels"] == nil {
				t.Errorf("ConfigMap %s key %s: not a dashboard JSON with panels: %v", cm.Name, k, err)
			}
		}
	}
	// Each switch renders its own kind, and only when on: a ServiceMonitor per service, the
	// PrometheusRule, the dashboard ConfigMap.
	type part struct {
		path, what string
		match      func(object) bool
	}
	smFor := func(svc string) func(object) bool {
		return func(o object) bool {
			sm, ok := o.Obj.(*monitoringv1.ServiceMonitor)
			return ok && sm.Spec.Selector.MatchLabels["app.kubernetes.io/name"] == svc
		}
	}
	parts := []part{{"serviceMonitor.enabled", "ServiceMonitor of " + s.c.Chart, smFor(s.c.Chart)}}
	if s.c.Chart == "moviebag" {
		parts = []part{
			{"auth.serviceMonitor.enabled", "ServiceMonitor of auth", smFor("auth")},
			{"movies.serviceMonitor.enabled", "ServiceMonitor of movies", smFor("movies")},
			{"monitoring.prometheusRule.enabled", "PrometheusRule", func(o object) bool { return o.GVK.Kind == "PrometheusRule" }},
			{"monitoring.grafanaDashboard.enabled", "dashboard ConfigMap", func(o object) bool {
				cm, ok := o.Obj.(*corev1.ConfigMap)
				return ok && cm.Labels["grafana_dashboard"] != ""
			}},
		}
	}
	for _, p := range parts {
		n := 0
		for _, o := range s.objs {
			if p.match(o) {
				n++
			}
		}
		switch on, _ := valueAt(s.values, p.path); {
		case on == true && n != 1:
			t.Errorf("%s is on: want one %s, rendered %d", p.path, p.what, n)
		case on != true && n != 0:
			t.Errorf("%s is off: rendered %d %s", p.path, n, p.what)
		}
	}
}

// checkSecrets: the generated signing key is a usable RSA key kept on uninstall.
func checkSecrets(t *testing.T, s *set) {
	for _, sec := range each[*corev1.Secret](s) {
		if !strings.HasSuffix(sec.Name, "-signing-keys") {
			continue
		}
		if sec.Annotations["helm.sh/resource-policy"] != "keep" {
			t.Errorf("Secret %s: signing keys must carry helm.sh/resource-policy: keep", sec.Name)
		}
		if len(sec.Data) == 0 {
			t.Errorf("Secret %s: no key", sec.Name)
		}
		for name, b := range sec.Data {
			if !strings.HasSuffix(name, ".pem") {
				t.Errorf("Secret %s: key %q: the service reads *.pem only", sec.Name, name)
			}
			blk, _ := pem.Decode(b)
			if blk == nil {
				t.Errorf("Secret %s key %s: not PEM", sec.Name, name)
				continue
			}
			var key *rsa.PrivateKey
			var err error
			switch blk.Type {
			case "RSA PRIVATE KEY":
				key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
			case "PRIVATE KEY":
				var k any
				if k, err = x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
					key, _ = k.(*rsa.PrivateKey)
				}
			}
			if err != nil || key == nil || key.N.BitLen() < 2048 {
				t.Errorf("Secret %s key %s: not an RSA private key of 2048 bits or more (%s): %v", sec.Name, name, blk.Type, err)
			}
		}
	}
}

// checkLabels: recommended labels on everything, so `kubectl get -l` finds the stack.
func checkLabels(t *testing.T, s *set) {
	for _, o := range s.objs {
		m, ok := o.Obj.(metav1.Object)
		if !ok {
			t.Fatalf("%s: no object metadata", o)
		}
		l := m.GetLabels()
		for _, k := range []string{"app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of", "app.kubernetes.io/name", "helm.sh/chart"} {
			if l[k] == "" {
				t.Errorf("%s: label %s missing", o, k)
			}
		}
		if m.GetNamespace() == "" {
			t.Errorf("%s: no namespace in metadata", o)
		}
	}
}
