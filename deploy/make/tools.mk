# The tools built from one Go module, deploy/tools, whose go.mod pins them: helm, the test cluster's Prometheus
# (Kubernetes discovery only), CoreDNS (the cluster's plugins only, deploy/tools/coredns) and kube-router. One
# `go build` makes all four with the same flags, so the libraries they share (client-go, grpc, protobuf, x/net,
# ...) are one version each and compile once: 1,763 packages, where the four built as modules of their own
# compiled 3,342 (go list -deps). Included by the root Makefile after k8s.mk and testcluster.mk, which name
# these binaries. A new version: `cd deploy/tools && GOWORK=off go get -tool <module>@<version>` (CoreDNS:
# go get github.com/coredns/coredns@<version>), then make deps.
TOOLS_MOD   := deploy/tools
TOOLS_BUILD := $(K8S_BUILD)/tools
tools_version = $(shell awk '$$1 == "$(1)" {print $$2; exit}' $(TOOLS_MOD)/go.mod)
HELM_VERSION           := $(call tools_version,helm.sh/helm/v3)
PROMETHEUS_K8S_VERSION := $(call tools_version,github.com/prometheus/prometheus)
COREDNS_VERSION        := $(call tools_version,github.com/coredns/coredns)
KUBE_ROUTER_VERSION    := $(call tools_version,github.com/cloudnativelabs/kube-router/v2)
TOOLS_CLIENT_GO_MINOR  := $(word 2,$(subst ., ,$(call tools_version,k8s.io/client-go)))

# The -X flags are those of helm's own release build: without them `helm version` is blank and `helm template`
# assumes Kubernetes v1.20. The Kubernetes minor is that of the client-go helm is built with here.
HELM_LDFLAGS := -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(TOOLS_CLIENT_GO_MINOR) \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(TOOLS_CLIENT_GO_MINOR)
# Prometheus with Kubernetes discovery only (remove_all_sd drops every other but file and http), static. Its
# binary is named prometheus-k8s in bin/, so that it never shadows Debian's prometheus, which deploy/observability
# runs from PATH. The tags select files of Prometheus's discovery packages only; the others build as for the rest.
TOOLS_TAGS := remove_all_sd,enable_kubernetes_sd
TOOLS_PKGS := helm.sh/helm/v3/cmd/helm github.com/prometheus/prometheus/cmd/prometheus ./coredns \
	github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
COREDNS_MANIFEST := deploy/k8s/cluster/manifests/coredns.yaml

.PHONY: deps-tools
deps-tools: $(HELM) $(PROMETHEUS_K8S) $(COREDNS) $(KUBE_ROUTER)

# One recipe makes the four (a grouped target): its go build compiles each shared package once.
$(HELM) $(PROMETHEUS_K8S) $(COREDNS) $(KUBE_ROUTER) &: $(TOOLS_MOD)/go.mod $(TOOLS_MOD)/go.sum $(TOOLS_MOD)/coredns/main.go $(COREDNS_MANIFEST) | deps-k8s-apt
	@echo "building helm $(HELM_VERSION), Prometheus $(PROMETHEUS_K8S_VERSION), CoreDNS $(COREDNS_VERSION) and kube-router $(KUBE_ROUTER_VERSION) from $(TOOLS_MOD) (first run: about 15 min on 2 cores)"
	@mkdir -p $(BIN) $(TOOLS_BUILD)
	@$(STEP) begin tools
	cd $(TOOLS_MOD) && GOWORK=off CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -tags $(TOOLS_TAGS) -ldflags '-s -w $(HELM_LDFLAGS)' \
	  -o $(TOOLS_BUILD)/ $(TOOLS_PKGS)
	@$(MAKE) --no-print-directory check-coredns-corefile COREDNS_NEW=$(TOOLS_BUILD)/coredns
	mv $(TOOLS_BUILD)/helm $(HELM)
	mv $(TOOLS_BUILD)/prometheus $(PROMETHEUS_K8S)
	mv $(TOOLS_BUILD)/coredns $(COREDNS)
	mv $(TOOLS_BUILD)/kube-router $(KUBE_ROUTER)
	@$(STEP) end tools

# The cluster's Corefile (the ConfigMap of COREDNS_MANIFEST) loaded by the new CoreDNS: a directive whose plugin
# deploy/tools/coredns does not import fails here, by name, not in the cluster.
.PHONY: check-coredns-corefile
check-coredns-corefile:
	@awk '/Corefile: [|]/ {on = 1; next} on && !/^    / && !/^$$/ {on = 0} on {sub(/^    /, ""); print}' $(COREDNS_MANIFEST) \
	  >$(TOOLS_BUILD)/Corefile
	@out=$$(cd $(TOOLS_BUILD) && timeout 5 $(COREDNS_NEW) -conf Corefile -dns.port 0 2>&1 || true); \
	if grep -iE 'unknown directive|no action found|missing a plugin' <<<"$$out"; then \
	  echo "CoreDNS: the Corefile of $(COREDNS_MANIFEST) uses a plugin that $(TOOLS_MOD)/coredns/main.go does not import"; \
	  exit 1; fi
