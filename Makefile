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
GOTESTFLAGS ?= -race -count=1 -timeout 20m

# Later parts (Kubernetes, observability, benchmarks) add their targets to these
# lists from deploy/make/*.mk, so `make deps` and `make test` stay the one entry point.
DEPS_TARGETS := deps-go
TEST_TARGETS := test-go test-fuzz

# Fuzz targets as module-dir:package:FuzzName. `make test` runs each briefly
# (FUZZTIME_SHORT); `make fuzz` runs each for FUZZTIME.
FUZZ_TARGETS := libs:./request:FuzzDecode libs:./apierr:FuzzEnvelope libs:./token:FuzzVerify \
	services/movies:./app:FuzzParseMovieID
FUZZTIME_SHORT ?= 3s
FUZZTIME ?= 2m
-include $(sort $(wildcard deploy/make/*.mk))

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: run
run: ## the whole stack on 127.0.0.1:8080 (starts FerretDB and Redis unless MONGO_URI / REDIS_URL are set)
	$(GO) build -o $(BIN)/moviebag-local ./deploy/local/cmd/moviebag-local
	$(BIN)/moviebag-local

.PHONY: build
build: ## build both service binaries into bin/
	$(GO) build -trimpath -o $(BIN)/auth ./services/auth
	$(GO) build -trimpath -o $(BIN)/movies ./services/movies

.PHONY: deps
deps: $(DEPS_TARGETS) ## install what the tests need (Debian packages, pinned tools in bin/)

.PHONY: deps-go
deps-go:
	@for d in $(MODULES); do (cd "$$d" && $(GO) mod download); done

.PHONY: test
test: $(TEST_TARGETS) ## every test: unit, integration (FerretDB + redis-server on free ports), end-to-end, charts

.PHONY: test-go
test-go: ## go vet and go test -race in every module, with FerretDB and redis-server started on free ports
	@command -v redis-server >/dev/null || { echo "redis-server is not on PATH: run 'make deps' (Debian package redis-server)"; exit 1; }
	@for d in $(MODULES); do echo "--- go vet $$d"; (cd "$$d" && $(GO) vet ./...); done
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
	gofmt -w $(MODULES)

.PHONY: tidy
tidy: ## go mod tidy in every module, then go work sync
	@for d in $(MODULES); do (cd "$$d" && $(GO) mod tidy); done
	$(GO) work sync
