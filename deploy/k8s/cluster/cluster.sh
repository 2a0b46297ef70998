#!/usr/bin/env bash
# A real three-node Kubernetes on this machine, each node isolated from the host in namespaces and cgroups
# of its own, with moviebag's umbrella chart installed:
#
#   deploy/k8s/cluster/cluster.sh up     # etcd and the control plane (host processes on the cluster's bridge
#                                        # address); three nodes, each a network namespace with its own
#                                        # containerd, kubelet, kube-proxy and kube-router (NetworkPolicy);
#                                        # CoreDNS, a StorageClass, Traefik (Gateway API and Ingress), then the
#                                        # chart and a Prometheus scraping it. Its only standard output is its
#                                        # last lines: KUBECONFIG=, GATEWAY_URL=, INGRESS_URL= and PROMETHEUS_URL=
#                                        # (missing if Prometheus did not come up: the warning above says why)
#   deploy/k8s/cluster/cluster.sh down   # removes what up made, and only that; idempotent
#   deploy/k8s/cluster/cluster.sh name   # prints the cluster's name (CLUSTER_NAME, or CLUSTER_SHAPE's default)
#   deploy/k8s/cluster/cluster.sh state  # prints its state directory (its logs, kubeconfig, charts)
#
# CLUSTER_ONLY=1 ... up stops before the chart (and before waiting for Traefik): a bare cluster.
# CLUSTER_NAME (default moviebag; a letter then up to 9 letters or digits) prefixes every name the cluster
# takes on this machine, so that clusters of different names live side by side.
#
# Called by `make cluster-up` / `make cluster-down`, which first build every binary and image it runs
# (deploy/make/testcluster.mk). Needs root, cgroup v1 (or v2), iptables and Debian's containerd, runc, CNI
# plugins and etcd.
#
# The nodes: NAME-n1 (the control plane's node: Traefik's hostPorts, so the URLs, are on its address), NAME-n2
# and NAME-n3 (workers), all schedulable. Node k is the network namespace NAME-nk (entered with `nsenter
# --net`, so that it shares this host's mounts with runc), its eth0 at NET.1k on the bridge NAME-br (NET.1,
# the host's end, serves the API), pods 10.244.k.0/24 on its own cni0, routes to the other nodes' pods; its
# processes and pods in the cgroup NAME-cluster/nk of every hierarchy (the kubelet's --cgroup-root), its
# files under STATE/nodes/nk and RUN/nk.
#
# What it changes on the host, all removed by down: processes (in the cgroup NAME-cluster and in pid files);
# the cgroups under NAME-cluster; the network namespaces NAME-n*, the bridge NAME-br and its veths; one
# iptables chain NAME-CLUSTER (ACCEPT) with the two rules that jump to it from INPUT and FORWARD for the
# bridge; the kubelet's links in /var/log/containers, the CNI cache entries of network NAME in /var/lib/cni
# and the shims' sockets in /run/containerd/s (each one of this cluster's, by name); STATE and RUN. Shared
# by the clusters of every name (SHARED, below): the kernel-wide tunables the kubelet sets
# (vm.overcommit_memory, vm.panic_on_oom, kernel.panic, kernel.panic_on_oops, kernel.keys.root_max*),
# recorded by the first cluster's up and put back by the last one's down, and the directories of OUTSIDE
# that an up made, removed by the last down. Nothing else of the host's network: its own iptables rules,
# nft tables, ipsets, links, routes and net.* sysctls are never touched.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
BIN="${BIN:-$REPO/bin}"
# CLUSTER_SHAPE=managed: the differently shaped cluster of deploy/k8s/cluster/shapes/managed.sh, named after
# its shape unless CLUSTER_NAME says otherwise.
CLUSTER_SHAPE="${CLUSTER_SHAPE:-}"
CLUSTER_NAME="${CLUSTER_NAME:-${CLUSTER_SHAPE:-moviebag}}"
if [[ ! "$CLUSTER_NAME" =~ ^[a-z][a-z0-9]{0,9}$ ]]; then
  echo "cluster: CLUSTER_NAME=$CLUSTER_NAME: want a letter then up to 9 letters or digits" >&2
  exit 2
fi
if [[ "$CLUSTER_NAME" == moviebag ]]; then DEFAULT_STATE="$REPO/.data/cluster"; else DEFAULT_STATE="$REPO/.data/cluster-$CLUSTER_NAME"; fi
STATE="${CLUSTER_STATE:-$DEFAULT_STATE}"        # data, certificates, logs, kubeconfig
RUN="/run/$CLUSTER_NAME-cluster"                 # sockets and containerd's state (short paths)
IMAGES="${CLUSTER_IMAGES:-$BIN/images}"          # image tarballs made by `make images`
CGROUP="$CLUSTER_NAME-cluster"                   # the cluster's cgroup, under the root of every hierarchy
BRIDGE="$CLUSTER_NAME-br"
CHAIN="${CLUSTER_NAME^^}-CLUSTER"                # the host firewall's rules for the bridge
NODES=(n1 n2 n3)
# The node network: a /24 of 10.251.0.0/16 chosen from the name (CLUSTER_NET=10.251.X overrides it).
NET="${CLUSTER_NET:-10.251.$(($(cksum <<<"$CLUSTER_NAME" | cut -d' ' -f1) % 250))}"
BRIDGE_IP="$NET.1"
POD_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
DNS_IP=10.96.0.10
RELEASE=moviebag
NAMESPACE=moviebag
# Kernel-wide tunables the kubelet sets: saved by up, restored by down. (Everything under net. that the
# cluster's parts set is in the nodes' own network namespaces.)
SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys
  kernel/keys/root_maxbytes)

