# A real three-node Kubernetes built on this machine (each node in namespaces and cgroups of its own), with
# the umbrella chart installed and proven
# (deploy/k8s/cluster). Every component is built from a pinned Go module or installed from Debian, into the
# git-ignored bin/; a second run finds it all there and builds nothing.
#
#   make cluster-up      the cluster, the chart installed, Prometheus scraping it; last lines KUBECONFIG=,
#                        GATEWAY_URL=, INGRESS_URL=, PROMETHEUS_URL=
#   make cluster-down    removes what cluster-up made (and only that), checks nothing of it is left
#   make test-cluster    the host's canaries planted; then side by side (deploy/k8s/cluster/test-shapes.sh): a
#                        cluster mbtest up, a second one killed halfway beside it and down, the checks of
#                        deploy/k8s/cluster/clustertest (TestCluster, TestClusterMonitoring, ...), down; and the
#                        same checks on the managed shape, cluster mbmanaged; the canaries checked after both
#   make cluster-up CLUSTER_SHAPE=managed   a second, differently shaped cluster (deploy/k8s/cluster/shapes/managed.sh:
#                        no Gateway API, release mb in apps, external stores, Prometheus by release=kps); last
#                        lines KUBECONFIG=, INGRESS_URL=, PROMETHEUS_URL=; make cluster-down CLUSTER_SHAPE=managed
#   make images          the images the cluster runs, as tarballs in bin/images/ (made as images.mk says)

TRAEFIK_VERSION     ?= v3.6.12
GATEWAY_API_VERSION ?= v1.6.3
CLUSTER_APT_PACKAGES := containerd runc containernetworking-plugins iptables conntrack ipset etcd-server \
	busybox-static curl ca-certificates tzdata redis-server openssl iproute2 procps

