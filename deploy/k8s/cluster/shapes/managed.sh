# shellcheck shell=bash
# The "managed" shape of the test cluster: sourced by deploy/k8s/cluster/cluster.sh when CLUSTER_SHAPE=managed
# (`make cluster-up CLUSTER_SHAPE=managed`, and the second half of `make test-cluster`). The same machinery
# (nodes in network namespaces of their own, kube-router, CoreDNS, a volume provisioner) shaped as a managed
# cluster is, where every name the chart's defaults and the default cluster use is different:
#
#   - two nodes, NAME-n1 and NAME-n2 (NAME: CLUSTER_NAME, by default "managed");
#   - no Gateway API CRDs at all, as on EKS and AKS: the chart renders no HTTPRoute and its NOTES say so;
#   - the routing controller: Traefik with its Kubernetes Ingress provider only, in namespace `edge`, its
#     pods labelled app=edge-proxy, serving the IngressClass `public` on INGRESS_URL (shapes/managed/edge.yaml);
#   - cluster DNS: CoreDNS labelled app.kubernetes.io/name=coredns (not k8s-app=kube-dns);
#   - MongoDB (FerretDB) and Redis outside the chart, in namespace `stores`: Redis as a primary with a
#     password behind a Sentinel with a password of its own (shapes/managed/stores.yaml), reached through
#     externalStorage; the URIs in an existing Secret;
#   - the signing key from an existing Secret (made here with openssl, as the README says);
#   - Prometheus in namespace `observability`, selecting ServiceMonitors and PrometheusRules by the label
#     release=kps as kube-prometheus-stack installed as release `kps` does (shapes/managed/prometheus.yaml);
#   - the umbrella chart installed as release `mb` in namespace `apps`, with values only
#     (shapes/managed/values.yaml): no template is changed for this shape.
#
# Its last lines are KUBECONFIG=, INGRESS_URL= and PROMETHEUS_URL= (no GATEWAY_URL: there is no Gateway API).
#
# The Prometheus Operator cannot be built here (K8S-TOOLS.md), so kps_sync below does what it would do for a
# Prometheus with serviceMonitorSelector and ruleSelector {matchLabels: {release: kps}}: it reads the
# ServiceMonitors and PrometheusRules that carry the label (and only those) from the cluster and writes them
# as Prometheus' scrape configurations and rule files, with the operator's job names and target labels, and
# the discovery Role in each namespace they scrape. A monitor or a rule without the label is not seen.

SHAPE_DIR="$REPO/deploy/k8s/cluster/shapes/managed"
# shellcheck disable=SC2034 # cluster.sh's variables, which this shape replaces
NODES=(n1 n2)
RELEASE=mb
NAMESPACE=apps
STORES=stores
PROMETHEUS_NS=observability
PROMETHEUS_SELECTOR=release=kps
# The signing key's file name in its Secret: its kid.
SIGNING_KID=apps-2026-12

# shape_apply FILE: a manifest of the shape, with the first node's name and address and the Ingress port.
shape_apply() {
  sed -e "s|\${NODE1}|$(node_name n1)|g; s|\${NODE1_IP}|$(node_ip n1)|g; s|\${INGRESS_PORT}|$INGRESS_PORT|g" \
    "$SHAPE_DIR/$1" | kubectl apply -f - >/dev/null
}

addons() {
  log "CoreDNS (pods app.kubernetes.io/name=coredns), the default StorageClass; no Gateway API; Traefik (Ingress only) in namespace edge on $(node_name n1)"
  local m
  for m in storage coredns; do
    sed -e "s|\${IMAGE_COREDNS}|moviebag.local/coredns:1|; s|\${DNS_IP}|$DNS_IP|" \
      -e "s|k8s-app: kube-dns|app.kubernetes.io/name: coredns|" \
      "$REPO/deploy/k8s/cluster/manifests/$m.yaml" | kubectl apply -f - >/dev/null
  done
  shape_apply edge.yaml
  kubectl -n kube-system rollout status deployment/coredns --timeout 180s >&2
}

