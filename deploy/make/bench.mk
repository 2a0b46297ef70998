# Benchmarks: `make bench` (the services under load against their ceilings, by vegeta and by wrk, about 10 minutes) and
# `make bench-go` (Go benchmarks of the hot paths). Neither is part of `make test`.
# bench/ is its own Go module, outside go.work (GOWORK=off): vegeta and FerretDB's PostgreSQL
# backend stay out of the services' build. See docs/benchmarks.md.

BENCH_MODULE := bench
# Extra flags for the driver, e.g. BENCH_FLAGS='-duration 10s -concurrency 16,64'; every flag also reads an
# environment variable (BENCH_DURATION, BENCH_CONCURRENCY, BENCH_MOVIES, BENCH_BACKEND, BENCH_POSTGRES_URL, ...).
BENCH_FLAGS ?=
# The packages with Go benchmarks (*_bench_test.go): in libs, and the local gateway's in deploy/local; what
# to pass to go test (the release's build tags, as the services are built).
BENCH_GO_PKGS  ?= ./apierr ./request ./token ./server
BENCH_GO_LOCAL ?= ./gateway
BENCH_GO_FLAGS ?= -run '^$$' -bench . -benchmem -count 1 -tags $(RELEASE_TAGS)
# apt-get as root, or through sudo (CI runners).
BENCH_SUDO     := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo)

DEPS_TARGETS += deps-bench
APT_TARGETS += deps-bench-apt

.PHONY: deps-bench deps-bench-apt
deps-bench: deps-bench-apt ## wrk (Debian package; make bench's second load generator) when missing, and the bench module
	cd $(BENCH_MODULE) && GOWORK=off $(GO) mod download

deps-bench-apt:
	@if ! command -v wrk >/dev/null; then \
	  echo "installing Debian package wrk (make bench's second load generator)"; \
	  $(BENCH_SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(BENCH_SUDO) apt-get install -y -qq --no-install-recommends \
	    -o DPkg::Lock::Timeout=300 wrk || echo "wrk not installed: make bench gives vegeta's figures only"; \
	fi

.PHONY: bench
bench: ## load-test release builds of both services against the framework and storage ceilings, by vegeta and wrk; table in bench/results/
	@command -v redis-server >/dev/null || { echo "redis-server is not on PATH: run 'make deps' (Debian package redis-server)"; exit 1; }
	@echo "bench: [1/2] vet and build the driver (module $(BENCH_MODULE), GOWORK=off)"
	cd $(BENCH_MODULE) && GOWORK=off $(GO) vet ./...
	cd $(BENCH_MODULE) && GOWORK=off $(GO) build -o $(BIN)/moviebag-bench ./cmd/bench
	@echo "bench: [2/2] run: build the services, start storage, services, gateway and ceilings, seed, load (one line per step;"
	@echo "       the table goes to $(BENCH_MODULE)/results/, the last three lines are the get-movie, create-invalid and list ratios)"
	cd $(BENCH_MODULE) && $(BIN)/moviebag-bench -repo $(CURDIR) $(BENCH_FLAGS)

.PHONY: bench-soak
bench-soak: ## 10-minute fixed-rate soak (BENCH_SOAK_RATE req/s, default 150): VmRSS, heap, goroutines every 10 s; table + SVG in bench/results/
	@command -v redis-server >/dev/null || { echo "redis-server is not on PATH: run 'make deps' (Debian package redis-server)"; exit 1; }
	cd $(BENCH_MODULE) && GOWORK=off $(GO) build -o $(BIN)/moviebag-bench ./cmd/bench
	cd $(BENCH_MODULE) && $(BIN)/moviebag-bench -repo $(CURDIR) -soak $${BENCH_SOAK:-10m} $(BENCH_FLAGS)

.PHONY: bench-go
bench-go: ## Go benchmarks of the hot paths with -benchmem (each middleware, the storage-free paths, envelope, strict decoding, token check, gateway)
	@command -v redis-server >/dev/null || { echo "redis-server is not on PATH: run 'make deps' (Debian package redis-server)"; exit 1; }
	@echo "bench-go: Go benchmarks in libs ($(BENCH_GO_PKGS)) with FerretDB and redis-server from testdeps"
	$(GO) run ./deploy/local/cmd/testdeps -- $(GO) test -C libs $(BENCH_GO_FLAGS) $(BENCH_GO_PKGS)
	@echo "bench-go: the local gateway's benchmark (deploy/local $(BENCH_GO_LOCAL)), against a bare upstream on loopback"
	$(GO) test -C deploy/local $(BENCH_GO_FLAGS) $(BENCH_GO_LOCAL)
