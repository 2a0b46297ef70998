# The API contract: api/openapi.yaml (OpenAPI 3.1). Redocly CLI, pinned in api/package.json and
# api/package-lock.json, is installed by `npm ci` into the git-ignored api/node_modules; it lints the
# spec (api/redocly.yaml: every problem is an error) and renders api/reference.html, which the local
# gateway embeds and serves at /docs. The Go side: libs/testkit checks every answer the tests read against
# the spec and records it; test-api-contract runs test-go so, then checks that every operation and every
# status the spec documents was answered by some test and that no answer broke the spec.

API_DIR       := api
API_NPM_DIR   := $(API_DIR)/node_modules
REDOCLY       := $(CURDIR)/$(API_NPM_DIR)/.bin/redocly
# Redocly CLI sends no usage data, and npm asks no registry about newer versions of itself.
API_NPM_ENV   := REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1 \
	npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
API_DOCS_ARGS := build-docs openapi.yaml --config redocly.yaml --inlineBundle --title "moviebag API"
# apt-get as root, or through sudo (CI runners).
API_SUDO      := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo)

API_CONTRACT_DIR := $(CURDIR)/build/contract

DEPS_TARGETS += deps-api
APT_TARGETS += deps-api-apt
TEST_EARLY += lint-api test-api-docs
TEST_NEEDS_lint-api := deps-api
TEST_NEEDS_test-api-docs := deps-api
# test-api-contract runs test-go itself (with the answers recorded), so it takes test-go's place.
TEST_TARGETS := lint-api test-api-docs $(patsubst test-go,test-api-contract,$(TEST_TARGETS))

.PHONY: deps-api deps-api-apt
deps-api: deps-api-apt $(API_NPM_DIR)/.package-lock.json ## Redocly CLI (npm ci, pinned) and Debian's chromium when missing

deps-api-apt:
	@if ! command -v chromium >/dev/null; then \
	  echo "installing Debian package chromium (the reference page test opens the page in it)"; \
	  $(API_SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(API_SUDO) apt-get install -y -qq --no-install-recommends \
	    -o DPkg::Lock::Timeout=300 chromium fonts-dejavu-core; \
	fi

# npm ci only when the lockfile changed since the last install.
$(API_NPM_DIR)/.package-lock.json: $(API_DIR)/package.json $(API_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is not on PATH (Debian package npm)"; exit 1; }
	@$(STEP) begin npm-ci
	cd $(API_DIR) && $(API_NPM_ENV) npm ci --no-audit --no-fund --loglevel=error
	@touch $@
	@$(STEP) end npm-ci

.PHONY: lint-api
lint-api: $(API_NPM_DIR)/.package-lock.json ## lint api/openapi.yaml with Redocly CLI (0 errors, 0 warnings)
	cd $(API_DIR) && $(API_NPM_ENV) $(REDOCLY) lint --config redocly.yaml --format=codeframe --max-problems=1000

.PHONY: docs
docs: $(API_NPM_DIR)/.package-lock.json ## render api/openapi.yaml into one self-contained page, api/reference.html
	cd $(API_DIR) && $(API_NPM_ENV) $(REDOCLY) $(API_DOCS_ARGS) -o reference.html

.PHONY: test-api-docs
test-api-docs: $(API_NPM_DIR)/.package-lock.json ## api/reference.html is what `make docs` renders from the spec now
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	(cd $(API_DIR) && $(API_NPM_ENV) $(REDOCLY) $(API_DOCS_ARGS) -o "$$tmp/reference.html" >/dev/null) && \
	cmp -s "$$tmp/reference.html" $(API_DIR)/reference.html || \
	{ echo "api/reference.html is out of date with api/openapi.yaml: run 'make docs' and commit it"; exit 1; }
	@echo "api/reference.html is up to date"

.PHONY: test-api-contract
test-api-contract: ## test-go with every answer checked against api/openapi.yaml and recorded; then every operation and status answered
	rm -rf $(API_CONTRACT_DIR) && mkdir -p $(API_CONTRACT_DIR)
	MOVIEBAG_CONTRACT_DIR=$(API_CONTRACT_DIR) $(MAKE) --no-print-directory test-go
	cd $(API_DIR) && $(GO) vet -tags contractcoverage ./...
	cd $(API_DIR) && MOVIEBAG_CONTRACT_DIR=$(API_CONTRACT_DIR) $(GO) test -count=1 -tags contractcoverage -run '^TestEveryOperationAndStatusExercised$$' .