install_chart() {
  log "MongoDB (FerretDB) and Redis (a primary and a Sentinel, each with a password) in namespace $STORES"
  local redis_pass sentinel_pass
  redis_pass="$(openssl rand -hex 16)" sentinel_pass="$(openssl rand -hex 16)"
  kubectl create namespace "$STORES" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl label namespace "$STORES" --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null
  kubectl -n "$STORES" create secret generic redis-auth --from-literal=password="$redis_pass" \
    --from-literal=sentinel-password="$sentinel_pass" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  shape_apply stores.yaml

  log "the ServiceMonitor and PrometheusRule CRDs (as kube-prometheus-stack installs them)"
  : "${PROMETHEUS_OPERATOR_CRDS:?PROMETHEUS_OPERATOR_CRDS: the prometheus-operator CRDs directory}"
  kubectl apply --server-side -f "$PROMETHEUS_OPERATOR_CRDS/monitoring.coreos.com_servicemonitors.yaml" \
    -f "$PROMETHEUS_OPERATOR_CRDS/monitoring.coreos.com_prometheusrules.yaml" >/dev/null
  kubectl wait --for condition=Established crd --all --timeout 60s >/dev/null

  log "namespace $NAMESPACE (Pod Security: restricted): the storage Secret and the signing key, made before the chart"
  kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl label namespace "$NAMESPACE" --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null
  # go-redis' Sentinel form: the URL's user information is the Sentinel's, the primary's password is the
  # password parameter.
  kubectl -n "$NAMESPACE" create secret generic mb-stores \
    --from-literal=MONGO_URI="mongodb://docdb.$STORES.svc.cluster.local:27017/" \
    --from-literal=REDIS_URL="redis://:$sentinel_pass@sentinel.$STORES.svc.cluster.local:26379/0?master_name=primary&password=$redis_pass" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$STATE/$SIGNING_KID.pem" 2>/dev/null)
  kubectl -n "$NAMESPACE" create secret generic mb-jwt-keys --from-file="$STATE/$SIGNING_KID.pem" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  rm -f "$STATE/$SIGNING_KID.pem"
  kubectl -n "$STORES" rollout status deployment --timeout 180s >&2

  log "installing the umbrella chart as release $RELEASE into namespace $NAMESPACE (values: deploy/k8s/cluster/shapes/managed/values.yaml)"
  rm -rf "$STATE/charts" && mkdir -p "$STATE/charts" && cp -r "$REPO/helm/." "$STATE/charts/"
  helm dependency build "$STATE/charts/moviebag" >/dev/null
  helm upgrade --install "$RELEASE" "$STATE/charts/moviebag" --namespace "$NAMESPACE" \
    --values "$SHAPE_DIR/values.yaml" --set-string "auth.image.tag=$IMAGE_TAG,movies.image.tag=$IMAGE_TAG" \
    --wait --timeout 5m >&2
}

routing_ready() { kubectl -n edge rollout status deployment/edge-proxy --timeout 180s >&2; }

urls() { echo "INGRESS_URL=http://$(node_ip n1):$INGRESS_PORT"; }

