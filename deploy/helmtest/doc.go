// Package helmtest checks airship's Helm chart (deploy/helm/airship): it
// lints and renders the chart with the helm CLI in several variants,
// decodes every rendered object strictly into its k8s.io/api type, and
// applies the objects to a real kube-apiserver started on loopback. It is a
// module of its own so that the Kubernetes libraries stay out of airship's
// go.mod; run it with `make test-helm`.
package helmtest
