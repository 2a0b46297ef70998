# Observability: the Grafana dashboard and the Prometheus rules, checked statically and on real data.
# Canonical files: helm/moviebag/files/{grafana,prometheus}/ (linked from deploy/grafana and deploy/prometheus).
# deploy/observability is its own Go module, outside go.work (GOWORK=off): the Prometheus and Grafana SDK
# dependencies stay out of the services' build.

OBS_MODULE     := deploy/observability
OBS_RULES      := deploy/prometheus/moviebag-rules.yaml
OBS_RULE_TESTS  = $(sort $(wildcard deploy/prometheus/tests/*.yaml))
# apt-get as root, or through sudo (CI runners).
OBS_SUDO       := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo)

DEPS_TARGETS += deps-observability
APT_TARGETS += deps-observability-apt
TEST_EARLY += test-observability-static
TEST_NEEDS_test-observability-static := deps-observability
# test-observability starts the local stack on the default ports (8080, 8081, 8082, 9091, 9092; override with
# GATEWAY_ADDR, AUTH_ADDR, AUTH_ADMIN_ADDR, MOVIES_ADDR, MOVIES_ADMIN_ADDR) and refuses to run if they are taken.
TEST_TARGETS += test-observability-static test-observability

.PHONY: deps-observability deps-observability-apt
deps-observability: deps-observability-apt ## Debian's prometheus package (prometheus, promtool) when missing, and the observability module
	cd $(OBS_MODULE) && GOWORK=off $(GO) mod download

deps-observability-apt:
	@if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then \
	  echo "installing Debian package prometheus (promtool, prometheus)"; \
	  $(OBS_SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(OBS_SUDO) apt-get install -y -qq --no-install-recommends \
	    -o DPkg::Lock::Timeout=300 prometheus; \
	  echo "stopping and disabling the prometheus daemon the package enables (the tests start their own)"; \
	  if [ -d /run/systemd/system ]; then \
	    $(OBS_SUDO) systemctl disable --now prometheus.service >/dev/null 2>&1 || true; \
	  elif [ -x /etc/init.d/prometheus ]; then \
	    $(OBS_SUDO) /etc/init.d/prometheus stop >/dev/null 2>&1 || true; \
	    $(OBS_SUDO) update-rc.d prometheus disable >/dev/null 2>&1 || true; \
	  fi; \
	fi

.PHONY: test-observability-static
test-observability-static: ## promtool check/test rules; dashboard and rule checks in Go (no stack needed)
	@command -v promtool >/dev/null || { echo "promtool is not on PATH: run 'make deps' (Debian package prometheus)"; exit 1; }
	promtool check rules $(OBS_RULES)
	promtool test rules $(OBS_RULE_TESTS)
	cd $(OBS_MODULE) && GOWORK=off $(GO) test -count=1 -skip '^TestLivePrometheus$$' ./...

.PHONY: test-observability
test-observability: ## start the stack, prove every dashboard query and rule against a real Prometheus, stop it
	@command -v prometheus >/dev/null || { echo "prometheus is not on PATH: run 'make deps' (Debian package prometheus)"; exit 1; }
	$(GO) build -o $(BIN)/moviebag-local ./deploy/local/cmd/moviebag-local
	GO=$(GO) $(OBS_MODULE)/live.sh