# kps_sync: the Prometheus Operator's work for a Prometheus selecting $PROMETHEUS_SELECTOR (see the top).
# The ConfigMaps prometheus-kps-scrape (one scrape_config_files file) and prometheus-kps-rules (a rule file
# per PrometheusRule, <namespace>-<name>.yaml, its spec as it is), and the Role and RoleBinding
# prometheus-kps-discovery in every namespace a ServiceMonitor scrapes. Prometheus reads them on start or
# on POST /-/reload once the kubelet has updated its volumes.
kps_sync() {
  local dir="$STATE/kps" monitors rules ns
  rm -rf "$dir" && mkdir -p "$dir/scrape" "$dir/rules"
  monitors="$(kubectl get servicemonitors -A -l "$PROMETHEUS_SELECTOR" -o json)" || return 1
  rules="$(kubectl get prometheusrules -A -l "$PROMETHEUS_SELECTOR" -o json)" || return 1
  log "Prometheus selects $(jq '.items | length' <<<"$monitors") ServiceMonitors and $(jq '.items | length' <<<"$rules") PrometheusRules by $PROMETHEUS_SELECTOR"
  # One job per endpoint of each ServiceMonitor, as the operator generates it (endpointslice discovery).
  # JSON is YAML: Prometheus reads the file as written.
  jq 'def name: gsub("[^a-zA-Z0-9_]"; "_");
    def target($kind): {source_labels: ["__meta_kubernetes_endpointslice_address_target_kind", "__meta_kubernetes_endpointslice_address_target_name"],
      separator: ";", regex: "\($kind);(.*)", replacement: "${1}", target_label: ($kind | ascii_downcase)};
    {scrape_configs: [.items[] | . as $sm | $sm.metadata.namespace as $ns |
      if ($sm.spec.selector.matchExpressions // []) != [] then error("\($ns)/\($sm.metadata.name): selector.matchExpressions is not supported here") else . end |
      $sm.spec.endpoints | to_entries[] | .key as $i | .value as $ep |
      if ($ep.port // "") == "" then error("\($ns)/\($sm.metadata.name): only endpoints with a named port are supported here") else . end |
      {job_name: "serviceMonitor/\($ns)/\($sm.metadata.name)/\($i)",
       honor_labels: ($ep.honorLabels // false),
       metrics_path: ($ep.path // "/metrics"),
       scheme: ($ep.scheme // "http"),
       kubernetes_sd_configs: [{role: "endpointslice"} +
         (if $sm.spec.namespaceSelector.any then {} else {namespaces: {names: ($sm.spec.namespaceSelector.matchNames // [$ns])}} end)],
       relabel_configs: (
         [$sm.spec.selector.matchLabels // {} | to_entries[] | {action: "keep",
           source_labels: ["__meta_kubernetes_service_label_\(.key | name)", "__meta_kubernetes_service_labelpresent_\(.key | name)"],
           regex: "(\(.value));true"}]
         + [{action: "keep", source_labels: ["__meta_kubernetes_endpointslice_port_name"], regex: $ep.port},
            target("Node"), target("Pod"),
            {source_labels: ["__meta_kubernetes_namespace"], target_label: "namespace"},
            {source_labels: ["__meta_kubernetes_service_name"], target_label: "service"},
            {source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod"},
            {source_labels: ["__meta_kubernetes_pod_container_name"], target_label: "container"},
            {action: "drop", source_labels: ["__meta_kubernetes_pod_phase"], regex: "(Failed|Succeeded)"},
            {source_labels: ["__meta_kubernetes_service_name"], target_label: "job", replacement: "${1}"}]
         + (if $sm.spec.jobLabel then [{source_labels: ["__meta_kubernetes_service_label_\($sm.spec.jobLabel | name)"],
             target_label: "job", regex: "(.+)", replacement: "${1}"}] else [] end)
         + [{target_label: "endpoint", replacement: $ep.port}])}
      + (if $ep.interval then {scrape_interval: $ep.interval} else {} end)
      + (if $ep.scrapeTimeout then {scrape_timeout: $ep.scrapeTimeout} else {} end)]}' \
    <<<"$monitors" >"$dir/scrape/servicemonitors.yaml" || return 1
  jq -r '.items[] | "\(.metadata.namespace)-\(.metadata.name)"' <<<"$rules" | while IFS= read -r f; do
    jq --arg f "$f" '.items[] | select("\(.metadata.namespace)-\(.metadata.name)" == $f) | .spec' <<<"$rules" >"$dir/rules/$f.yaml"
  done
  kubectl -n "$PROMETHEUS_NS" create configmap prometheus-kps-scrape --from-file="$dir/scrape" --dry-run=client -o yaml |
    kubectl apply -f - >/dev/null || return 1
  kubectl -n "$PROMETHEUS_NS" create configmap prometheus-kps-rules --from-file="$dir/rules" --dry-run=client -o yaml |
    kubectl apply -f - >/dev/null || return 1
  # Discovery reads EndpointSlices, Services and Pods of the scraped namespaces only.
  for ns in $(jq -r '[.items[] | .spec.namespaceSelector.matchNames // [.metadata.namespace] | .[]] | unique | .[]' <<<"$monitors"); do
    kubectl -n "$ns" create role prometheus-kps-discovery --verb get,list,watch \
      --resource services,pods,endpointslices.discovery.k8s.io --dry-run=client -o yaml | kubectl apply -f - >/dev/null || return 1
    kubectl -n "$ns" create rolebinding prometheus-kps-discovery --role prometheus-kps-discovery \
      --serviceaccount "$PROMETHEUS_NS:prometheus-kps" --dry-run=client -o yaml | kubectl apply -f - >/dev/null || return 1
  done
}

monitoring() {
  log "Prometheus in namespace $PROMETHEUS_NS, selecting ServiceMonitors and PrometheusRules by $PROMETHEUS_SELECTOR"
  # The configuration first, so that the pod starts with it.
  kubectl create namespace "$PROMETHEUS_NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null || return 1
  kps_sync || return 1
  shape_apply prometheus.yaml || return 1
  await_prometheus "$PROMETHEUS_NS" prometheus-kps
}