KUBE        := $(BIN)/kube
KUBE_LINKS  := $(addprefix $(BIN)/,kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
COREDNS     := $(BIN)/coredns
KUBE_ROUTER := $(BIN)/kube-router
TRAEFIK     := $(BIN)/traefik
PROMETHEUS_K8S := $(BIN)/prometheus-k8s
PROVISIONER := $(BIN)/provisioner
CLUSTER_TOOLS := $(KUBE_LINKS) $(COREDNS) $(KUBE_ROUTER) $(TRAEFIK) $(PROMETHEUS_K8S) $(ASSEMBLE_IMAGE) $(PROVISIONER) $(HELM)

CLUSTER_IMAGES := pause coredns traefik prometheus auth movies ferretdb redis tools mailpit
CLUSTER_SH := deploy/k8s/cluster/cluster.sh

# Part of `make deps` and `make test` (it needs root, as the cluster does): about 13 minutes once built.
DEPS_TARGETS += deps-cluster
APT_TARGETS += deps-cluster-apt
# Kubernetes is the longest build of make deps: it starts first, the others run beside it.
DEPS_FIRST := $(KUBE) $(DEPS_FIRST)
TEST_TARGETS += test-cluster
# First in the second chain of tests (Makefile: TEST_BESIDE), as soon as its own tools are built: much of its
# time is spent waiting for nodes, pods and rollouts, while the other tests and builds use the cores.
TEST_BESIDE := test-cluster $(TEST_BESIDE)
TEST_NEEDS_test-cluster := deps-cluster

.PHONY: deps-cluster
deps-cluster: deps-cluster-apt $(CLUSTER_TOOLS) ## the test cluster's parts: Debian packages, Kubernetes, CoreDNS, kube-router, Traefik, Prometheus

.PHONY: deps-cluster-apt
deps-cluster-apt:
	@missing=(); for p in $(CLUSTER_APT_PACKAGES); do dpkg -s "$$p" >/dev/null 2>&1 || missing+=("$$p"); done; \
	if (( $${#missing[@]} )); then \
	  echo "installing Debian packages for the test cluster: $${missing[*]} (about a minute)"; \
	  $(K8S_SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(K8S_SUDO) apt-get install -y -qq \
	    -o DPkg::Lock::Timeout=300 "$${missing[@]}" >/dev/null; \
	fi

# Every Kubernetes component in one binary (deploy/k8s/cluster/kube): one compile of the shared packages.
KUBE_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34 \
	-X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$(KUBE_VERSION)
$(KUBE): deploy/k8s/cluster/kube/main.go deploy/k8s/cluster/kube/go.mod deploy/k8s/cluster/kube/go.sum
	@echo "building Kubernetes $(KUBE_VERSION) (apiserver, controller-manager, scheduler, kubelet, kube-proxy, kubectl): about 10 min on 2 cores"
	@mkdir -p $(BIN)
	@$(STEP) begin kubernetes
	cd deploy/k8s/cluster/kube && GOWORK=off $(GO) build -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $@ .
	@$(STEP) end kubernetes

$(KUBE_LINKS): $(KUBE)
	ln -sf kube $@

# CoreDNS, kube-router and the in-cluster Prometheus (deploy/k8s/cluster/manifests/prometheus.yaml) are built
# from deploy/tools, with helm (tools.mk).

# Traefik's go.mod has replace lines, so `go install` is refused: build a copy of the module. The copy is built
# without lego's DNS-01 providers (github.com/go-acme/lego/v4/providers/dns): that one import brings some 150 DNS
# providers' cloud SDKs, 847 of the 2,201 packages Traefik compiles, for a certificate challenge the test cluster
# never makes (it serves plain HTTP). One line of pkg/provider/acme/provider.go is replaced by an error naming the
# provider; the build stops if that line is not found, as in a new Traefik version.
TRAEFIK_ACME_FILE := pkg/provider/acme/provider.go
$(TRAEFIK): | deps-k8s-apt
	@echo "building Traefik $(TRAEFIK_VERSION) (Gateway API and Ingress controller, no ACME DNS providers): about 4 min"
	@mkdir -p $(BIN) $(K8S_BUILD)
	@$(STEP) begin traefik
	set -e; dir=$$(GOWORK=off GOFLAGS=-mod=mod $(GO) mod download -json github.com/traefik/traefik/v3@$(TRAEFIK_VERSION) | jq -r .Dir); \
	rm -rf $(K8S_BUILD)/traefik && cp -r "$$dir" $(K8S_BUILD)/traefik && chmod -R u+w $(K8S_BUILD)/traefik; \
	cd $(K8S_BUILD)/traefik; \
	grep -q 'provider, err = dns.NewDNSChallengeProviderByName(p.DNSChallenge.Provider)' $(TRAEFIK_ACME_FILE) || { \
	  echo "Traefik $(TRAEFIK_VERSION): $(TRAEFIK_ACME_FILE) no longer calls dns.NewDNSChallengeProviderByName as v3.6.12 does: update the Traefik recipe of deploy/make/testcluster.mk"; exit 1; }; \
	sed -i -e '\|^\t"github.com/go-acme/lego/v4/providers/dns"$$|d' \
	  -e 's|provider, err = dns.NewDNSChallengeProviderByName(p.DNSChallenge.Provider)|err = fmt.Errorf("DNS challenge provider %q: not built into this Traefik (moviebag test cluster)", p.DNSChallenge.Provider)|' \
	  $(TRAEFIK_ACME_FILE); \
	GOWORK=off CGO_ENABLED=0 GOFLAGS='-mod=mod -buildvcs=false' $(GO) build -trimpath \
	  -ldflags '-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$(TRAEFIK_VERSION)' -o $@ ./cmd/traefik
	rm -rf $(K8S_BUILD)/traefik
	@$(STEP) end traefik

$(PROVISIONER): $(wildcard deploy/k8s/cluster/provisioner/*.go) deploy/k8s/cluster/go.mod deploy/k8s/cluster/go.sum
	cd deploy/k8s/cluster && GOWORK=off $(GO) build -o $@ ./provisioner

# ----------------------------------------------------------------------------------------------------
# The images the cluster runs, as tarballs in $(IMAGES_DIR), each made by $(ASSEMBLE_IMAGE) (images.mk): the
# service images through image-auth / image-movies, the others from the binaries built above.
.PHONY: images
images: $(addprefix $(IMAGES_DIR)/,$(addsuffix .tar,$(CLUSTER_IMAGES))) ## the images of the test cluster, as tarballs in bin/images

# The service images are rebuilt on every run (the Go build cache makes that quick); the others only
# when missing.
$(IMAGES_DIR)/auth.tar $(IMAGES_DIR)/movies.tar: $(IMAGES_DIR)/%.tar: FORCE
	@$(MAKE) --no-print-directory image-$* IMAGE_OUTPUT=tar IMAGE=moviebag.local/moviebag-$*:$(IMAGE_TAG)
.PHONY: FORCE
FORCE:

$(IMAGES_DIR)/pause.tar: $(ASSEMBLE_IMAGE) deploy/images/pause/main.go
	cd deploy/images && GOWORK=off CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/linux_$(GOARCH_IMAGE)/pause ./pause
	$(ASSEMBLE_IMAGE) -tag moviebag.local/pause:1 -o $@ -add $(BIN)/linux_$(GOARCH_IMAGE)/pause:/pause -user 65535:65535 -entrypoint /pause

$(IMAGES_DIR)/coredns.tar: $(ASSEMBLE_IMAGE) $(COREDNS)
	$(ASSEMBLE_IMAGE) -tag moviebag.local/coredns:1 -o $@ -base -add $(COREDNS):/coredns -user 65532:65532 -entrypoint /coredns

$(IMAGES_DIR)/traefik.tar: $(ASSEMBLE_IMAGE) $(TRAEFIK)
	$(ASSEMBLE_IMAGE) -tag moviebag.local/traefik:1 -o $@ -base -add $(TRAEFIK):/traefik -user 65532:65532 -entrypoint /traefik

# The in-cluster Prometheus (deploy/k8s/cluster/manifests/prometheus.yaml); its TSDB is an emptyDir at /prometheus.
$(IMAGES_DIR)/prometheus.tar: $(ASSEMBLE_IMAGE) $(PROMETHEUS_K8S)
	$(ASSEMBLE_IMAGE) -tag moviebag.local/prometheus:1 -o $@ -base -add $(PROMETHEUS_K8S):/bin/prometheus -dir /prometheus:0777 \
	  -workdir /prometheus -user 65532:65532 -entrypoint /bin/prometheus -port 9090

# The dev MongoDB of the cluster: FerretDB (SQLite), a drop-in for the official image's `mongod` command.
$(IMAGES_DIR)/ferretdb.tar: $(ASSEMBLE_IMAGE) $(wildcard deploy/local/cmd/ferretdb/*.go deploy/local/devstore/*.go)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/linux_$(GOARCH_IMAGE)/ferretdb ./deploy/local/cmd/ferretdb
	$(ASSEMBLE_IMAGE) -tag moviebag.local/ferretdb:1 -o $@ -base -add $(BIN)/linux_$(GOARCH_IMAGE)/ferretdb:/usr/bin/ferretdb \
	  -link ferretdb:/usr/bin/mongod -dir /data/db:0777 -user 999:999 -entrypoint /usr/bin/ferretdb -port 27017

# The dev Redis of the cluster: Debian's redis-server and redis-cli with the libraries they load. Like the
# official image it runs with protected mode off (Debian's binary, with no config file, would refuse every
# client that is not on loopback): /usr/local/bin/redis-server, first on PATH, adds the flag.
$(IMAGES_DIR)/redis.tar: $(ASSEMBLE_IMAGE) | deps-cluster-apt
	@mkdir -p $(BIN)/linux_$(GOARCH_IMAGE)
	printf '#!/bin/sh\nexec /usr/bin/redis-server "$$@" --protected-mode no\n' >$(BIN)/linux_$(GOARCH_IMAGE)/redis-server.sh
	chmod 755 $(BIN)/linux_$(GOARCH_IMAGE)/redis-server.sh
	$(ASSEMBLE_IMAGE) -tag moviebag.local/redis:1 -o $@ -base -add-bin /usr/bin/redis-server:/usr/bin/redis-server \
	  -add /bin/busybox:/bin/busybox -link busybox:/bin/sh -add $(BIN)/linux_$(GOARCH_IMAGE)/redis-server.sh:/usr/local/bin/redis-server \
	  -add-bin /usr/bin/redis-cli:/usr/bin/redis-cli -dir /data:0777 -workdir /data -user 999:999 -cmd redis-server -port 6379

# The dev mail server of the cluster: Mailpit, built from the version deploy/mailpit pins (a static binary).
$(IMAGES_DIR)/mailpit.tar: $(ASSEMBLE_IMAGE) deploy/mailpit/go.mod deploy/mailpit/go.sum
	@mkdir -p $(BIN)/linux_$(GOARCH_IMAGE)
	cd deploy/mailpit && GOWORK=off CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_IMAGE) $(GO) build -trimpath -ldflags '-s -w' \
	  -o $(BIN)/linux_$(GOARCH_IMAGE)/mailpit github.com/axllent/mailpit
	$(ASSEMBLE_IMAGE) -tag moviebag.local/mailpit:1 -o $@ -base -add $(BIN)/linux_$(GOARCH_IMAGE)/mailpit:/mailpit \
	  -dir /tmp:1777 -user 65532:65532 -entrypoint /mailpit -port 1025 -port 8025

# The helm test pod and the NetworkPolicy probes: busybox (sh, sed, nc, ...) and curl.
BUSYBOX_APPLETS := sh sed grep date hostname head cat echo test sleep nc wget env printf tr cut
$(IMAGES_DIR)/tools.tar: $(ASSEMBLE_IMAGE) | deps-cluster-apt
	$(ASSEMBLE_IMAGE) -tag moviebag.local/tools:1 -o $@ -base -add /bin/busybox:/bin/busybox \
	  $(foreach a,$(BUSYBOX_APPLETS),-link busybox:/bin/$(a)) -add-bin /usr/bin/curl:/usr/bin/curl -user 100:101 -cmd sh

# ----------------------------------------------------------------------------------------------------
# CLUSTER_SHAPE=managed (make cluster-up / cluster-down CLUSTER_SHAPE=managed) is the differently shaped
# cluster of deploy/k8s/cluster/shapes/managed.sh; it installs the prometheus-operator CRDs from their module.
PROMETHEUS_OPERATOR_VERSION ?= v0.85.0
CLUSTER_ENV = BIN=$(BIN) IMAGE_TAG=$(IMAGE_TAG) \
	GATEWAY_API_CRDS=$$(cd deploy/k8s/cluster && GOWORK=off $(GO) mod download -json sigs.k8s.io/gateway-api@$(GATEWAY_API_VERSION) | jq -r .Dir)/config/crd/standard \
	PROMETHEUS_OPERATOR_CRDS=$$(cd deploy/k8s/cluster && GOWORK=off $(GO) mod download -json github.com/prometheus-operator/prometheus-operator@$(PROMETHEUS_OPERATOR_VERSION) | jq -r .Dir)/example/prometheus-operator-crd

.PHONY: cluster-up
cluster-up: deps-cluster images ## a real three-node Kubernetes here, isolated from the host, with the chart installed (about 4 min when built)
	@$(CLUSTER_ENV) $(CLUSTER_SH) up

.PHONY: cluster-down
cluster-down: ## remove what cluster-up made, and only that (processes, cgroups, mounts, namespaces, bridge, its iptables chain, files); restore the kernel tunables
	@$(CLUSTER_SH) down

# The clusters of the tests are named apart from cluster-up's (moviebag, managed), so that a contributor's own
# cluster keeps running through make test: TEST_CLUSTER_NAME (the default shape) and TEST_CLUSTER_MANAGED.
TEST_CLUSTER_NAME    ?= mbtest
TEST_CLUSTER_MANAGED ?= mbmanaged
export TEST_CLUSTER_NAME TEST_CLUSTER_MANAGED

# cluster_run runs the clustertest tests matching $(2) on a fresh cluster named $(1), and always takes it down
# (deploy/k8s/cluster/test.sh).
cluster_run = $(CLUSTER_ENV) GO=$(GO) CLUSTER_NAME=$(1) deploy/k8s/cluster/test.sh '$(2)'

CLUSTER_CHECKS = ^(TestCluster|TestClusterMonitoring|TestClusterOversizedBodies)$$

.PHONY: test-cluster test-cluster-managed
test-cluster: deps-cluster images ## the checks on both shapes at once (chart, monitoring, oversized bodies), each on a fresh cluster taken down after; the host's canaries around both, a second cluster killed halfway beside the first
	@$(CLUSTER_ENV) GO=$(GO) deploy/k8s/cluster/test-shapes.sh '$(CLUSTER_CHECKS)'

test-cluster-managed: deps-cluster images ## the checks of test-cluster on the managed shape only (deploy/k8s/cluster/shapes/managed.sh: no Gateway API, release mb in apps, external MongoDB and Redis behind a Sentinel, Prometheus selecting release=kps)
	@CLUSTER_SHAPE=managed $(call cluster_run,$(TEST_CLUSTER_MANAGED),$(CLUSTER_CHECKS))

.PHONY: test-cluster-disruption
test-cluster-disruption: deps-cluster images ## cluster-up; under load: each worker drained, the databases' node drained, a worker lost, pods rolled and killed, dev Redis and MongoDB restarted, a signing key rotated; cluster-down
	@$(call cluster_run,$(TEST_CLUSTER_NAME),^TestDisruptions$$)
