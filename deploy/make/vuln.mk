# Known vulnerabilities: govulncheck over every Go module of the repository (the go.work ones and the
# GOWORK=off ones: bench, deploy/k8s/render, deploy/observability, ...) against an offline database built
# here from the golang.org/x/vulndb module (vuln.go.dev cannot be reached from our machines). Included
# by the root Makefile. The database is built once into the git-ignored build/ (a few minutes) and
# reused silently; a new VULNDB_VERSION builds a new one.

GOVULNCHECK_VERSION ?= v1.9.0
VULNDB_VERSION      ?= v0.0.0-20261105234957-e22db6528018

GOVULNCHECK := $(BIN)/govulncheck
VULNDB      := $(CURDIR)/build/vulndb/$(VULNDB_VERSION)
# Every directory with a go.mod, except downloaded or generated trees and the upstream tool builds
# (UPSTREAM_TOOL_MODULES): deploy/k8s/cluster/kube is Kubernetes and deploy/tools helm, Prometheus, CoreDNS and
# kube-router, built as tools of the tests and the test cluster, like Traefik (none of them ships, none of them is
# scanned here); their fix is a newer upstream version, not an edit of ours.
VULN_MODULES = $(filter-out $(addprefix ./,$(UPSTREAM_TOOL_MODULES)),$(shell find . -name go.mod -not -path './build/*' \
	-not -path './bin/*' -not -path '*/node_modules/*' -not -path '*/testdata/*' -exec dirname {} \; | sort))

DEPS_TARGETS += deps-vuln
TEST_TARGETS += test-vuln
# In the second chain of tests (Makefile: TEST_BESIDE), after the test cluster and test-k8s.
TEST_BESIDE += test-vuln
TEST_NEEDS_test-vuln := deps-vuln

.PHONY: deps-vuln
deps-vuln: $(GOVULNCHECK) $(VULNDB)/index/db.json ## govulncheck and its offline vulnerability database

$(GOVULNCHECK):
	@$(STEP) begin govulncheck
	GOBIN=$(BIN) $(GO) install -ldflags '-s -w' golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)
	@$(STEP) end govulncheck

# gendb (in the vulndb module) reads the data as a git repository: copy the module, commit it, generate.
$(VULNDB)/index/db.json:
	@echo "vuln: building the offline database from golang.org/x/vulndb@$(VULNDB_VERSION) (once, a few minutes)"
	@$(STEP) begin vulndb
	@rm -rf "$(VULNDB)" "$(VULNDB).src" "$(VULNDB).tmp"
	@mkdir -p "$(dir $(VULNDB))"
	@src=$$(cd "$(dir $(VULNDB))" && GOWORK=off GOFLAGS=-mod=mod $(GO) mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) \
	    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	  test -n "$$src" || { echo "vuln: could not download golang.org/x/vulndb@$(VULNDB_VERSION)"; exit 1; }; \
	  cp -R "$$src" "$(VULNDB).src" && chmod -R u+w "$(VULNDB).src"
	@cd "$(VULNDB).src" && git init -q && git add -A && \
	  git -c user.name=moviebag -c user.email=moviebag@localhost -c commit.gpgsign=false commit -qm "vulndb $(VULNDB_VERSION)" && \
	  GOWORK=off $(GO) build -o gendb ./cmd/gendb && ./gendb -repo . -out "$(VULNDB).tmp"
	@mv "$(VULNDB).tmp" "$(VULNDB)" && rm -rf "$(VULNDB).src"
	@$(STEP) end vulndb

.PHONY: test-vuln
test-vuln: deps-vuln ## govulncheck every Go module against the offline database: fails on reachable vulnerable code
	@for d in $(VULN_MODULES); do echo "--- govulncheck $$d"; \
	  (cd "$$d" && GOWORK=off $(GOVULNCHECK) -db "file://$(VULNDB)" ./...) || exit 1; done
