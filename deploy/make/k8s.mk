# Kubernetes packaging: charts, skaffold, kind, and the proof that runs here without a container engine
# (deploy/k8s/render). Included by the root Makefile; the images are defined in images.mk.

ACTIONLINT_VERSION     ?= v1.7.12
KUBE_VERSION           ?= v1.34.4
KUBE_STAGING_VERSION   ?= v0.34.4
SKAFFOLD_VERSION       ?= v2.16.1
K8S_APT_PACKAGES       := etcd-server shellcheck jq

HELM           := $(BIN)/helm
ACTIONLINT     := $(BIN)/actionlint
KUBE_APISERVER := $(BIN)/kube-apiserver
SKAFFOLD       := $(BIN)/skaffold
K8S_BUILD      := $(CURDIR)/build

DEPS_TARGETS += deps-k8s
APT_TARGETS += deps-k8s-apt
TEST_TARGETS += test-k8s
# In the second chain of tests (Makefile: TEST_BESIDE), after the test cluster.
TEST_BESIDE += test-k8s
TEST_NEEDS_test-k8s := deps-k8s

.PHONY: deps-k8s
deps-k8s: deps-k8s-apt $(HELM) $(ACTIONLINT) $(KUBE_APISERVER) $(SKAFFOLD) ## Kubernetes tools: helm, actionlint, kube-apiserver, skaffold, etcd, shellcheck
	@cd deploy/k8s/render && GOWORK=off $(GO) mod download && \
	  GOWORK=off $(GO) mod download $(K8S_CRD_MODULES)

# Module zips that carry the CRDs installed into the test API server.
K8S_CRD_MODULES := sigs.k8s.io/gateway-api@v1.6.3 github.com/prometheus-operator/prometheus-operator@v0.85.0

.PHONY: test-k8s
test-k8s: $(ASSEMBLE_IMAGE) ## charts, workflows, skaffold, the image definition: helm lint/template, strict decoding, policies, actionlint, kube-apiserver dry run
	cd deploy/k8s/render && GOWORK=off $(GO) test -count=1 -timeout 45m ./...

KIND_CLUSTER ?= moviebag
# The cluster `make routing-up` installs into (kubectl's context name).
KUBE_CONTEXT ?= kind-$(KIND_CLUSTER)
# The way in, as on the test cluster (deploy/k8s/cluster): the Gateway API standard CRDs and Traefik from the
# same manifest, deploy/k8s/cluster/manifests/traefik.yaml, here with Traefik's official image and the node
# ports that deploy/k8s/kind/cluster.yaml maps from the host: the Gateway on 80, Ingresses on 8080. The test
# cluster binds them to the node's 127.0.0.1 and never pulls; on kind and minikube the traffic comes in
# on the node's own address and the image is pulled.
TRAEFIK_IMAGE ?= docker.io/traefik:$(TRAEFIK_VERSION)
GATEWAY_API_MANIFEST = https://github.com/kubernetes-sigs/gateway-api/releases/download/$(GATEWAY_API_VERSION)/standard-install.yaml
ROUTING_GATEWAY_PORT ?= 80
ROUTING_INGRESS_PORT ?= 8080

.PHONY: routing-up
routing-up: ## Gateway API CRDs + Traefik (Gateway traefik/traefik-gateway, IngressClass traefik) on KUBE_CONTEXT (default kind-moviebag)
	@command -v kubectl >/dev/null || { echo "make routing-up needs kubectl on PATH"; exit 1; }
	kubectl --context $(KUBE_CONTEXT) apply --server-side -f $(GATEWAY_API_MANIFEST)
	kubectl --context $(KUBE_CONTEXT) wait --for condition=Established --timeout=120s \
	  crd/gatewayclasses.gateway.networking.k8s.io crd/gateways.gateway.networking.k8s.io crd/httproutes.gateway.networking.k8s.io
	sed -e 's|\$${IMAGE_TRAEFIK}|$(TRAEFIK_IMAGE)|; s|\$${GATEWAY_PORT}|$(ROUTING_GATEWAY_PORT)|; s|\$${INGRESS_PORT}|$(ROUTING_INGRESS_PORT)|' \
	  -e 's|imagePullPolicy: Never|imagePullPolicy: IfNotPresent|; s|hostIP: 127.0.0.1, ||' \
	  deploy/k8s/cluster/manifests/traefik.yaml | kubectl --context $(KUBE_CONTEXT) apply -f -
	kubectl --context $(KUBE_CONTEXT) -n traefik rollout status deployment/traefik --timeout=300s

