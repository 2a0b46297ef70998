package render

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// TestPolicyModel guards the NetworkPolicy evaluation the flow checks rely on, against the API's rules:
// a podSelector alone is the policy's namespace, a namespaceSelector and a podSelector in one peer are
// both required, a named port is the destination's, an unselected pod is open, ipBlock matches addresses.
func TestPolicyModel(t *testing.T) {
	var np networkingv1.NetworkPolicy
	if err := yaml.UnmarshalStrict([]byte(`
metadata: {name: api, namespace: moviebag}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from: [{podSelector: {matchLabels: {app: client}}}]
      ports: [{port: http}]
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}, podSelector: {matchLabels: {app: prometheus}}}]
      ports: [{port: 9091}]
  egress:
    - to: [{ipBlock: {cidr: 10.20.0.0/16, except: [10.20.9.0/24]}}]
      ports: [{port: 27017}]
    - ports: [{port: 53, protocol: UDP}]
`), &np); err != nil {
		t.Fatal(err)
	}
	nps := []*networkingv1.NetworkPolicy{&np}
	api := endpoint{Name: "api", NS: "moviebag", Labels: map[string]string{"app": "api"}, Ports: map[string]int32{"http": 8081, "admin": 9091}, policy: true}
	client := endpoint{Name: "client", NS: "moviebag", Labels: map[string]string{"app": "client"}}
	clientElsewhere := endpoint{Name: "client elsewhere", NS: "other", Labels: map[string]string{"app": "client"}}
	prometheus := endpoint{Name: "prometheus", NS: "monitoring", Labels: map[string]string{"app": "prometheus"}}
	otherInMonitoring := endpoint{Name: "grafana", NS: "monitoring", Labels: map[string]string{"app": "grafana"}}
	other := endpoint{Name: "other", NS: "moviebag", Labels: map[string]string{"app": "other"}, policy: true}
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	for _, c := range []struct {
		name     string
		src, dst endpoint
		port     int32
		proto    corev1.Protocol
		want     bool
	}{
		{"same-namespace client to the named port", client, api, 8081, tcp, true},
		{"same-namespace client to another port", client, api, 9091, tcp, false},
		{"a podSelector alone is the policy's namespace", clientElsewhere, api, 8081, tcp, false},
		{"namespace and pod selector together", prometheus, api, 9091, tcp, true},
		{"namespace selector without the pod", otherInMonitoring, api, 9091, tcp, false},
		{"egress inside the ipBlock", api, endpoint{Name: "db", IP: "10.20.1.1"}, 27017, tcp, true},
		{"egress in the ipBlock's except", api, endpoint{Name: "db", IP: "10.20.9.1"}, 27017, tcp, false},
		{"egress outside the ipBlock", api, endpoint{Name: "db", IP: "192.0.2.1"}, 27017, tcp, false},
		{"egress to a pod: no ipBlock match", api, client, 27017, tcp, false},
		{"a rule without peers: any destination, its port and protocol", api, endpoint{Name: "dns", IP: "192.0.2.53"}, 53, udp, true},
		{"the same port over TCP", api, endpoint{Name: "dns", IP: "192.0.2.53"}, 53, tcp, false},
		{"a pod no policy selects is open", client, other, 1234, tcp, true},
	} {
		if got := allowed(nps, c.src, c.dst, c.port, c.proto); got != c.want {
			t.Errorf("%s: allowed = %v, want %v", c.name, got, c.want)
		}
	}
}
