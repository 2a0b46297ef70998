# moviebag: the movie-bag API as two Go services. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO       ?= go
# Every build and test runs on this Go release (it carries the standard library's security fixes);
# the go command downloads it through the module proxy on first use. Anyone calling `go` directly
# gets the same with `export GOTOOLCHAIN=go1.27.3`.
export GOTOOLCHAIN := go1.27.3
BIN      := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

# Every Go module of the workspace (go.work), one directory per line.
MODULES = $(shell $(GO) list -m -f '{{.Dir}}')
# Every Go module of the repository, in go.work or not (bench, deploy/k8s/render,
# deploy/observability are built on their own, with GOWORK=off).
ALL_MODULES = $(patsubst %/go.mod,%,$(shell git ls-files '*go.mod' 2>/dev/null || find . -name go.mod -not -path './build/*'))
# Build tags of every service build (build, run, images, bench). validator_novalidatefn leaves out
# go-playground/validator's validateFn check (unused here): its reflect MethodByName makes the linker keep
# every exported method of every reachable type, go-redis's whole command set among them. Without it a
# service binary is 29 MB instead of 18, and 5 MiB more of it is resident. check-dce keeps it that way.
RELEASE_TAGS := validator_novalidatefn
# The tests build with the release's tags, so what they test is what ships. build-modules compiles the go.work
# modules with the same build flags (GOTESTBUILDFLAGS), so that the tests find every package in the build cache.
GOTESTBUILDFLAGS := -race -tags $(RELEASE_TAGS)
GOTESTFLAGS ?= $(GOTESTBUILDFLAGS) -count=1 -timeout 20m

# Later parts (Kubernetes, observability, benchmarks) add their targets to these
# lists from deploy/make/*.mk, so `make deps` and `make test` stay the one entry point.
DEPS_TARGETS := deps-go
# The Debian packages they install, one apt-get at a time before the builds (see deps).
APT_TARGETS := deps-go-apt
TEST_TARGETS := build-modules check-dce lint test-go test-fuzz
# The tests that run beside the tool builds (see test), each after its TEST_NEEDS_<target>.
TEST_EARLY := build-modules check-dce lint test-fuzz
# The tests of the second chain, beside the first (see test), in this order: each after the one before it and
# its TEST_NEEDS_<target> (every build when it names none).
TEST_BESIDE :=
# The pinned linter of lint (below): make deps builds it once into bin/, so make test can run it.
DEPS_TARGETS += deps-lint

# Fuzz targets as module-dir:package:FuzzName. `make test` runs each briefly
# (FUZZTIME_SHORT); `make fuzz` runs each for FUZZTIME.
FUZZ_TARGETS := libs:./request:FuzzDecode libs:./apierr:FuzzEnvelope libs:./token:FuzzVerify \
	services/movies:./app:FuzzParseMovieID services/auth:./internal/opaque:FuzzParse \
	services/auth:./internal/sessions:FuzzParseToken
