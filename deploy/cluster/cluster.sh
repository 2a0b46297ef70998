#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, made of host processes as Kubernetes' own
# hack/local-up-cluster.sh runs them, with moviebag's umbrella chart installed:
#
#   deploy/cluster/cluster.sh up     # etcd, control plane, containerd + kubelet, kube-proxy, kube-router
#                                    # (NetworkPolicy), CoreDNS, a StorageClass, Traefik (Gateway API and
#                                    # Ingress), then the chart and a Prometheus scraping it; its only
#                                    # standard output is its last lines: KUBECONFIG=, GATEWAY_URL=,
#                                    # INGRESS_URL= and PROMETHEUS_URL= (missing if Prometheus did not come
#                                    # up: the warning above it says why)
#   deploy/cluster/cluster.sh down   # removes all of it and restores what it changed; idempotent
#
# CLUSTER_ONLY=1 ... up stops before the chart (and before waiting for Traefik): a bare cluster.
#
# Called by `make cluster-up` / `make cluster-down`, which first build every binary and image it runs
# (deploy/make/cluster.mk). Needs root, cgroup v1 or v2, iptables and Debian's containerd, runc, CNI
# plugins and etcd. One cluster per machine: the bridge, iptables chains and runtime directory have
# fixed names.
#
# What it changes outside the repository's bin/ and .data/: processes; a bridge and the pods' veths and
# network namespaces; iptables rules and ipsets; a few sysctls (ip_forward and bridge netfilter for the
# CNI bridge, kube-proxy and kubelet's kernel tunables); the runtime directory /tmp/moviebag-cluster;
# cgroups under kubepods; /var/lib/cni and /var/log/containers entries. `up` records each of them
# first, and `down` restores the record and then checks that nothing of the cluster is left.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${BIN:-$REPO/bin}"
STATE="${CLUSTER_STATE:-$REPO/.data/cluster}"   # data, certificates, logs, kubeconfig
RUN=/tmp/moviebag-cluster                       # sockets and containerd's state (short paths)
IMAGES="${CLUSTER_IMAGES:-$BIN/images}"         # image tarballs made by `make images`
NODE=moviebag-node
BRIDGE=mbcni0
POD_CIDR=10.244.0.0/16
NODE_POD_CIDR=10.244.0.0/24
NODE_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
DNS_IP=10.96.0.10
EGRESS_CHAIN=MOVIEBAG-EGRESS
RELEASE=moviebag
NAMESPACE=moviebag
# Sysctls the cluster's parts change: saved by up, restored by down.
SYSCTLS=(net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables
  net/ipv4/conf/all/route_localnet vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes)

export PATH="$BIN:$PATH"
export KUBECONFIG="$STATE/admin.kubeconfig"

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------------
# helpers

free_port() { # a TCP port nothing listens on, in a range no Kubernetes default uses
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
}

wait_for() { # wait_for SECONDS WHAT COMMAND...: polls COMMAND every second
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what did not happen within the time allowed (logs: $STATE/logs)"
    sleep 1
  done
}

start() { # start NAME COMMAND...: runs a host process in the background, its log in logs/NAME.log
  local name="$1"
  shift
  log "starting $name"
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo "$!" >"$STATE/pids/$name"
}


sysctl_path() { echo "/proc/sys/$1"; }

iptables_backends() { # the iptables front ends this machine has
  local b
  for b in iptables-legacy iptables-nft ip6tables-legacy ip6tables-nft; do
    command -v "$b-save" >/dev/null && echo "$b"
  done
}

# Files and directories outside the repository that the cluster's parts may create.
OUTSIDE=(/var/lib/cni /var/log/containers /var/log/pods /var/lib/kubelet /opt/containerd /run/netns /etc/cni)

