#!/usr/bin/env bash
# make test-cluster: the clustertest tests matching a pattern on both shapes of the test cluster at once, each
# on a fresh cluster of its own, with the host's canaries planted before either and checked after both are down:
#
#   deploy/k8s/cluster/test-shapes.sh PATTERN
#
# The default shape runs as cluster TEST_CLUSTER_NAME (default mbtest) with the canaries (deploy/k8s/cluster/test.sh
# -canaries: a second cluster killed halfway beside it, the second CANARY rule), the managed shape as cluster
# TEST_CLUSTER_MANAGED (default mbmanaged); neither takes a name of make cluster-up's (moviebag, managed), so a
# contributor's own clusters keep running. Each line either prints is prefixed with its cluster's name.
# Side by side because each spends most of its time waiting for nodes, pods and rollouts; one after the other
# they took about twice as long. The exit status is 1 if either failed or the host was not left as it was.
# Called by deploy/make/testcluster.mk with BIN, GO, IMAGE_TAG, GATEWAY_API_CRDS and PROMETHEUS_OPERATOR_CRDS set.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
TEST="$REPO/deploy/k8s/cluster/test.sh"
CANARY="$REPO/deploy/k8s/cluster/canary.sh"
BIN="${BIN:-$REPO/bin}"
pattern="${1:?usage: $0 PATTERN}"
default_name="${TEST_CLUSTER_NAME:-mbtest}"
managed_name="${TEST_CLUSTER_MANAGED:-mbmanaged}"
canaries="$BIN/canary-$default_name"

# shape NAME SHAPE ARGS...: test.sh ARGS on a cluster NAME of shape SHAPE, its lines prefixed with NAME.
shape() {
  local name="$1" shape="$2"
  shift 2
  CLUSTER_NAME="$name" CLUSTER_SHAPE="$shape" CLUSTER_STATE="" "$TEST" "$@" 2>&1 | sed -u "s/^/$name| /"
}

"$CANARY" remove "$canaries" 2>/dev/null || true
"$CANARY" plant "$canaries"
CANARY_BESIDE="$managed_name" shape "$default_name" "" -canaries "$canaries" "$pattern" &
default_pid=$!
shape "$managed_name" managed "$pattern" &
managed_pid=$!
rc=0
wait "$default_pid" || { rc=1 && printf 'test-cluster: FAILED on cluster %s (the default shape)\n' "$default_name" >&2; }
wait "$managed_pid" || { rc=1 && printf 'test-cluster: FAILED on cluster %s (the managed shape)\n' "$managed_name" >&2; }
# Both clusters are down: the host must be as before either, their tunables and shared directories included.
"$CANARY" check "$canaries" || rc=1
"$CANARY" remove "$canaries"
exit "$rc"