export PATH="$BIN:$PATH"
export KUBECONFIG="$STATE/admin.kubeconfig"

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

node_name() { echo "$CLUSTER_NAME-$1"; }             # the Kubernetes node, its network namespace and host veth
node_index() { echo "${1#n}"; }
node_ip() { echo "$NET.$((10 + $(node_index "$1")))"; }
node_pods() { echo "10.244.$(node_index "$1").0/24"; }
in_node() { local n="$1"; shift; nsenter --net="/run/netns/$(node_name "$n")" "$@"; }

# ---------------------------------------------------------------------------------------------------
# helpers

free_port() { # a TCP port nothing on this host listens on, in a range no Kubernetes default uses
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

# The mounted cgroup hierarchies (v1: one per controller and the named systemd one; v2: one).
hierarchies() { awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/self/mounts; }

make_cgroup() { # make_cgroup PATH: PATH (relative to the roots) in every hierarchy, each level usable
  local h rel part
  for h in $(hierarchies); do
    rel=""
    for part in ${1//\// }; do
      rel="$rel/$part"
      if [[ ! -d "$h$rel" ]]; then
        mkdir "$h$rel"
        # cgroup v1 cpuset: a new cgroup has no CPUs or memory nodes until given its parent's.
        if [[ -f "$h$rel/cpuset.cpus" ]]; then
          cat "$(dirname "$h$rel")/cpuset.cpus" >"$h$rel/cpuset.cpus"
          cat "$(dirname "$h$rel")/cpuset.mems" >"$h$rel/cpuset.mems"
        fi
        # cgroup v2: the controllers the kubelet needs, passed down.
        if [[ -f "$h$rel/cgroup.subtree_control" && "$(hierarchies | wc -l)" == 1 ]]; then
          local c
          for c in cpuset cpu io memory pids hugetlb; do echo "+$c" >"$h$rel/cgroup.subtree_control" 2>/dev/null || true; done
        fi
      fi
    done
  done
}

# start NAME GROUP NODE|- COMMAND...: runs COMMAND in the background in the cgroup CGROUP/GROUP of every
# hierarchy, in NODE's network namespace (- for the host's), its log in logs/NAME.log, its pid in pids/NAME.
start() {
  local name="$1" group="$2" node="$3" dirs="" h
  shift 3
  for h in $(hierarchies); do dirs="$dirs $h/$CGROUP/$group"; done
  local enter=()
  if [[ "$node" != - ]]; then enter=(nsenter "--net=/run/netns/$(node_name "$node")"); fi
  log "starting $name"
  # shellcheck disable=SC2016 # expanded by the inner shell
  CG_DIRS="$dirs" setsid bash -c 'for d in $CG_DIRS; do echo $$ >"$d/cgroup.procs"; done; unset CG_DIRS; exec "$@"' \
    bash "${enter[@]}" "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo "$!" >"$STATE/pids/$name"
}

sysctl_path() { echo "/proc/sys/$1"; }

# ---------------------------------------------------------------------------------------------------
# up

certs() {
  local c="$STATE/pki" n
  mkdir -p "$c"
  log "certificates and tokens"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$CLUSTER_NAME-cluster-ca" \
    -keyout "$c/ca.key" -out "$c/ca.crt" 2>/dev/null
  cat >"$c/apiserver.ext" <<EOF
subjectAltName=IP:127.0.0.1,IP:$BRIDGE_IP,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
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
  for n in "${NODES[@]}"; do token "kubelet-$n" "system:node:$(node_name "$n")" system:nodes; done
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
  - name: $CLUSTER_NAME
    cluster:
      server: https://$BRIDGE_IP:$API_PORT
      certificate-authority: $STATE/pki/ca.crt
users:
  - name: $1
    user:
      token: $2
contexts:
  - name: $CLUSTER_NAME
    context: {cluster: $CLUSTER_NAME, user: $1}
current-context: $CLUSTER_NAME
EOF
  chmod 600 "$STATE/$1.kubeconfig"
}

# network: the bridge, the nodes' namespaces on it, and the host firewall's two rules for it.
network() {
  log "network: bridge $BRIDGE ($BRIDGE_IP/24), nodes ${NODES[*]} at $NET.1k, pods 10.244.k.0/24, services $SERVICE_CIDR"
  modprobe br_netfilter 2>/dev/null || true
  ip link add "$BRIDGE" type bridge
  ip addr add "$BRIDGE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Frames between the nodes cross the bridge, and the host's bridge netfilter sends them through its
  # FORWARD chain; the nodes call the API on the host's end (INPUT). Both are let through by one chain of
  # the cluster's own, whatever the host's policy; down removes exactly these rules.
  iptables -N "$CHAIN"
  iptables -A "$CHAIN" -j ACCEPT
  iptables -I FORWARD 1 -i "$BRIDGE" -o "$BRIDGE" -j "$CHAIN"
  iptables -I INPUT 1 -i "$BRIDGE" -j "$CHAIN"
  local n m ns
  for n in "${NODES[@]}"; do
    ns="$(node_name "$n")"
    ip netns add "$ns"
    ip link add "$ns" type veth peer name eth0 netns "$ns"
    ip link set "$ns" master "$BRIDGE" up
    in_node "$n" ip link set lo up
    in_node "$n" ip addr add "$(node_ip "$n")/24" dev eth0
    in_node "$n" ip link set eth0 up
    # No default route: what pods send to anything but the cluster and this host is unreachable.
    for m in "${NODES[@]}"; do
      if [[ "$m" != "$n" ]]; then in_node "$n" ip route add "$(node_pods "$m")" via "$(node_ip "$m")"; fi
    done
    # Locally sent traffic to a Service needs a route before kube-proxy's DNAT: on the node network.
    in_node "$n" ip route add "$SERVICE_CIDR" dev eth0
    in_node "$n" sysctl -qw net.ipv4.ip_forward=1
    in_node "$n" sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 2>/dev/null || true
    # Pods reach the API (on the host's end) and the other nodes' addresses as their node, so that the
    # host needs no route to the pods.
    in_node "$n" iptables -t nat -A POSTROUTING -s "$POD_CIDR" -d "$NET.0/24" -j MASQUERADE
  done
}

control_plane() {
  mkdir -p "$STATE/etcd"
  make_cgroup "$CGROUP/control-plane"
  local etcd_port peer_port
  etcd_port="$(free_port)" peer_port="$(free_port)"
  start etcd control-plane - etcd --name "$CLUSTER_NAME" --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "$CLUSTER_NAME=http://127.0.0.1:$peer_port" --listen-metrics-urls ""
  wait_for 30 "etcd answering" curl -fsS "http://127.0.0.1:$etcd_port/health"

  local c="$STATE/pki"
  start kube-apiserver control-plane - kube-apiserver --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$BRIDGE_IP" --secure-port "$API_PORT" --advertise-address "$BRIDGE_IP" \
    --tls-cert-file "$c/apiserver.crt" --tls-private-key-file "$c/apiserver.key" --client-ca-file "$c/ca.crt" \
    --kubelet-client-certificate "$c/apiserver-kubelet-client.crt" --kubelet-client-key "$c/apiserver-kubelet-client.key" \
    --service-account-key-file "$c/sa.pub" --service-account-signing-key-file "$c/sa.key" \
    --service-account-issuer https://kubernetes.default.svc --token-auth-file "$c/tokens.csv" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction --anonymous-auth=false \
    --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=false --profiling=false \
    --kubelet-preferred-address-types InternalIP \
    --default-not-ready-toleration-seconds "${POD_EVICTION_SECONDS:-30}" --default-unreachable-toleration-seconds "${POD_EVICTION_SECONDS:-30}"
  wait_for 60 "kube-apiserver ready" kubectl get --raw /readyz

  # Each node's pod range is set at up (node_pods), so no CIDR allocation here. A node that stops
  # reporting is NotReady after --node-monitor-grace-period (20 s here, 40 s by default): its pods turn
  # unready and leave the Services' endpoints. They are evicted, and replaced elsewhere, after their
  # toleration of node.kubernetes.io/unreachable: 30 s here (the API server's default for pods that set
  # none, 300 s upstream).
  start kube-controller-manager control-plane - kube-controller-manager --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$c/sa.key" --root-ca-file "$c/ca.crt" \
    --cluster-signing-cert-file "$c/ca.crt" --cluster-signing-key-file "$c/ca.key" \
    --cluster-cidr "$POD_CIDR" --service-cluster-ip-range "$SERVICE_CIDR" \
    --node-monitor-grace-period "${NODE_MONITOR_GRACE_PERIOD:-20s}" \
    --cert-dir "$STATE/pki/controller-manager" --profiling=false
  start kube-scheduler control-plane - kube-scheduler --kubeconfig "$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$(free_port)" --leader-elect=false \
    --cert-dir "$STATE/pki/scheduler" --profiling=false
  # Volumes are directories under STATE/volumes: every node sees them (the nodes share this host's
  # filesystem), so a volume follows its pod to any node, as network storage would.
  start provisioner control-plane - provisioner -kubeconfig "$STATE/admin.kubeconfig" -dir "$STATE/volumes"
}

# start_runtime N: node N's containerd, in its namespace and cgroup, with every image imported.
start_runtime() {
  local n="$1" d="$STATE/nodes/$1" r="$RUN/$1"
  mkdir -p "$r" "$d/containerd/certs.d/_default" "$d/cni"
  # Every image the cluster runs is imported from bin/images; a pull of anything else goes to a
  # closed loopback port instead of the network.
  cat >"$d/containerd/certs.d/_default/hosts.toml" <<'EOF'
server = "http://127.0.0.1:9"
EOF
  cat >"$d/containerd/config.toml" <<EOF
version = 2
root = "$d/containerd/root"
state = "$r/containerd"
[grpc]
  address = "$r/containerd.sock"
[ttrpc]
  address = "$r/containerd.ttrpc.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "moviebag.local/pause:1"
  # Without CAP_SYS_RESOURCE a negative oom_score_adj is refused, and with it every sandbox: only raise it.
  restrict_oom_score_adj = true
  enable_selinux = false
  # The pods' network namespaces under this node's state directory, not /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$r/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$d/containerd/certs.d"
EOF
  # The node's pod network: its own cni0 (in its namespace, so the name is its own), its pod range, the
  # addresses kept under the node's directory.
  cat >"$d/cni/10-$CLUSTER_NAME.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CLUSTER_NAME",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$d/ipam", "ranges": [[{"subnet": "$(node_pods "$n")"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
    {"type": "loopback"}
  ]
}
EOF
  make_cgroup "$CGROUP/$n/system"
  start "containerd-$n" "$n/system" "$n" containerd --config "$d/containerd/config.toml"
}

