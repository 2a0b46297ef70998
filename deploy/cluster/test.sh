#!/usr/bin/env bash
# Runs the clustertest tests matching a pattern on a fresh cluster, and always takes the cluster down:
#
#   deploy/cluster/test.sh [-canary] PATTERN
#
# The tests get the VAR=value lines cluster-up ends with (its only standard output) in their environment.
# With -canary (make test-cluster) the host's canaries are planted first (deploy/cluster/canary.sh) and
# checked after each `down`: once after an `up` killed halfway (a bare cluster whose nodes run), once after
# the full run, with a second CANARY rule added while the cluster ran.
# Called by deploy/make/testcluster.mk with BIN, GO, IMAGE_TAG and GATEWAY_API_CRDS set.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLUSTER="$REPO/deploy/cluster/cluster.sh"
CANARY="$REPO/deploy/cluster/canary.sh"
BIN="${BIN:-$REPO/bin}"
GO="${GO:-go}"
STATE="${CLUSTER_STATE:-$REPO/.data/cluster}"

canary=""
if [[ "${1:-}" == -canary ]]; then canary="$BIN/canary" && shift; fi
pattern="${1:?usage: $0 [-canary] PATTERN}"

log() { printf 'test-cluster: %s\n' "$*" >&2; }

# interrupted_up: an up killed once its nodes run (with everything it had started still running), then
# down, which must remove all of it.
interrupted_up() {
  log "an up killed halfway, then down"
  if [[ -d "$STATE" ]]; then "$CLUSTER" down; fi
  CLUSTER_ONLY=1 setsid "$CLUSTER" up >/dev/null &
  local pid=$! deadline=$((SECONDS + 600))
  until [[ -f "$STATE/pids/kube-router-n3" ]] || ! kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS > deadline)); then break; fi
    sleep 1
  done
  if [[ ! -f "$STATE/pids/kube-router-n3" ]]; then
    log "FAILED: the up did not get as far as starting its nodes' processes"
    kill -9 -- "-$pid" 2>/dev/null || true
    "$CLUSTER" down || true
    return 1
  fi
  sleep 3
  kill -9 -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  log "up killed; still running: $(ps -o comm= -p "$(cat "$STATE"/pids/* 2>/dev/null | paste -sd,)" 2>/dev/null | sort | uniq -c | xargs)"
  "$CLUSTER" down
}

load_env() { # the VAR=value lines cluster-up printed, exported
  set -a
  # shellcheck disable=SC1090 # written by cluster-up
  . <(grep -E '^(KUBECONFIG|GATEWAY_URL|INGRESS_URL|PROMETHEUS_URL)=' "$BIN/cluster-up.out")
  set +a
}

rc=0
if [[ -n "$canary" ]]; then
  "$CANARY" remove "$canary" 2>/dev/null || true
  "$CANARY" plant "$canary"
  { interrupted_up && "$CANARY" check "$canary"; } || rc=1
fi
if ((rc == 0)); then
  {
    "$CLUSTER" up | tee "$BIN/cluster-up.out" &&
      if [[ -n "$canary" ]]; then "$CANARY" add "$canary"; fi &&
      load_env &&
      (cd "$REPO/deploy/cluster" && GOWORK=off "$GO" test -count=1 -timeout 45m -v -run "$pattern" ./clustertest/...)
  } || rc=$?
  "$CLUSTER" down || rc=1
  if [[ -n "$canary" ]]; then "$CANARY" check "$canary" || rc=1; fi
fi
if [[ -n "$canary" ]]; then "$CANARY" remove "$canary"; fi
exit "$rc"