# skaffold from PATH when there is one, else the pinned build in bin/.
KIND_SKAFFOLD = $(or $(shell command -v skaffold 2>/dev/null),$(SKAFFOLD))

.PHONY: kind-up
kind-up: $(if $(shell command -v skaffold 2>/dev/null),,$(SKAFFOLD)) ## kind cluster + Traefik (Gateway API and Ingress) + the stack deployed by skaffold: Gateway on http://localhost, Ingress on :8080 (needs Docker, kind, kubectl)
	@for t in docker kind kubectl; do command -v $$t >/dev/null || { echo "make kind-up needs $$t on PATH"; exit 1; }; done
	kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' || kind create cluster --name $(KIND_CLUSTER) --config deploy/k8s/kind/cluster.yaml
	@$(MAKE) --no-print-directory routing-up KUBE_CONTEXT=kind-$(KIND_CLUSTER)
	$(KIND_SKAFFOLD) run -p kind --kube-context kind-$(KIND_CLUSTER)
	@echo "moviebag answers through the Gateway on http://localhost and through the Ingress on http://localhost:8080"
	@echo "(try: deploy/e2e.sh http://localhost); helm test moviebag -n moviebag --kube-context kind-$(KIND_CLUSTER)"

.PHONY: kind-down
kind-down: ## delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

# apt-get as root, or through sudo (CI runners).
K8S_SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo)

.PHONY: deps-k8s-apt
deps-k8s-apt:
	@command -v dpkg >/dev/null || { echo "no dpkg here: install $(K8S_APT_PACKAGES) with your package manager"; exit 0; }; \
	missing=(); for p in $(K8S_APT_PACKAGES); do dpkg -s "$$p" >/dev/null 2>&1 || missing+=("$$p"); done; \
	if (( $${#missing[@]} )); then \
	  echo "installing Debian packages: $${missing[*]}"; \
	  $(K8S_SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(K8S_SUDO) apt-get install -y -qq \
	    -o DPkg::Lock::Timeout=300 "$${missing[@]}"; \
	  if [ -d /run/systemd/system ]; then $(K8S_SUDO) systemctl disable --now etcd.service >/dev/null 2>&1 || true; fi; \
	fi

# $(HELM) is built from deploy/tools with the other tools of that module (tools.mk).

$(ACTIONLINT):
	@$(STEP) begin actionlint
	GOBIN=$(BIN) GOWORK=off $(GO) install -trimpath -ldflags '-s -w' github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	@$(STEP) end actionlint

# $(KUBE_APISERVER) is a link to the multi-call Kubernetes binary built by testcluster.mk.

# skaffold's go.mod has replace lines, so `go install` is refused: build a copy.
$(SKAFFOLD): | deps-k8s-apt
	@mkdir -p $(BIN) $(K8S_BUILD)
	@$(STEP) begin skaffold
	set -e; dir=$$(GOWORK=off GOFLAGS=-mod=mod $(GO) mod download -json github.com/GoogleContainerTools/skaffold/v2@$(SKAFFOLD_VERSION) | jq -r .Dir); \
	rm -rf $(K8S_BUILD)/skaffold && cp -r "$$dir" $(K8S_BUILD)/skaffold && chmod -R u+w $(K8S_BUILD)/skaffold; \
	cd $(K8S_BUILD)/skaffold && GOWORK=off GOFLAGS='-mod=mod -buildvcs=false' $(GO) build -trimpath \
	  -ldflags "-s -w -X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=$(SKAFFOLD_VERSION)" -o $@ ./cmd/skaffold
	rm -rf $(K8S_BUILD)/skaffold
	@$(STEP) end skaffold