import_images() { # import_images N: every image of bin/images into node N's containerd
  local n="$1" img
  wait_for 30 "containerd of $n answering" ctr --address "$RUN/$n/containerd.sock" version
  for img in "$IMAGES"/*.tar; do
    ctr --address "$RUN/$n/containerd.sock" -n k8s.io images import --all-platforms "$img" >/dev/null
  done
}

start_kubelet() { # start_kubelet N: node N's kubelet, in its namespace, pods under its own cgroup root
  local n="$1" d="$STATE/nodes/$1" name
  name="$(node_name "$n")"
  mkdir -p "$d/kubelet" "$d/pod-logs"
  : >"$STATE/resolv.conf" # pods get the cluster DNS only; the host's resolver is never handed out
  make_cgroup "$CGROUP/$n"
  cat >"$d/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $(node_ip "$n")
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization:
  mode: AlwaysAllow
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP/$n
failSwapOn: false
clusterDomain: cluster.local
clusterDNS: [$DNS_IP]
resolvConf: $STATE/resolv.conf
podLogsDir: $d/pod-logs
serializeImagePulls: false
containerRuntimeEndpoint: unix://$RUN/$n/containerd.sock
# The thresholds at which a node evicts its pods: low, so that a machine with a mostly full disk and the
# host's own load on its memory does not evict the cluster's pods.
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
  start "kubelet-$n" "$n/system" "$n" kubelet --config "$d/kubelet.yaml" --kubeconfig "$STATE/kubelet-$n.kubeconfig" \
    --root-dir "$d/kubelet" --hostname-override "$name" --node-ip "$(node_ip "$n")" --cert-dir "$d/pki" \
    --node-labels "topology.kubernetes.io/zone=zone-$n"
}

start_proxies() { # start_proxies N: node N's kube-proxy (Services) and kube-router (NetworkPolicy), in its namespace
  local n="$1" name
  name="$(node_name "$n")"
  # NodePorts on the node's address only.
  start "kube-proxy-$n" "$n/system" "$n" kube-proxy --kubeconfig "$STATE/kube-proxy.kubeconfig" --hostname-override "$name" \
    --proxy-mode iptables --cluster-cidr "$POD_CIDR" --conntrack-max-per-core 0 \
    --conntrack-tcp-timeout-established 0 --conntrack-tcp-timeout-close-wait 0 \
    --nodeport-addresses "$(node_ip "$n")/32" \
    --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256
  start "kube-router-$n" "$n/system" "$n" kube-router --kubeconfig "$STATE/kube-router.kubeconfig" --hostname-override "$name" \
    --run-firewall=true --run-router=false --run-service-proxy=false --metrics-port 0 --health-port 20244
}

nodes() {
  local n pids=()
  for n in "${NODES[@]}"; do start_runtime "$n"; done
  log "importing the images of $IMAGES into the ${#NODES[@]} nodes"
  for n in "${NODES[@]}"; do import_images "$n" & pids+=("$!"); done
  for n in "${pids[@]}"; do wait "$n" || die "image import failed (logs: $STATE/logs)"; done
  for n in "${NODES[@]}"; do start_kubelet "$n"; done
  for n in "${NODES[@]}"; do
    local name
    name="$(node_name "$n")"
    wait_for 120 "node $name registered" kubectl get node "$name"
    kubectl patch node "$name" --type merge -p "{\"spec\":{\"podCIDR\":\"$(node_pods "$n")\",\"podCIDRs\":[\"$(node_pods "$n")\"]}}" >/dev/null
  done
  kubectl label node "$(node_name n1)" --overwrite node-role.kubernetes.io/control-plane= >/dev/null
  for n in "${NODES[@]}"; do start_proxies "$n"; done
  for n in "${NODES[@]}"; do
    wait_for 120 "node $(node_name "$n") Ready" bash -c "kubectl get node $(node_name "$n") -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
  done
}

addons() {
  : "${GATEWAY_API_CRDS:?GATEWAY_API_CRDS: the Gateway API standard CRDs file}"
  log "CoreDNS, the default StorageClass, Gateway API CRDs, Traefik (on $(node_name n1))"
  kubectl apply --server-side -f "$GATEWAY_API_CRDS" >/dev/null
  kubectl wait --for condition=Established crd --all --timeout 60s >/dev/null
  local m
  for m in storage coredns traefik; do
    sed -e "s|\${IMAGE_COREDNS}|moviebag.local/coredns:1|; s|\${IMAGE_TRAEFIK}|moviebag.local/traefik:1|" \
      -e "s|\${DNS_IP}|$DNS_IP|; s|\${GATEWAY_PORT}|$GATEWAY_PORT|; s|\${INGRESS_PORT}|$INGRESS_PORT|" \
      -e "s|hostIP: 127.0.0.1|hostIP: $(node_ip n1)|" \
      "$REPO/deploy/k8s/cluster/manifests/$m.yaml" | kubectl apply -f - >/dev/null
  done
  # Traefik's hostPorts are the URLs: on the control plane's node, which no test drains. CoreDNS runs two
  # replicas on different nodes (manifests/coredns.yaml), so that a drain or a lost node leaves one.
  pin_to_n1 traefik traefik
  kubectl -n kube-system rollout status deployment/coredns --timeout 180s >&2
}

pin_to_n1() { # pin_to_n1 NAMESPACE DEPLOYMENT: its pods on the first node only
  kubectl -n "$1" patch deployment "$2" --type merge \
    -p "{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{\"kubernetes.io/hostname\":\"$(node_name n1)\"}}}}}" >/dev/null
}

install_chart() {
  log "installing the umbrella chart into namespace $NAMESPACE (Pod Security: restricted)"
  kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl label namespace "$NAMESPACE" --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null
  # A copy of the charts, so that `helm dependency build` writes nothing into the checkout.
  rm -rf "$STATE/charts" && mkdir -p "$STATE/charts" && cp -r "$REPO/helm/." "$STATE/charts/"
  helm dependency build "$STATE/charts/moviebag" >/dev/null
  helm upgrade --install "$RELEASE" "$STATE/charts/moviebag" --namespace "$NAMESPACE" \
    --values "$REPO/deploy/k8s/cluster/values.yaml" --set-string "auth.image.tag=$IMAGE_TAG,movies.image.tag=$IMAGE_TAG" \
    --wait --timeout 5m >&2
}

# monitoring: the Prometheus of deploy/k8s/cluster/manifests/prometheus.yaml with the rules file as its ConfigMap
# prometheus-rules, reachable from this host on the first node's address and its Service's NodePort; sets
# PROMETHEUS_URL. It returns non-zero after saying why when a step fails: the chart's checks do not need it,
# so up goes on without it (and without the PROMETHEUS_URL line).
monitoring() {
  log "Prometheus in namespace monitoring, scraping the release every 5 s with deploy/prometheus/moviebag-rules.yaml"
  kubectl apply -f "$REPO/deploy/k8s/cluster/manifests/prometheus.yaml" >/dev/null || return 1
  # Its TSDB is an emptyDir: on the node no test drains, so that it keeps what it scraped.
  pin_to_n1 monitoring prometheus || return 1
  kubectl -n monitoring create configmap prometheus-rules \
    --from-file=moviebag-rules.yaml="$REPO/deploy/prometheus/moviebag-rules.yaml" --dry-run=client -o yaml |
    kubectl apply -f - >/dev/null || return 1
  await_prometheus monitoring prometheus
}

# await_prometheus NS NAME: waits until the Deployment NAME in namespace NS has rolled out and its Service
# NAME answers /-/ready on its node port from this host, then sets PROMETHEUS_URL to it.
await_prometheus() {
  local ns=$1 name=$2
  if ! kubectl -n "$ns" rollout status "deployment/$name" --timeout 180s >&2; then
    kubectl -n "$ns" describe pods >&2 || true
    kubectl -n "$ns" logs "deployment/$name" --tail 50 >&2 || true
    return 1
  fi
  local port url deadline=$((SECONDS + 60))
  port="$(kubectl -n "$ns" get service "$name" -o jsonpath='{.spec.ports[0].nodePort}')" || return 1
  url="http://$(node_ip n1):$port"
  until curl -fsS -o /dev/null -m 5 "$url/-/ready" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "Prometheus is Ready in the cluster but does not answer on $url/-/ready from this host"
      return 1
    fi
    sleep 1
  done
  PROMETHEUS_URL="$url"
}

# Directories outside STATE and RUN where the cluster's parts put entries of their own (and /run/netns,
# which `ip netns add` makes): each cluster removes its own entries, and the last cluster's down removes
# the directories that the first one's up made, once empty.
OUTSIDE=(/var/log/containers /var/log/pods /var/lib/cni/results /var/lib/cni /run/containerd/s /run/containerd /var/lib/kubelet /run/netns)

# What clusters of any name share on this machine, in SHARED: up/NAME for each cluster that is up (or
# partly: until its down), `created`, the directories of OUTSIDE that an up made, and `sysctls`, the kernel
# tunables as they were before the first cluster. The first up writes them, the last down puts them back
# and removes SHARED; so a cluster's down leaves another's running, and the host as it found it when it is
# the last.
SHARED=/run/moviebag-clusters

# shared CMD...: CMD with SHARED to itself among the clusters' up and down (a lock on this script).
shared() {
  local rc=0
  exec {lock}<"${BASH_SOURCE[0]}"
  flock "$lock"
  "$@" || rc=$?
  exec {lock}<&-
  return "$rc"
}

# record: this cluster in SHARED/up; the first cluster records the host's tunables; every up the
# directories of OUTSIDE that do not exist yet (its parts will make them).
record() {
  local s f
  mkdir -p "$SHARED/up"
  if [[ ! -f "$SHARED/sysctls" ]]; then
    for s in "${SYSCTLS[@]}"; do
      f="$(sysctl_path "$s")"
      if [[ -e "$f" ]]; then echo "$s=$(cat "$f")"; fi
    done >"$SHARED/sysctls"
  fi
  touch "$SHARED/created"
  for f in "${OUTSIDE[@]}"; do
    if [[ ! -e "$f" ]] && ! grep -qxF "$f" "$SHARED/created"; then echo "$f" >>"$SHARED/created"; fi
  done
  touch "$SHARED/up/$CLUSTER_NAME"
}

# release: this cluster out of SHARED/up; when it was the last, the tunables put back and the
# directories the clusters made removed once empty, then SHARED itself.
release() {
  rm -f "$SHARED/up/$CLUSTER_NAME"
  if [[ -d "$SHARED/up" && -n "$(ls -A "$SHARED/up")" ]]; then
    local others=("$SHARED"/up/*)
    log "other clusters are up here (${others[*]##*/}): the kernel tunables and shared directories stay theirs"
    return
  fi
  local f
  if [[ -f "$SHARED/created" ]]; then
    while IFS= read -r f; do
      case "$f" in
        /run/netns)
          if [[ -d /run/netns && -z "$(ls -A /run/netns)" ]]; then
            if mountpoint -q /run/netns; then umount /run/netns; fi
            rmdir /run/netns
          fi
          ;;
        *)
          # The kubelets' device plugin socket (a path the kubelet does not let us choose), unless a
          # kubelet still listens on it.
          if [[ "$f" == /var/lib/kubelet ]] && ! ss -Hxl | grep -qF /var/lib/kubelet/device-plugins/kubelet.sock; then
            rm -f /var/lib/kubelet/device-plugins/kubelet.sock
          fi
          if [[ -d "$f" ]]; then find "$f" -depth -type d -empty -delete 2>/dev/null || true; fi
          ;;
      esac
    done <"$SHARED/created"
  fi
  rm -rf "$SHARED/up" "$SHARED/created"
  # Kept (and named by leftovers) when a tunable cannot be put back.
  if restore_sysctls; then rm -rf "$SHARED"; fi
}