# snapshot DIR: the state of the machine that down must find again, as text files to compare.
snapshot() {
  local dir="$1" b
  mkdir -p "$dir"
  for b in $(iptables_backends); do
    "$b-save" >"$dir/$b.rules" 2>/dev/null || true
    # For comparing: rules and user chains only (counters, comments and built-in chains left out).
    grep -vE '^(#|\*|COMMIT|:(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) )' "$dir/$b.rules" | sed 's/ \[[0-9]*:[0-9]*\]$//' >"$dir/$b" || true
  done
  if command -v nft >/dev/null; then nft list tables 2>/dev/null | sort >"$dir/nft-tables" || true; fi
  ipset list -n 2>/dev/null | sort >"$dir/ipsets" || true
  ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort >"$dir/links"
  awk '{print $5}' /proc/self/mountinfo | sort >"$dir/mounts"
  local s f
  for s in "${SYSCTLS[@]}"; do
    f="$(sysctl_path "$s")"
    if [[ -e "$f" ]]; then echo "$s=$(cat "$f")"; fi
  done >"$dir/sysctls"
  for f in "${OUTSIDE[@]}" /sys/fs/cgroup/*/kubepods* /sys/fs/cgroup/kubepods*; do
    if [[ -e "$f" ]]; then echo "$f"; fi
  done | sort >"$dir/files"
  # Zombies are left out: a shim that has exited but that init (its parent once it daemonized) has not
  # reaped yet shows as "[containerd-shim] <defunct>" for a moment, and holds nothing to clean up.
  pgrep -a -f "$STATE|$RUN|containerd-shim" | awk '{$1=""; print}' | grep -v '<defunct>$' | sort >"$dir/processes" || true
}

# ---------------------------------------------------------------------------------------------------
# up

certs() {
  local c="$STATE/pki"
  mkdir -p "$c"
  log "certificates and tokens"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=moviebag-cluster-ca \
    -keyout "$c/ca.key" -out "$c/ca.crt" 2>/dev/null
  cat >"$c/apiserver.ext" <<EOF
subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
EOF
  issue apiserver /CN=kube-apiserver "$c/apiserver.ext"
  printf 'extendedKeyUsage=clientAuth\n' >"$c/client.ext"
  issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$c/client.ext"
  openssl genrsa -out "$c/sa.key" 2048 2>/dev/null
  openssl rsa -in "$c/sa.key" -pubout -out "$c/sa.pub" 2>/dev/null
  # Static bearer tokens, one identity per component: token,user,uid,"groups".
  : >"$c/tokens.csv"
  token admin admin system:masters
  token kubelet "system:node:$NODE" system:nodes
  token controller-manager system:kube-controller-manager ""
  token scheduler system:kube-scheduler ""
  token kube-proxy system:kube-proxy ""
  token kube-router kube-router system:masters
}

issue() { # issue NAME SUBJECT EXTFILE: a key and a certificate signed by the cluster CA
  local c="$STATE/pki"
  openssl req -new -newkey rsa:2048 -nodes -subj "$2" -keyout "$c/$1.key" -out "$c/$1.csr" 2>/dev/null
  openssl x509 -req -in "$c/$1.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" -CAcreateserial -days 30 \
    -extfile "$3" -out "$c/$1.crt" 2>/dev/null
}

token() { # token ID USER GROUP: a token for USER in GROUP, and STATE/ID.kubeconfig that uses it
  local t
  t="$(openssl rand -hex 24)"
  echo "$t,$2,$2,\"$3\"" >>"$STATE/pki/tokens.csv"
  kubeconfig "$1" "$t"
}

kubeconfig() { # kubeconfig ID TOKEN: STATE/ID.kubeconfig (admin.kubeconfig for admin)
  cat >"$STATE/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: moviebag
    cluster:
      server: https://$NODE_IP:$API_PORT
      certificate-authority: $STATE/pki/ca.crt
users:
  - name: $1
    user:
      token: $2
contexts:
  - name: moviebag
    context: {cluster: moviebag, user: $1}
current-context: moviebag
EOF
  chmod 600 "$STATE/$1.kubeconfig"
}

network() {
  log "network: bridge $BRIDGE ($NODE_IP), pods $POD_CIDR, services $SERVICE_CIDR, no route out"
  modprobe br_netfilter 2>/dev/null || true
  echo 1 >/proc/sys/net/ipv4/ip_forward
  if [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables; fi
  ip link add "$BRIDGE" type bridge
  ip addr add "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Pods reach each other, Services (already translated to pod addresses here) and this host (INPUT,
  # not FORWARD); anything else they send is dropped, never masqueraded out.
  iptables -N "$EGRESS_CHAIN"
  iptables -A "$EGRESS_CHAIN" -s "$POD_CIDR" -d "$POD_CIDR" -j RETURN
  iptables -A "$EGRESS_CHAIN" -s "$POD_CIDR" -j DROP
  iptables -I FORWARD 1 -j "$EGRESS_CHAIN"
  mkdir -p "$STATE/cni"
  cat >"$STATE/cni/10-moviebag.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "moviebag",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$STATE/cni/ipam", "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "$NODE_IP"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
    {"type": "loopback"}
  ]
}
EOF
}

control_plane() {
  mkdir -p "$STATE/etcd"
  local etcd_port peer_port
  etcd_port="$(free_port)" peer_port="$(free_port)"
  start etcd etcd --name moviebag --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "moviebag=http://127.0.0.1:$peer_port" --listen-metrics-urls ""
  wait_for 30 "etcd answering" curl -fsS "http://127.0.0.1:$etcd_port/health"

  local c="$STATE/pki"
  start kube-apiserver kube-apiserver --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$NODE_IP" --secure-port "$API_PORT" --advertise-address "$NODE_IP" \
    --tls-cert-file "$c/apiserver.crt" --tls-private-key-file "$c/apiserver.key" --client-ca-file "$c/ca.crt" \
    --kubelet-client-certificate "$c/apiserver-kubelet-client.crt" --kubelet-client-key "$c/apiserver-kubelet-client.key" \
    --service-account-key-file "$c/sa.pub" --service-account-signing-key-file "$c/sa.key" \
    --service-account-issuer https://kubernetes.default.svc --token-auth-file "$c/tokens.csv" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction --anonymous-auth=false \
    --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=false --profiling=false \
    --kubelet-preferred-address-types InternalIP
  wait_for 60 "kube-apiserver ready" kubectl get --raw /readyz

  start kube-controller-manager kube-controller-manager --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$c/sa.key" --root-ca-file "$c/ca.crt" \
    --cluster-signing-cert-file "$c/ca.crt" --cluster-signing-key-file "$c/ca.key" \
    --allocate-node-cidrs --cluster-cidr "$POD_CIDR" --node-cidr-mask-size 24 --service-cluster-ip-range "$SERVICE_CIDR" \
    --cert-dir "$STATE/pki/controller-manager" --profiling=false
  start kube-scheduler kube-scheduler --kubeconfig "$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false \
    --cert-dir "$STATE/pki/scheduler" --profiling=false
}

runtime() {
  mkdir -p "$RUN" "$STATE/containerd" "$STATE/containerd/certs.d/_default"
  # Every image the cluster runs is imported from bin/images; a pull of anything else goes to a
  # closed loopback port instead of the network.
  cat >"$STATE/containerd/certs.d/_default/hosts.toml" <<'EOF'
server = "http://127.0.0.1:9"
EOF
  cat >"$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$RUN/containerd"
[grpc]
  address = "$RUN/containerd.sock"
[ttrpc]
  address = "$RUN/containerd.ttrpc.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "moviebag.local/pause:1"
  # This VM has no CAP_SYS_RESOURCE: a negative oom_score_adj is refused, and with it every sandbox.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$STATE/containerd/certs.d"
EOF
  start containerd containerd --config "$STATE/containerd/config.toml"
  wait_for 30 "containerd answering" ctr --address "$RUN/containerd.sock" version
  local img
  for img in "$IMAGES"/*.tar; do
    log "importing image $(basename "$img" .tar)"
    ctr --address "$RUN/containerd.sock" -n k8s.io images import --all-platforms "$img" >/dev/null
  done
}

node() {
  mkdir -p "$STATE/kubelet" "$STATE/pod-logs"
  : >"$STATE/resolv.conf" # pods get the cluster DNS only; the host's resolver is never handed out
  cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $(free_port)
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $(free_port)
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization:
  mode: AlwaysAllow
cgroupDriver: cgroupfs
failSwapOn: false
clusterDomain: cluster.local
clusterDNS: [$DNS_IP]
resolvConf: $STATE/resolv.conf
podLogsDir: $STATE/pod-logs
serializeImagePulls: false
containerRuntimeEndpoint: unix://$RUN/containerd.sock
# A busy 2-core machine with a mostly full disk must not evict the cluster's own pods.
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
  start kubelet kubelet --config "$STATE/kubelet.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
    --root-dir "$STATE/kubelet" --hostname-override "$NODE" --node-ip "$NODE_IP" --cert-dir "$STATE/pki/kubelet"
  wait_for 120 "node $NODE Ready" bash -c "kubectl get node $NODE -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"

  # NodePorts (Prometheus') on the node's bridge address and loopback only, never on this host's other
  # interfaces. With loopback among them kube-proxy still sets route_localnet, as it did with the default.
  start kube-proxy kube-proxy --kubeconfig "$STATE/kube-proxy.kubeconfig" --hostname-override "$NODE" \
    --proxy-mode iptables --cluster-cidr "$POD_CIDR" --conntrack-max-per-core 0 \
    --nodeport-addresses "$NODE_IP/32,127.0.0.0/8" \
    --metrics-bind-address "127.0.0.1:$(free_port)" --healthz-bind-address "127.0.0.1:$(free_port)"
  # NetworkPolicy only: kube-proxy does the Services and the CNI bridge the routing.
  start kube-router kube-router --kubeconfig "$STATE/kube-router.kubeconfig" --hostname-override "$NODE" \
    --run-firewall=true --run-router=false --run-service-proxy=false --metrics-port 0 \
    --health-port "$(free_port)"
  start provisioner provisioner -kubeconfig "$STATE/admin.kubeconfig" -dir "$STATE/volumes"
}

addons() {
  log "CoreDNS, the default StorageClass, Gateway API CRDs, Traefik"
  kubectl apply --server-side -f "$GATEWAY_API_CRDS" >/dev/null
  kubectl wait --for condition=Established crd --all --timeout 60s >/dev/null
  local m
  for m in storage coredns traefik; do
    sed -e "s|\${IMAGE_COREDNS}|moviebag.local/coredns:1|; s|\${IMAGE_TRAEFIK}|moviebag.local/traefik:1|" \
      -e "s|\${DNS_IP}|$DNS_IP|; s|\${GATEWAY_PORT}|$GATEWAY_PORT|; s|\${INGRESS_PORT}|$INGRESS_PORT|" \
      "$REPO/deploy/cluster/manifests/$m.yaml" | kubectl apply -f - >/dev/null
  done
  kubectl -n kube-system rollout status deployment/coredns --timeout 180s >&2
}

install_chart() {
  log "installing the umbrella chart into namespace $NAMESPACE (Pod Security: restricted)"
  kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl label namespace "$NAMESPACE" --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null
  # A copy of the charts, so that `helm dependency build` writes nothing into the checkout.
  rm -rf "$STATE/charts" && mkdir -p "$STATE/charts" && cp -r "$REPO/helm/." "$STATE/charts/"
  helm dependency build "$STATE/charts/moviebag" >/dev/null
  helm upgrade --install "$RELEASE" "$STATE/charts/moviebag" --namespace "$NAMESPACE" \
    --values "$REPO/deploy/cluster/values.yaml" --set-string "auth.image.tag=$IMAGE_TAG,movies.image.tag=$IMAGE_TAG" \
    --wait --timeout 5m >&2
}

# monitoring: the Prometheus of deploy/cluster/manifests/prometheus.yaml with the rules file as its ConfigMap
# prometheus-rules, reachable from this host on the node's address and its Service's NodePort; sets
# PROMETHEUS_URL. It returns non-zero after saying why when a step fails: the chart's checks do not need it,
# so up goes on without it (and without the PROMETHEUS_URL line).
monitoring() {
  log "Prometheus in namespace monitoring, scraping the release every 5 s with deploy/prometheus/moviebag-rules.yaml"
  kubectl apply -f "$REPO/deploy/cluster/manifests/prometheus.yaml" >/dev/null || return 1
  kubectl -n monitoring create configmap prometheus-rules \
    --from-file=moviebag-rules.yaml="$REPO/deploy/prometheus/moviebag-rules.yaml" --dry-run=client -o yaml |
    kubectl apply -f - >/dev/null || return 1
  if ! kubectl -n monitoring rollout status deployment/prometheus --timeout 180s >&2; then
    kubectl -n monitoring describe pods >&2 || true
    kubectl -n monitoring logs deployment/prometheus --tail 50 >&2 || true
    return 1
  fi
  local port url deadline=$((SECONDS + 60))
  port="$(kubectl -n monitoring get service prometheus -o jsonpath='{.spec.ports[0].nodePort}')" || return 1
  url="http://$NODE_IP:$port"
  until curl -fsS -o /dev/null -m 5 "$url/-/ready" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "Prometheus is Ready in the cluster but does not answer on $url/-/ready from this host"
      return 1
    fi
    sleep 1
  done
  PROMETHEUS_URL="$url"
}

up() {
  [[ $EUID -eq 0 ]] || die "needs root (network namespaces, iptables, mounts)"
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl kube-router provisioner ${CLUSTER_ONLY:+-} helm; do
    [[ "$b" == - ]] && break
    command -v "$b" >/dev/null || die "$b is missing from $BIN: run 'make cluster-up' (it builds everything first)"
  done
  [[ -d "$IMAGES" ]] || die "no images in $IMAGES: run 'make cluster-up'"
  : "${GATEWAY_API_CRDS:?GATEWAY_API_CRDS: the Gateway API standard CRDs file}"
  : "${IMAGE_TAG:?IMAGE_TAG: tag of the service images}"
  if [[ -d "$STATE" || -d "$RUN" ]] || ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "a cluster (or what is left of one) is here: removing it first"
    down
  fi
  mkdir -p "$STATE/logs" "$STATE/pids" "$STATE/volumes"
  snapshot "$STATE/before"
  API_PORT="$(free_port)" GATEWAY_PORT="$(free_port)" INGRESS_PORT="$(free_port)"
  printf 'API_PORT=%s\nGATEWAY_PORT=%s\nINGRESS_PORT=%s\n' "$API_PORT" "$GATEWAY_PORT" "$INGRESS_PORT" >"$STATE/ports"
  # From here a failure leaves the pieces for `down` (and the logs for a look); a rerun of up cleans first.
  trap 'log "up failed: logs in $STATE/logs; make cluster-down removes what was made"' ERR
  certs
  network
  control_plane
  runtime
  node
  addons
  if [[ -n "${CLUSTER_ONLY:-}" ]]; then
    trap - ERR
    log "CLUSTER_ONLY: the cluster without the chart"
    echo "KUBECONFIG=$KUBECONFIG"
    return
  fi
  install_chart
  kubectl -n traefik rollout status deployment/traefik --timeout 180s >&2
  PROMETHEUS_URL=""
  if ! monitoring; then
    log "WARNING: the in-cluster Prometheus is not up (above: why); the cluster is up without it and no PROMETHEUS_URL"
  fi
  trap - ERR
  log "ready"
  echo "KUBECONFIG=$KUBECONFIG"
  echo "GATEWAY_URL=http://127.0.0.1:$GATEWAY_PORT"
  echo "INGRESS_URL=http://127.0.0.1:$INGRESS_PORT"
  if [[ -n "$PROMETHEUS_URL" ]]; then echo "PROMETHEUS_URL=$PROMETHEUS_URL"; fi
}

# ---------------------------------------------------------------------------------------------------
# down

stop_processes() {
  local name pid
  # The node first, so nothing restarts what is stopped next.
  for name in kubelet kube-proxy kube-router provisioner kube-scheduler kube-controller-manager kube-apiserver etcd; do
    if [[ -f "$STATE/pids/$name" ]]; then
      pid="$(cat "$STATE/pids/$name")"
      kill "$pid" 2>/dev/null || true
    fi
  done
  # Containers: every process in the pods' cgroups, then the shims of this containerd, then containerd.
  local procs
  procs="$(find /sys/fs/cgroup -path '*kubepods*' -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u || true)"
  # shellcheck disable=SC2086 # one pid per word
  if [[ -n "$procs" ]]; then kill -9 $procs 2>/dev/null || true; fi
  pkill -9 -f "containerd-shim-runc-v2 -namespace k8s.io -address $RUN/containerd.sock" 2>/dev/null || true
  if [[ -f "$STATE/pids/containerd" ]]; then kill "$(cat "$STATE/pids/containerd")" 2>/dev/null || true; fi
  # Anything still running from the cluster's directories (a crashed run leaves no pid files).
  local deadline=$((SECONDS + 20))
  while pgrep -f "$STATE|$RUN" >/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
  pkill -9 -f "$STATE|$RUN" 2>/dev/null || true
  while pgrep -f "$STATE|$RUN" >/dev/null; do sleep 0.2; done
}

unmount_all() { # every mount under the cluster's directories and the pods' network namespaces, deepest first
  local m
  awk '{print $5}' /proc/self/mountinfo | { grep -E "^($STATE|$RUN)/|^/run/netns/cni-|^/var/run/netns/cni-" || true; } | sort -r |
    while IFS= read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  local ns
  for ns in /run/netns/cni-*; do if [[ -e "$ns" ]]; then rm -f "$ns"; fi; done
}

restore_network() {
  local before="$STATE/before" b t
  ip link del "$BRIDGE" 2>/dev/null || true
  for b in $(iptables_backends); do
    if [[ -f "$before/$b.rules" ]]; then
      # Tables the cluster brought in are emptied; the saved ones are put back as they were.
      for t in $("$b-save" 2>/dev/null | sed -n 's/^\*//p'); do
        grep -qx "\*$t" "$before/$b.rules" && continue
        "${b%-save}" -t "$t" -F 2>/dev/null || true
        "${b%-save}" -t "$t" -X 2>/dev/null || true
      done
      "$b-restore" <"$before/$b.rules" || log "warning: $b-restore failed"
    fi
  done
  if [[ ! -f "$before/iptables-nft.rules" && ! -f "$before/iptables-legacy.rules" ]]; then
    # No record (a run interrupted before it made one): the cluster's own chain, by name.
    iptables -D FORWARD -j "$EGRESS_CHAIN" 2>/dev/null || true
    iptables -F "$EGRESS_CHAIN" 2>/dev/null || true
    iptables -X "$EGRESS_CHAIN" 2>/dev/null || true
  fi
  if [[ -f "$before/nft-tables" ]]; then
    local table
    nft list tables 2>/dev/null | while read -r table; do
      # shellcheck disable=SC2086 # "table FAMILY NAME" is three words
      grep -qxF "$table" "$before/nft-tables" || nft delete $table 2>/dev/null || true
    done
  fi
  local set
  for set in $(ipset list -n 2>/dev/null); do
    grep -qx "$set" "$before/ipsets" 2>/dev/null || ipset destroy "$set" 2>/dev/null || true
  done
  if command -v conntrack >/dev/null; then
    conntrack -D -s "$POD_CIDR" >/dev/null 2>&1 || true
    conntrack -D -d "$SERVICE_CIDR" >/dev/null 2>&1 || true
  fi
}

