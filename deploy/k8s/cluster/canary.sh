#!/usr/bin/env bash
# The host's canaries: things of other software that the test cluster must leave alone, and the record of
# the host's network and kernel settings that its `down` must leave as they were.
#
#   canary.sh plant DIR    a `sleep` in cgroups named kubepods-canary (pids and memory, under a parent of
#                          their own), an iptables chain CANARY with one rule; then the record, in DIR
#   canary.sh record DIR NAME   the record again, as NAME (plant's is "before")
#   canary.sh add DIR      a second CANARY rule (while the cluster runs)
#   canary.sh check DIR [NAME]  the process runs in both cgroups, both rules are there, and iptables-save,
#                          ip link, ip netns, nft tables, ipsets and the sysctls are as in the record NAME
#                          (default: before), apart from the second rule; exit 1 with the differences otherwise.
#                          CANARY_BESIDE="NAME..." names clusters that may come and go meanwhile (the other
#                          shape of make test-cluster): lines naming them (NAME-..., NAME^^-CLUSTER) are left
#                          out of both sides
#   canary.sh remove DIR   the canaries gone
#
# make test-cluster plants them before its cluster-up, checks them against a second record after a second
# cluster came and went beside it, and against the first after its cluster-down (deploy/k8s/cluster/test.sh).
# Needs root.
set -euo pipefail

PARENT=moviebag-canary-parent
RULE1=(-s 192.0.2.1/32 -j RETURN)
RULE2=(-s 192.0.2.2/32 -j RETURN)

log() { printf 'canary: %s\n' "$*" >&2; }

# The canary's cgroups: pids and memory under cgroup v1, the one hierarchy under v2.
cgroups() {
  if [[ -d /sys/fs/cgroup/pids && -d /sys/fs/cgroup/memory ]]; then
    echo "/sys/fs/cgroup/pids/$PARENT/kubepods-canary" "/sys/fs/cgroup/memory/$PARENT/kubepods-canary"
  else
    echo "/sys/fs/cgroup/$PARENT/kubepods-canary"
  fi
}

# record DIR: the host's state, as text files to compare.
record() {
  local dir="$1" f
  mkdir -p "$dir"
  # Rules and chains, without counters and comments.
  iptables-save | grep -vE '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//' >"$dir/iptables"
  ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort >"$dir/links"
  ip netns list | sort >"$dir/netns"
  if command -v nft >/dev/null; then nft list tables | sort >"$dir/nft-tables"; else : >"$dir/nft-tables"; fi
  if command -v ipset >/dev/null; then ipset list -n | sort >"$dir/ipsets"; else : >"$dir/ipsets"; fi
  for f in /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/{all,default}/* /proc/sys/net/bridge/* \
    /proc/sys/net/netfilter/nf_conntrack_max /proc/sys/vm/overcommit_memory /proc/sys/vm/panic_on_oom \
    /proc/sys/kernel/panic /proc/sys/kernel/panic_on_oops /proc/sys/kernel/keys/root_max*; do
    if [[ -r "$f" ]]; then echo "${f#/proc/sys/}=$(cat "$f" 2>/dev/null)"; fi
  done >"$dir/sysctls"
}

plant() {
  local dir="$1" cg
  mkdir -p "$dir"
  setsid sleep infinity </dev/null >/dev/null 2>&1 &
  echo "$!" >"$dir/pid"
  for cg in $(cgroups); do
    mkdir -p "$cg"
    echo "$!" >"$cg/cgroup.procs"
  done
  iptables -N CANARY
  iptables -A CANARY "${RULE1[@]}"
  record "$dir/before"
  log "planted: process $(cat "$dir/pid") in $(cgroups), chain CANARY with one rule"
}

add() {
  iptables -A CANARY "${RULE2[@]}"
  touch "$1/added"
  log "a second CANARY rule added"
}

check() {
  local dir="$1" name="${2:-before}" pid cg f side failed=0
  pid="$(cat "$dir/pid")"
  if ! kill -0 "$pid" 2>/dev/null; then log "the process $pid in kubepods-canary was killed"; failed=1; fi
  for cg in $(cgroups); do
    if [[ ! -d "$cg" ]]; then
      log "the cgroup $cg was removed"; failed=1
    elif ! grep -qx "$pid" "$cg/cgroup.procs"; then
      log "the process $pid is no longer in $cg"; failed=1
    fi
  done
  if ! iptables -C CANARY "${RULE1[@]}" 2>/dev/null; then log "the first CANARY rule is gone"; failed=1; fi
  if [[ -f "$dir/added" ]] && ! iptables -C CANARY "${RULE2[@]}" 2>/dev/null; then
    log "the CANARY rule added while the cluster ran is gone"; failed=1
  fi
  record "$dir/after"
  # What was added on purpose is left out of the comparison, and so is what names a cluster of
  # CANARY_BESIDE (every name a cluster takes starts with its own name and a dash).
  local beside=() b
  for b in ${CANARY_BESIDE:-}; do beside+=(-e "(^|[^[:alnum:]])$b-"); done
  for f in iptables links netns nft-tables ipsets sysctls; do
    for side in "$dir/$name" "$dir/after"; do
      grep -vxF -- "-A CANARY ${RULE2[*]}" "$side/$f" |
        if ((${#beside[@]})); then grep -viE "${beside[@]}"; else cat; fi >"$side/$f.cmp" || true
    done
    if ! diff -u "$dir/$name/$f.cmp" "$dir/after/$f.cmp" >&2; then log "$f differs from the record $name (above)"; failed=1; fi
  done
  rm -rf "$dir/after" "$dir/$name"/*.cmp
  if ((failed)); then log "FAILED: the host was not left alone"; return 1; fi
  log "the host was left alone: the process, its cgroups, both rules; iptables, links, netns, nft, ipsets and sysctls as in the record $name${CANARY_BESIDE:+ (but what names ${CANARY_BESIDE})}"
}

remove() {
  local dir="$1" cg
  if [[ -f "$dir/pid" ]]; then kill "$(cat "$dir/pid")" 2>/dev/null || true; fi
  sleep 0.2
  for cg in $(cgroups); do
    if [[ -d "$cg" ]]; then rmdir "$cg" "$(dirname "$cg")" 2>/dev/null || true; fi
  done
  if iptables -n -L CANARY >/dev/null 2>&1; then iptables -F CANARY && iptables -X CANARY; fi
  rm -rf "$dir"
}

usage="usage: $0 plant|add|check|remove DIR, record DIR NAME or check DIR [NAME]"
case "${1:-}:$#" in
  plant:2 | add:2 | check:2 | check:3 | remove:2) "$@" ;;
  record:3) record "$2/$3" ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
