#!/usr/bin/env bash
# Runs the clustertest tests matching a pattern on a fresh cluster, and always takes the cluster down:
#
#   deploy/k8s/cluster/test.sh [-canary | -canaries DIR] PATTERN
#
# The tests get the VAR=value lines cluster-up ends with (its only standard output) in their environment,
# and CLUSTER_STATE. With -canary the host's canaries are planted first (deploy/k8s/cluster/canary.sh); once
# the cluster is up, a second cluster of another name is brought up beside it and killed once its nodes run,
# then taken down: the host must be as it was before that second cluster (this one's processes, namespaces,
# bridge, rules and tunables included) and this cluster's nodes still Ready. A second CANARY rule is then
# added, the tests run, and after this cluster's `down` the host must be as it was before any of it.
# -canaries DIR does the same with canaries its caller planted in DIR and checks after every cluster of its
# own is down (deploy/k8s/cluster/test-shapes.sh): the second cluster and the second rule, not the last check.
# CANARY_BESIDE names clusters that run meanwhile (canary.sh).
# Called by deploy/make/testcluster.mk with BIN, GO, IMAGE_TAG and GATEWAY_API_CRDS set; CLUSTER_NAME as
# cluster.sh takes it.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
CLUSTER="$REPO/deploy/k8s/cluster/cluster.sh"
CANARY="$REPO/deploy/k8s/cluster/canary.sh"
BIN="${BIN:-$REPO/bin}"
GO="${GO:-go}"
NAME="$("$CLUSTER" name)"

canary="" own_canary=""
case "${1:-}" in
  -canary) canary="$BIN/canary-$NAME" own_canary=1 && shift ;;
  -canaries) canary="${2:?usage: $0 -canaries DIR PATTERN}" && shift 2 ;;
esac
pattern="${1:?usage: $0 [-canary | -canaries DIR] PATTERN}"

log() { printf 'test-cluster: %s\n' "$*" >&2; }

# interrupted_up: an up of the cluster CLUSTER_NAME killed once its nodes run (with everything it had
# started still running), then down, which must remove all of it.
interrupted_up() {
  local state
  state="$("$CLUSTER" state)"
  log "an up of cluster $CLUSTER_NAME killed halfway, then down"
  if [[ -d "$state" ]]; then "$CLUSTER" down; fi
  CLUSTER_ONLY=1 setsid "$CLUSTER" up >/dev/null &
  local pid=$! deadline=$((SECONDS + 600))
  until [[ -f "$state/pids/kube-router-n3" ]] || ! kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS > deadline)); then break; fi
    sleep 1
  done
  if [[ ! -f "$state/pids/kube-router-n3" ]]; then
    log "FAILED: the up did not get as far as starting its nodes' processes"
    kill -9 -- "-$pid" 2>/dev/null || true
    "$CLUSTER" down || true
    return 1
  fi
  sleep 3
  kill -9 -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  log "up killed; still running: $(ps -o comm= -p "$(cat "$state"/pids/* 2>/dev/null | paste -sd,)" 2>/dev/null | sort | uniq -c | xargs)"
  "$CLUSTER" down
}

# beside: a second cluster next to this one, killed halfway and taken down; the host as before it, and
# this cluster's nodes still Ready.
beside() {
  local other="${NAME:0:8}b"
  if [[ "$other" == "$NAME" ]]; then other="${NAME:0:8}c"; fi
  "$CANARY" record "$canary" beside
  CLUSTER_NAME="$other" CLUSTER_STATE="" interrupted_up || return 1
  "$CANARY" check "$canary" beside || return 1
  local nodes
  nodes="$(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}')"
  if grep -qv ' True$' <<<"$nodes"; then
    log "FAILED: after the down of cluster $other, the nodes of $NAME are not all Ready:"$'\n'"$nodes"
    return 1
  fi
  log "cluster $other came and went beside $NAME, whose nodes are all Ready"
}

load_env() { # load_env FILE: the VAR=value lines cluster-up printed into FILE, exported
  set -a
  # shellcheck disable=SC1090 # written by cluster-up
  . <(grep -E '^(KUBECONFIG|GATEWAY_URL|INGRESS_URL|PROMETHEUS_URL)=' "$1")
  set +a
}

rc=0
out="$(mktemp)"
if [[ -n "$own_canary" ]]; then
  "$CANARY" remove "$canary" 2>/dev/null || true
  "$CANARY" plant "$canary"
fi
state="$("$CLUSTER" state)"
{
  "$CLUSTER" up | tee "$out" &&
    load_env "$out" &&
    if [[ -n "$canary" ]]; then beside && "$CANARY" add "$canary"; fi &&
    (cd "$REPO/deploy/k8s/cluster" && CLUSTER_STATE="$state" GOWORK=off "$GO" test -count=1 -timeout 45m -v -run "$pattern" ./clustertest/...)
} || rc=$?
rm -f "$out"
"$CLUSTER" down || rc=1
if [[ -n "$own_canary" ]]; then
  "$CANARY" check "$canary" || rc=1
  "$CANARY" remove "$canary"
fi
exit "$rc"