up() {
  [[ $EUID -eq 0 ]] || die "needs root (network namespaces, cgroups, iptables, mounts)"
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl kube-router provisioner containerd nsenter iptables ${CLUSTER_ONLY:+-} helm; do
    [[ "$b" == - ]] && break
    command -v "$b" >/dev/null || die "$b is missing from $BIN: run 'make cluster-up' (it builds everything first)"
  done
  [[ -d "$IMAGES" ]] || die "no images in $IMAGES: run 'make cluster-up'"
  : "${IMAGE_TAG:?IMAGE_TAG: tag of the service images}"
  if [[ -d "$STATE" || -d "$RUN" || -e "$SHARED/up/$CLUSTER_NAME" ]] || ip link show "$BRIDGE" >/dev/null 2>&1 || cluster_cgroups | grep -q .; then
    log "a cluster named $CLUSTER_NAME (or what is left of one) is here: removing it first"
    down
  fi
  if ip route show to match "$BRIDGE_IP" | grep -qv '^default'; then
    die "$NET.0/24 is already routed on this host: choose another node network with CLUSTER_NET=10.251.X"
  fi
  mkdir -p "$STATE/logs" "$STATE/pids" "$STATE/volumes"
  shared record
  API_PORT="$(free_port)" GATEWAY_PORT="$(free_port)" INGRESS_PORT="$(free_port)"
  printf 'API_PORT=%s\nGATEWAY_PORT=%s\nINGRESS_PORT=%s\n' "$API_PORT" "$GATEWAY_PORT" "$INGRESS_PORT" >"$STATE/ports"
  # From here a failure leaves the pieces for `down` (and the logs for a look); a rerun of up cleans first.
  trap 'log "up failed: logs in $STATE/logs; make cluster-down removes what was made"' ERR
  certs
  network
  control_plane
  nodes
  addons
  if [[ -n "${CLUSTER_ONLY:-}" ]]; then
    trap - ERR
    log "CLUSTER_ONLY: the cluster without the chart"
    echo "KUBECONFIG=$KUBECONFIG"
    return
  fi
  install_chart
  routing_ready
  PROMETHEUS_URL=""
  if ! monitoring; then
    log "WARNING: the in-cluster Prometheus is not up (above: why); the cluster is up without it and no PROMETHEUS_URL"
  fi
  trap - ERR
  log "ready"
  echo "KUBECONFIG=$KUBECONFIG"
  urls
  if [[ -n "$PROMETHEUS_URL" ]]; then echo "PROMETHEUS_URL=$PROMETHEUS_URL"; fi
}

