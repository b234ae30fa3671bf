// Package validate checks the dicomgate Istio manifests (manifests/base and
// manifests/overlays/*) with Istio's own code: every rendered resource is
// parsed strictly into istio.io/api types and validated by the functions
// istiod's validation webhook runs (pkg/config/validation through the
// collection schemas), and then cross-checked against the dicomgate policy
// and the other resources. It is a separate Go module because istio.io/istio
// is heavy; run it with `cd manifests/validate && go test ./...`.
package validate
