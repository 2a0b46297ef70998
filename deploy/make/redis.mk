# Redis for the tests: redis-server (one server, and the 3-master cluster testdeps assembles) and
# redis-sentinel (the Sentinel-managed primary testdeps fails over), both Debian packages.

REDIS_SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo)

DEPS_TARGETS += deps-redis
APT_TARGETS += deps-redis

.PHONY: deps-redis
deps-redis: ## redis-server and redis-sentinel (Debian packages) when missing
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-sentinel >/dev/null || missing="$$missing redis-sentinel"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(REDIS_SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(REDIS_SUDO) apt-get install -y -qq --no-install-recommends \
	    -o DPkg::Lock::Timeout=300 $$missing; \
	fi