restore_sysctls() {
  [[ -f "$STATE/before/sysctls" ]] || return 0
  local line
  while IFS= read -r line; do
    echo "${line#*=}" >"$(sysctl_path "${line%%=*}")" 2>/dev/null || log "warning: could not restore ${line%%=*}"
  done <"$STATE/before/sysctls"
}

remove_files() {
  local d
  # cgroups the kubelet and runc made (the pods' processes are gone), deepest first.
  find /sys/fs/cgroup -depth -type d -path '*kubepods*' -exec rmdir {} \; 2>/dev/null || true
  # CNI results and the kubelet's container log links, where the cluster made them.
  for d in "${OUTSIDE[@]}"; do
    if [[ -e "$d" ]] && ! grep -qx "$d" "$STATE/before/files" 2>/dev/null; then rm -rf "$d"; fi
  done
  rm -rf "$RUN"
}

down() {
  [[ $EUID -eq 0 ]] || die "needs root"
  log "stopping the cluster"
  stop_processes
  unmount_all
  restore_network
  restore_sysctls
  remove_files
  if [[ -d "$STATE/before" ]]; then
    snapshot "$STATE/after"
    if ! diff -r "$STATE/before" "$STATE/after" >"$STATE/leftovers.diff"; then
      log "left behind by the cluster (before vs after):"
      cat "$STATE/leftovers.diff" >&2
      local keep="${STATE%/*}/cluster-leftovers.diff"
      cp "$STATE/leftovers.diff" "$keep"
      rm -rf "$STATE"
      die "cleanup incomplete; the difference is kept in $keep"
    fi
  fi
  rm -rf "$STATE" "${STATE%/*}/cluster-leftovers.diff"
  log "removed: nothing of the cluster is left"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