routing_ready() { kubectl -n traefik rollout status deployment/traefik --timeout 180s >&2; }

urls() { # the ways in, as up's last lines
  echo "GATEWAY_URL=http://$(node_ip n1):$GATEWAY_PORT"
  echo "INGRESS_URL=http://$(node_ip n1):$INGRESS_PORT"
}

# ---------------------------------------------------------------------------------------------------
# down

cluster_cgroups() { # the cluster's cgroup in every hierarchy where it exists
  local h
  for h in $(hierarchies); do if [[ -d "$h/$CGROUP" ]]; then echo "$h/$CGROUP"; fi; done
}

cluster_pids() { # every process of the cluster: in its cgroups, or named by its pid files
  local cg
  for cg in $(cluster_cgroups); do find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null || true; done
  if [[ -d "$STATE/pids" ]]; then
    local f p
    for f in "$STATE"/pids/*; do
      [[ -f "$f" ]] || continue
      p="$(cat "$f")"
      # A pid file outlives its process: the number counts only while it still runs our command line.
      if [[ -r "/proc/$p/cmdline" ]] && tr '\0' ' ' <"/proc/$p/cmdline" | grep -qF -- "$STATE"; then echo "$p"; fi
    done
  fi
}

stop_processes() {
  local pids deadline=$((SECONDS + 30))
  # Every process at once, as a node that dies: nothing is left to restart another, and the cluster's
  # data goes with it.
  while pids="$(cluster_pids | sort -u)" && [[ -n "$pids" ]]; do
    ((SECONDS < deadline)) || { log "warning: processes that do not die: ${pids//$'\n'/ }"; return; }
    # shellcheck disable=SC2086 # one pid per word
    kill -9 $pids 2>/dev/null || true
    sleep 0.5
  done
}

our_mounts() { # mounts under the cluster's directories, deepest first
  awk '{print $5}' /proc/self/mountinfo | { grep -E "^($STATE|$RUN)/" || true; } | sort -r
}

unmount_all() {
  local m
  our_mounts | while IFS= read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}

remove_network() {
  local n
  for n in "${NODES[@]}"; do
    if [[ -e "/run/netns/$(node_name "$n")" ]]; then ip netns del "$(node_name "$n")" || true; fi
    ip link del "$(node_name "$n")" 2>/dev/null || true # gone with its peer, unless the namespace was
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
  if iptables -n -L "$CHAIN" >/dev/null 2>&1; then
    while iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j "$CHAIN" 2>/dev/null; do :; done
    while iptables -D INPUT -i "$BRIDGE" -j "$CHAIN" 2>/dev/null; do :; done
    iptables -F "$CHAIN"
    iptables -X "$CHAIN"
  fi
}

restore_sysctls() {
  [[ -f "$SHARED/sysctls" ]] || return 0
  local line rc=0
  while IFS= read -r line; do
    echo "${line#*=}" >"$(sysctl_path "${line%%=*}")" 2>/dev/null || { log "could not restore ${line%%=*}"; rc=1; }
  done <"$SHARED/sysctls"
  return "$rc"
}

remove_files() {
  local cg f
  # The cgroups (their processes are gone), deepest first.
  for cg in $(cluster_cgroups); do find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true; done
  # The shims' sockets, named in each task's bundle; the kubelet's log links into the nodes' log
  # directories; the CNI cache entries of this cluster's network.
  if [[ -d "$RUN" ]]; then
    find "$RUN" -path '*/io.containerd.runtime.v2.task/*' -name address -exec cat {} + 2>/dev/null |
      sed 's|^unix://||' | while IFS= read -r f; do
        if [[ "$f" == /run/containerd/s/* ]]; then rm -f "$f"; fi
      done
  fi
  if [[ -d /var/log/containers ]]; then
    find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete
  fi
  if [[ -d /var/lib/cni ]]; then
    find /var/lib/cni -maxdepth 2 -name "$CLUSTER_NAME-*" -delete 2>/dev/null || true
  fi
  rm -rf "$RUN"
}

# leftovers: what of the cluster is still here, one line each (nothing when down is complete).
leftovers() {
  local p n
  for p in $(cluster_pids | sort -u); do echo "process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"; done
  # Only a check (nothing is killed by it): a process that runs from the cluster's directories.
  pgrep -a -f "$STATE/|$RUN/" | grep -v " pgrep " | sed 's/^/process (by path) /' || true
  for p in $(cluster_cgroups); do echo "cgroup $p"; done
  our_mounts | sed 's/^/mount /'
  for n in "${NODES[@]}"; do
    if [[ -e "/run/netns/$(node_name "$n")" ]]; then echo "network namespace $(node_name "$n")"; fi
    if ip link show "$(node_name "$n")" >/dev/null 2>&1; then echo "link $(node_name "$n")"; fi
  done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then echo "link $BRIDGE"; fi
  if iptables -n -L "$CHAIN" >/dev/null 2>&1; then echo "iptables chain $CHAIN"; fi
  iptables -S 2>/dev/null | grep -F -- "-j $CHAIN" | sed 's/^/iptables rule /' || true
  if [[ -e "$SHARED/up/$CLUSTER_NAME" ]]; then echo "file $SHARED/up/$CLUSTER_NAME"; fi
  # The last cluster's down removes SHARED once the tunables are back.
  if [[ -d "$SHARED" && ! -d "$SHARED/up" ]]; then
    local line
    while IFS= read -r line; do
      [[ "$(cat "$(sysctl_path "${line%%=*}")")" == "${line#*=}" ]] || echo "sysctl ${line%%=*} is $(cat "$(sysctl_path "${line%%=*}")"), was ${line#*=}"
    done <"$SHARED/sysctls"
  fi
  if [[ -d /var/log/containers ]]; then find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" | sed 's/^/file /'; fi
  if [[ -d /var/lib/cni ]]; then find /var/lib/cni -maxdepth 2 -name "$CLUSTER_NAME-*" | sed 's/^/file /'; fi
  if [[ -e "$RUN" ]]; then echo "directory $RUN"; fi
}

down() {
  [[ $EUID -eq 0 ]] || die "needs root"
  log "stopping the cluster $CLUSTER_NAME"
  stop_processes
  unmount_all
  remove_network
  remove_files
  shared release
  local left
  left="$(leftovers)"
  if [[ -n "$left" ]]; then
    printf '%s\n' "$left" >"$STATE-leftovers.txt"
    log "left behind by the cluster:"
    printf '%s\n' "$left" >&2
    # STATE stays (its logs, and anything still mounted under it is never deleted through).
    die "cleanup incomplete; the list is kept in $STATE-leftovers.txt, the logs in $STATE/logs"
  fi
  rm -rf "$STATE" "$STATE-leftovers.txt"
  log "removed: nothing of the cluster $CLUSTER_NAME is left"
}

# ---------------------------------------------------------------------------------------------------
# a node lost and back (make test-cluster-disruption)

# kill_node N: node N dies at once: every process in its cgroup (kubelet, containerd and its shims,
# kube-proxy, kube-router and every process of its pods) killed together, its link down.
kill_node() {
  local n="$1" h pids
  [[ -d "$STATE/nodes/$n" ]] || die "no node $n in $STATE"
  ip link set "$(node_name "$n")" down
  for h in $(hierarchies); do
    if [[ -d "$h/$CGROUP/$n" && -f "$h/$CGROUP/$n/freezer.state" ]]; then
      # Frozen first, so that nothing of the node runs on between the kills.
      echo FROZEN >"$h/$CGROUP/$n/freezer.state"
    fi
  done
  while pids="$(for h in $(hierarchies); do find "$h/$CGROUP/$n" -name cgroup.procs -exec cat {} + 2>/dev/null; done | sort -u)" && [[ -n "$pids" ]]; do
    # shellcheck disable=SC2086 # one pid per word
    kill -9 $pids 2>/dev/null || true
    for h in $(hierarchies); do
      if [[ -f "$h/$CGROUP/$n/freezer.state" ]]; then echo THAWED >"$h/$CGROUP/$n/freezer.state"; fi
    done
    sleep 0.2
  done
  log "node $(node_name "$n") killed: its processes gone, its link down"
}

# start_node N: node N back: its link up, then containerd, the kubelet and the proxies as up started them.
start_node() {
  local n="$1"
  [[ -d "$STATE/nodes/$n" ]] || die "no node $n in $STATE"
  # shellcheck disable=SC1091 # written by up
  . "$STATE/ports"
  ip link set "$(node_name "$n")" up
  start_runtime "$n"
  wait_for 30 "containerd of $n answering" ctr --address "$RUN/$n/containerd.sock" version
  start_kubelet "$n"
  start_proxies "$n"
  wait_for 180 "node $(node_name "$n") Ready" bash -c "kubectl get node $(node_name "$n") -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
}

# A shape replaces what it changes (NODES, RELEASE, NAMESPACE, and the functions addons, install_chart,
# routing_ready, monitoring and urls); down and the node commands work on it as they are.
if [[ -n "$CLUSTER_SHAPE" ]]; then
  [[ -f "$REPO/deploy/k8s/cluster/shapes/$CLUSTER_SHAPE.sh" ]] || die "CLUSTER_SHAPE=$CLUSTER_SHAPE: no deploy/k8s/cluster/shapes/$CLUSTER_SHAPE.sh"
  # shellcheck disable=SC1090 # chosen at run time
  . "$REPO/deploy/k8s/cluster/shapes/$CLUSTER_SHAPE.sh"
fi

case "${1:-}" in
  up) up ;;
  down) down ;;
  name) echo "$CLUSTER_NAME" ;;
  state) echo "$STATE" ;;
  kill-node) kill_node "${2:?which node: n1, n2 or n3}" ;;
  start-node) start_node "${2:?which node: n1, n2 or n3}" ;;
  *) echo "usage: $0 up|down|name|state|kill-node N|start-node N" >&2; exit 2 ;;
esac
