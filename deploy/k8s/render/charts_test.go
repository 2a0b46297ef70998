package render

import (
	"path/filepath"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// storageEgress returns the umbrella's external-storage NetworkPolicy of a render, or nil.
func storageEgress(t *testing.T, extra ...string) *networkingv1.NetworkPolicy {
	t.Helper()
	var found *networkingv1.NetworkPolicy
	for _, o := range render(t, renderCase{Chart: "moviebag"}, extra...) {
		if np, ok := o.Obj.(*networkingv1.NetworkPolicy); ok && np.Labels["app.kubernetes.io/component"] == "storage-egress" {
			if found != nil {
				t.Fatalf("two storage-egress policies: %s and %s", found.Name, np.Name)
			}
			found = np
		}
	}
	return found
}

// TestStorageEgress: the external-storage policy renders only when in-chart storage is off, with one
// egress rule per database outside the chart, on externalStorage's port and towards its peers.
func TestStorageEgress(t *testing.T) {
	ext := []string{"--set", "global.moviebag.storage.existingSecret=moviebag-storage"}
	type rule struct {
		ports string // the rule's ports, comma-separated
		to    string // "" for any address, else the CIDR of the one ipBlock peer
	}
	cases := []struct {
		name string
		set  []string
		want []rule // nil: no policy
	}{
		{"in-chart storage", nil, nil},
		{"MongoDB outside", append(ext, "--set", "mongodb.enabled=false"), []rule{{"27017", ""}}},
		{"Redis outside", append(ext, "--set", "redis.enabled=false"), []rule{{"6379", ""}}},
		{"both outside", append(ext, "--set", "mongodb.enabled=false", "--set", "redis.enabled=false"), []rule{{"27017", ""}, {"6379", ""}}},
		{"both outside, given peers and port", append(ext, "--set", "mongodb.enabled=false", "--set", "redis.enabled=false",
			"--set", "externalStorage.mongodb.ports={27018}", "--set", "externalStorage.mongodb.to[0].ipBlock.cidr=192.0.2.0/24"),
			[]rule{{"27018", "192.0.2.0/24"}, {"6379", ""}}},
		{"Redis behind Sentinels: two ports", append(ext, "--set", "redis.enabled=false", "--set", "externalStorage.redis.ports={26379,6379}"),
			[]rule{{"26379,6379", ""}}},
		{"NetworkPolicies off", append(ext, "--set", "mongodb.enabled=false", "--set", "redis.enabled=false",
			"--set", "auth.networkPolicy.enabled=false", "--set", "movies.networkPolicy.enabled=false"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			np := storageEgress(t, tc.set...)
			if tc.want == nil {
				if np != nil {
					t.Fatalf("rendered %s although in-chart storage serves (or policies are off)", np.Name)
				}
				return
			}
			if np == nil {
				t.Fatal("no storage-egress NetworkPolicy although storage is outside the chart: the pods could not reach it")
			}
			var got []rule
			for _, r := range np.Spec.Egress {
				var ports []string
				for _, p := range r.Ports {
					if p.Port == nil || p.Port.Type != intstr.Int {
						t.Fatalf("egress rule %+v: want numeric ports", r)
					}
					ports = append(ports, p.Port.String())
				}
				g := rule{ports: strings.Join(ports, ",")}
				if len(r.To) == 1 && r.To[0].IPBlock != nil {
					g.to = r.To[0].IPBlock.CIDR
				} else if len(r.To) != 0 {
					t.Fatalf("egress rule %+v: unexpected peers", r)
				}
				got = append(got, g)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("egress rules %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("egress rule %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestShutdownBudget: the service charts refuse a terminationGracePeriodSeconds shorter than the drain
// delay + the shutdown timeout + 5 s, and accept exactly that.
func TestShutdownBudget(t *testing.T) {
	helm := tool(t, "helm")
	chartDeps(t)
	cases := []struct {
		chart string
		set   []string
		ok    bool
	}{
		{"auth", []string{"terminationGracePeriodSeconds=30"}, true}, // 5s + 20s + 5s
		{"auth", []string{"terminationGracePeriodSeconds=29"}, false},
		{"movies", []string{"terminationGracePeriodSeconds=30"}, true},
		{"movies", []string{"terminationGracePeriodSeconds=29"}, false},
		{"movies", []string{"config.shutdownTimeout=1m"}, false},
		{"auth", []string{"config.shutdownDrainDelay=1m30s", "config.shutdownTimeout=500ms", "terminationGracePeriodSeconds=95"}, false},
		{"auth", []string{"config.shutdownDrainDelay=1m30s", "config.shutdownTimeout=500ms", "terminationGracePeriodSeconds=96"}, true},
		{"moviebag", []string{"auth.config.shutdownDrainDelay=15s"}, false},
		{"moviebag", []string{"movies.terminationGracePeriodSeconds=10"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.chart+"/"+strings.Join(tc.set, ","), func(t *testing.T) {
			args := append([]string{"template", releaseName, filepath.Join("helm", tc.chart)}, offline(tc.chart)...)
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := runErr(repoRoot, helm, args...)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused a budget that fits: %v", err)
			case !tc.ok && err == nil:
				t.Fatalf("rendered; want a refusal: the pod would be killed in the middle of its shutdown\n%s", tail(string(out)))
			case !tc.ok && !strings.Contains(err.Error(), "terminationGracePeriodSeconds"):
				t.Fatalf("refused, but the message does not name terminationGracePeriodSeconds: %v", err)
			}
		})
	}
}
