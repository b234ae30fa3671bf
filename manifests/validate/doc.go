// Package validate checks the dicomgate Istio manifests (manifests/base and
// manifests/overlays/*) with Istio's own code: every rendered resource is
// parsed strictly into istio.io/api types and validated by the functions
// istiod's validation webhook runs (pkg/config/validation through the
// collection schemas), and then cross-checked against the dicomgate policy
// and the other resources. Its tests also run istiod's own xDS generation for
// the ingress gateway and serve it, completed only with what a cluster would
// provide (clusterProvides in envoy_test.go), to the real Envoy 1.40 over ADS,
// with dcmtk and Orthanc associations through it. It is a separate Go module
// because istio.io/istio is heavy; run it with `make manifests-test` or
// `cd manifests/validate && go test ./...`.
package validate