FUZZTIME_SHORT ?= 3s
FUZZTIME ?= 2m
-include $(sort $(wildcard deploy/make/*.mk))

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: run
run: ## the whole stack on 127.0.0.1:8080 (starts FerretDB and Redis unless MONGO_URI / REDIS_URL are set)
	$(GO) build -tags $(RELEASE_TAGS) -o $(BIN)/moviebag-local ./deploy/local/cmd/moviebag-local
	$(BIN)/moviebag-local

.PHONY: build
build: ## build both service binaries into bin/
	$(GO) build -trimpath -tags $(RELEASE_TAGS) -o $(BIN)/auth ./services/auth
	$(GO) build -trimpath -tags $(RELEASE_TAGS) -o $(BIN)/movies ./services/movies

.PHONY: check-dce
check-dce: ## the linker's dead-code elimination stays on in both services (no reflect MethodByName reachable)
	@for s in auth movies; do \
	  deps=$$(cd services/$$s && GOWORK=off CGO_ENABLED=0 $(GO) build -trimpath -tags $(RELEASE_TAGS) -ldflags=-dumpdep -o /dev/null . 2>&1) \
	    || { echo "$$deps" | grep -v -- ' -> ' >&2; exit 1; }; \
	  found=$$(echo "$$deps" | grep -o '^[^ ]* <ReflectMethod>' | sort -u || true); \
	  if [ -n "$$found" ]; then \
	    echo "check-dce: $$s reaches a reflect Method/MethodByName call, so the linker keeps every exported method"; \
	    echo "of every type (the binary grows by about 10 MB, and its resident memory with it). Reached in:"; \
	    echo "$$found"; echo "Who calls it: cd services/$$s && go build -ldflags=-dumpdep . 2>&1 | grep -- '-> <function>'"; \
	    exit 1; \
	  fi; \
	  echo "check-dce: $$s keeps dead-code elimination"; \
	done

# Where the time of a run goes: every step of make deps and make test prints "step NAME: M min S s" when it
# ends, and the top-level make deps / make test ends with the table of them (build/steps/table).
export STEP_DIR := $(CURDIR)/build/steps
STEP := $(CURDIR)/deploy/make/step
step_top = $(filter 0,$(MAKELEVEL))

# make deps installs the Debian packages first, one apt-get at a time (APT_TARGETS), then builds the tools of
# DEPS_TARGETS side by side (DEPS_JOBS at once): while one build downloads modules or links (one core), another
# compiles. The longest build (Kubernetes) starts first.
DEPS_JOBS ?= 3
DEPS_FIRST ?=
.PHONY: deps
deps: ## install what the tests need (Debian packages, pinned tools in bin/)
	@$(if $(step_top),$(STEP) reset)
	@$(STEP) run deps-apt $(MAKE) --no-print-directory $(APT_TARGETS)
	@$(STEP) run deps-builds $(MAKE) --no-print-directory -j$(DEPS_JOBS) --output-sync=line $(DEPS_FIRST) $(DEPS_TARGETS)
	@$(if $(step_top),$(STEP) table)

# apt-get as root, or through sudo (CI runners).
SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo)

# deps-go is quiet and quick when everything is there: the module cache is
# asked first with the network off, and only what is missing is fetched.
.PHONY: deps-go deps-go-apt
deps-go-apt:
	@command -v redis-server >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "redis-server is not on PATH: install it with your package manager"; exit 1; }; \
	  echo "installing Debian package redis-server (about a minute)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq -o DPkg::Lock::Timeout=300 redis-server; }

deps-go: deps-go-apt
	@$(STEP) begin $@
	@for d in $(ALL_MODULES); do \
	  (cd "$$d" && GOWORK=off GOPROXY=off GOFLAGS=-mod=mod $(GO) mod download >/dev/null 2>&1) || { \
	    echo "downloading the Go modules of $$d (first run: up to a few minutes)"; \
	    (cd "$$d" && GOWORK=off $(GO) mod download) || exit 1; }; done
	@$(STEP) end $@

# make test: the Debian packages (APT_TARGETS), then one make -j$(DEPS_JOBS) of the tool builds of make deps and
# the tests (test-steps, at the end of this file). The tests run in two chains, one test at a time in each. The
# first: those of TEST_EARLY (compile and static checks) each as soon as the tools it names in
# TEST_NEEDS_<target> are built, beside the builds still running on a cold machine; then every other test
# (integration, the live stack: they take their own time and load) after every build, in TEST_TARGETS order.
# The second, TEST_BESIDE, in its own order: the test clusters (which mostly wait) as soon as their tools are
# built, then the tests listed after them. A target added to TEST_TARGETS waits for the builds in the first chain
# unless it is added to TEST_EARLY or TEST_BESIDE (with its needs). A build's output shows when its recipe line
# ends (make --output-sync=line); a test's streams as it runs (a TEST_BESIDE test's lines prefixed with its name).
.PHONY: test
test: ## every test (installs what it lacks first, as make deps): build, lint (go vet's analyzers among them), unit, integration (FerretDB + redis-server on free ports), end-to-end, charts
	@$(if $(step_top),$(STEP) reset)
	@$(STEP) run deps-apt $(MAKE) --no-print-directory $(APT_TARGETS)
	@$(MAKE) --no-print-directory -j$(DEPS_JOBS) --output-sync=line test-steps || { $(STEP) table; exit 1; }
	@$(if $(step_top),$(STEP) table)

.PHONY: build-modules vet
# The modules that build upstream tools (deploy/k8s/cluster/kube: all of Kubernetes; deploy/tools: helm, Prometheus,
# CoreDNS, kube-router) are small mains over thousands of packages: vetting or linting them would vet upstream
# code (tens of minutes). The builds of `make deps` compile them.
UPSTREAM_TOOL_MODULES := deploy/k8s/cluster/kube deploy/tools
VET_MODULES = $(filter-out $(UPSTREAM_TOOL_MODULES),$(ALL_MODULES))
# go vet's analyzers run in lint (golangci-lint's govet, every analyzer of go vet's suite named in .golangci.yml),
# so make test runs no go vet besides: both compute the analyzers' facts over every dependency of every module.
# Each module builds on its own (GOWORK=off, as its image or tool build does); those of go.work with the flags their
# tests build with (GOTESTBUILDFLAGS: test-go then compiles only the test files, not every package a second time),
# the others as their tests build them (plain go test).
WORK_MODULES = $(patsubst $(CURDIR)/%,%,$(MODULES))
build-modules: ## go build in every Go module of the repository, in go.work or not (but the upstream tool builds)
	@for d in $(VET_MODULES); do \
	  flags=; case " $(WORK_MODULES) " in *" $$d "*) flags="$(GOTESTBUILDFLAGS)";; esac; \
	  echo "--- go build $${flags:+$$flags }$$d"; (cd "$$d" && GOWORK=off $(GO) build $$flags ./...) || exit 1; done

# The linter CI runs, pinned (the workflow's GOLANGCI_LINT_VERSION is the same).
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT := $(BIN)/golangci-lint

.PHONY: deps-lint
deps-lint: $(GOLANGCI_LINT)

$(GOLANGCI_LINT):
	@echo "building golangci-lint $(GOLANGCI_LINT_VERSION) into bin/ (first run only: about 3 minutes)"
	@$(STEP) begin golangci-lint
	GOBIN=$(BIN) GOWORK=off $(GO) install -ldflags '-s -w' github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	@$(STEP) end golangci-lint

TEST_NEEDS_lint := $(GOLANGCI_LINT)

# The mail server of the Go tests (testdeps starts it; deploy/local/devstore.MailpitBinary): built here by make
# deps, beside the other builds, rather than by the first test run. The version is deploy/mailpit's go.mod.
MAILPIT := $(BIN)/mailpit
DEPS_TARGETS += deps-mailpit
.PHONY: deps-mailpit
deps-mailpit: $(MAILPIT)
bin/mailpit: $(MAILPIT)
# Built as the cluster's mailpit image builds it (static: CGO_ENABLED=0), so that its SQLite (modernc.org, a few
# minutes of compiling) compiles once for both.
$(MAILPIT): deploy/mailpit/go.mod deploy/mailpit/go.sum
	@$(STEP) begin mailpit
	GOWORK=off CGO_ENABLED=0 $(GO) build -C deploy/mailpit -trimpath -ldflags '-s -w' -o $@ github.com/axllent/mailpit
	@$(STEP) end mailpit
.PHONY: lint
# golangci-lint skips the upstream tool builds (VET_MODULES, above). Its settings: .golangci.yml.
lint: $(GOLANGCI_LINT) ## gofmt every Go module, golangci-lint every one but the upstream tool builds
	@unformatted="$$(gofmt -l $(ALL_MODULES))"; if [ -n "$$unformatted" ]; then echo "gofmt -w needed on:"; echo "$$unformatted"; exit 1; fi
	@for d in $(VET_MODULES); do echo "--- golangci-lint $$d"; (cd "$$d" && GOWORK=off $(GOLANGCI_LINT) run ./...) || exit 1; done

vet: $(GOLANGCI_LINT) ## go vet's analyzers alone in every module (golangci-lint's govet, as lint runs them)
	@for d in $(VET_MODULES); do echo "--- govet $$d"; \
	  (cd "$$d" && GOWORK=off $(GOLANGCI_LINT) run --enable-only govet ./...) || exit 1; done

.PHONY: test-go
test-go: ## go test -race in every go.work module, with FerretDB and redis-server started on free ports
	@command -v redis-server >/dev/null || { echo "redis-server is not on PATH: run 'make deps' (Debian package redis-server)"; exit 1; }
	@echo "--- starting FerretDB and redis-server on free ports, then go test -race in every module (about 5 minutes)"
	$(GO) run ./deploy/local/cmd/testdeps -- $(MAKE) --no-print-directory test-go-modules

.PHONY: test-go-modules
test-go-modules:
	@for d in $(MODULES); do echo "--- go test $$d"; (cd "$$d" && $(GO) test $(GOTESTFLAGS) ./...); done

.PHONY: test-fuzz
test-fuzz: ## a few seconds of every fuzz target (new crashers land in testdata/fuzz)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_SHORT)

.PHONY: fuzz
fuzz: ## every fuzz target for FUZZTIME (default 2m) each
	@for t in $(FUZZ_TARGETS); do IFS=: read -r dir pkg name <<< "$$t"; \
	  echo "--- fuzz $$dir $$pkg $$name for $(FUZZTIME)"; \
	  (cd "$$dir" && $(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) "$$pkg") || exit 1; done

.PHONY: fmt
fmt: ## gofmt every module
	gofmt -w $(ALL_MODULES)

.PHONY: tidy
tidy: ## go mod tidy in every module, then go work sync
	@for d in $(MODULES); do (cd "$$d" && $(GO) mod tidy); done
	$(GO) work sync

# The tests of make test in the order they run (see test): TEST_EARLY first, each after its TEST_NEEDS_<target>;
# then the rest after every build of make deps. step-<target> runs <target> in a make of its own, timed, after
# the step before it. The tests of TEST_BESIDE are a second chain beside that one, in the order they are listed:
# each after the one before it and after its TEST_NEEDS_<target> (every build when it names none), each line of
# its output prefixed with its name.
TEST_LATE = $(filter-out $(TEST_EARLY) $(TEST_BESIDE),$(TEST_TARGETS))
TEST_ORDER = $(filter-out $(TEST_BESIDE),$(filter $(TEST_TARGETS),$(TEST_EARLY))) $(TEST_LATE)
TEST_LANES = $(filter $(TEST_TARGETS),$(TEST_BESIDE))
define test_step
.PHONY: step-$(1)
step-$(1): $$(if $$(filter $(1),$$(TEST_LATE)),$$(DEPS_FIRST) $$(DEPS_TARGETS),$$(TEST_NEEDS_$(1))) $(if $(2),| step-$(2))
	@$$(STEP) run $(1) $$(MAKE) --no-print-directory --output-sync=none $(1)
endef
define lane_step
.PHONY: step-$(1)
step-$(1): $$(or $$(TEST_NEEDS_$(1)),$$(DEPS_FIRST) $$(DEPS_TARGETS)) $(if $(2),| step-$(2))
	@$$(STEP) lane $(1) $$(MAKE) --no-print-directory --output-sync=none $(1)
endef
test_prev :=
$(foreach t,$(TEST_ORDER),$(eval $(call test_step,$(t),$(test_prev)))$(eval test_prev := $(t)))
lane_prev :=
$(foreach t,$(TEST_LANES),$(eval $(call lane_step,$(t),$(lane_prev)))$(eval lane_prev := $(t)))

.PHONY: test-steps
test-steps: $(DEPS_FIRST) step-$(firstword $(TEST_ORDER)) $(DEPS_TARGETS) $(addprefix step-,$(TEST_ORDER) $(TEST_LANES))
