// Package render proves the Kubernetes artefacts of moviebag without a cluster:
// every Helm chart is linted and rendered with its default and ci/ values, each
// rendered object is decoded strictly into its typed API struct and checked
// against the project's policies, the workflows go through actionlint, skaffold
// renders the charts, and everything is dry-run against a real kube-apiserver
// (with etcd) started by the tests. The tools come from `make deps-k8s`.
//
// It is its own module (not in go.work) so that the Kubernetes API modules stay
// out of the services' dependency graph: run it with
// `cd deploy/k8s/render && GOWORK=off go test ./...`, or `make test-k8s`.
package render
