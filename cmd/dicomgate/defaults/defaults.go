// Package defaults holds what `dicomgate serve` runs on when started without
// --policy and --cluster: the demo policy and its companion settings.
package defaults

import _ "embed"

// Policy is the demo policy (sdk/policy JSON). Known callers (ECHOSCU,
// STORESCU, DEMO-SCU) calling PACS_A or PACS_B are routed to the clusters
// pacs-a and pacs-b; a C-ECHO-only association to DICOMGATE is allowed to the
// default cluster (pacs-a); everything else is denied with an
// A-ASSOCIATE-RJ from the rejector (cluster ClusterRejector, which serve runs
// in-process). Its rejectKey is a placeholder: serve replaces it with a
// random key at every start (DemoRejectKeyPlaceholder).
//
//go:embed policy.json
var Policy []byte

// Demo cluster names and the AE titles of the demo acceptors behind them.
const (
	ClusterA       = "pacs-a"
	ClusterB       = "pacs-b"
	AETitleA       = "PACS_A"
	AETitleB       = "PACS_B"
	AllowAETitle   = "DICOMGATE"
	DefaultCluster = ClusterA
	// ClusterRejector is the demo policy's rejectCluster.
	ClusterRejector = "rejector"
	// DemoRejectKeyPlaceholder is the demo policy's rejectKey as embedded.
	DemoRejectKeyPlaceholder = "ZGVtbzogc2VydmUgcmVwbGFjZXMgdGhpcyBrZXkgYXQgc3RhcnQ="
)

// EarlyDataBytes is the tcp_proxy max_early_data_bytes the demo uses so the
// filter can route on the A-ASSOCIATE-RQ (Envoy's and Istio's default, 0,
// only allows allow/deny).
const EarlyDataBytes = 1 << 20
