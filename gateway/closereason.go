package gateway

import (
	"log/slog"
	"strconv"
	"strings"
)

// CloseReason is why the gateway closed a client connection: the reason
// label of dicomgate_gateway_downstream_closes_total and the word after
// "closing client:" in the gateway's log line about the connection. Reasons
// are snake_case (like Envoy's stat names) and name what happened; the
// README's "Close reasons" table (and docs/troubleshooting.md) says what
// each means and what the operator does about it.
//
// A connection the client closes itself (the usual end of an association is
// the upstream's close after the A-RELEASE-RP, see CloseUpstreamClosed) is
// not counted.
type CloseReason string

// The close reasons. Reasons lists them all; a new one goes there and into
// both docs tables (TestCloseReasonsDocumented).
const (
	// CloseUpstreamClosed: the upstream (the PACS, or the rejector after
	// its A-ASSOCIATE-RJ) closed its connection, so tcp_proxy closed the
	// client's: the normal end of an association. Not logged.
	CloseUpstreamClosed CloseReason = "upstream_closed"
	// CloseFilterClosed: the dicomgate filter closed the connection (a policy
	// deny with respond close, not DICOM, malformed, too large, no
	// A-ASSOCIATE-RQ before the inspect deadline); the filter's audit line
	// with the same conn says why.
	CloseFilterClosed CloseReason = "filter_closed"
	// CloseFilterClosedUpstream: the filter closed the upstream side
	// (proxy_close_upstream), so tcp_proxy closed the client too.
	CloseFilterClosedUpstream CloseReason = "filter_closed_upstream"
	// CloseFilterFailed: the filter's VM failed (a trap) and the failure
	// policy closes its connections (FAIL_CLOSE; Envoy's failStream).
	CloseFilterFailed CloseReason = "filter_failed"
	// CloseNoRoute: tcp_proxy had no cluster: the filter did not route the
	// association and there is no default cluster (Envoy NoRouteFound).
	CloseNoRoute CloseReason = "no_route"
	// CloseUnknownCluster: the route names a cluster the gateway does not
	// define (Envoy NoClusterFound; also counted in no_cluster_total).
	CloseUnknownCluster CloseReason = "unknown_cluster"
	// CloseUpstreamConnectFailed: connecting to the chosen cluster's endpoint
	// failed (refused, unreachable, ConnectTimeout); the log line names the
	// cluster and endpoint (Envoy UpstreamConnectionFailure).
	CloseUpstreamConnectFailed CloseReason = "upstream_connect_failed"
	// CloseIdleTimeout: neither side sent a byte for Config.IdleTimeout.
	CloseIdleTimeout CloseReason = "idle_timeout"
	// CloseTLSHandshakeFailed: the TLS handshake failed (no or bad client
	// certificate, protocol error, the client left during it).
	CloseTLSHandshakeFailed CloseReason = "tls_handshake_failed"
	// CloseTLSHandshakeTimeout: the TLS handshake took longer than
	// Config.HandshakeTimeout.
	CloseTLSHandshakeTimeout CloseReason = "tls_handshake_timeout"
	// CloseConnectionLimit: Config.MaxConnections were open; the connection
	// was closed at accept, before TLS and without a filter.
	CloseConnectionLimit CloseReason = "connection_limit"
	// CloseShutdown: the gateway shut down before the connection ended (the
	// drain deadline passed, a second signal, or Close).
	CloseShutdown CloseReason = "shutdown"
	// CloseOther: a close the filter host asked for with a reason this
	// gateway does not know (a newer wasm/host); the log line quotes it.
	CloseOther CloseReason = "other"
)

// Reasons lists every CloseReason, in exposition order; each has a series in
// downstream_closes_total from the start, at 0.
var Reasons = []CloseReason{
	CloseUpstreamClosed, CloseFilterClosed, CloseFilterClosedUpstream, CloseFilterFailed, CloseNoRoute,
	CloseUnknownCluster, CloseUpstreamConnectFailed, CloseIdleTimeout, CloseTLSHandshakeFailed,
	CloseTLSHandshakeTimeout, CloseConnectionLimit, CloseShutdown, CloseOther,
}

// hostCloseReasons maps the close reasons wasm/host passes to
// Transport.CloseDownstream (Envoy's words for them) to the gateway's.
// TestHostCloseReasonsMapped checks every reason the host source can pass
// is here.
var hostCloseReasons = map[string]CloseReason{
	"upstream_closed":         CloseUpstreamClosed,
	"wasm_downstream_close":   CloseFilterClosed,
	"wasm_upstream_close":     CloseFilterClosedUpstream,
	"wasm_fail_stream":        CloseFilterFailed,
	"NoRouteFound":            CloseNoRoute,
	"NoClusterFound":          CloseUnknownCluster,
	"upstream_connect_failed": CloseUpstreamConnectFailed,
}

// parseCloseReason splits a close reason as the host passes it ("reason" or
// "reason: detail", the reason either the gateway's own word, which
// connectFailed hands to the host, or the host's) into the gateway's reason
// and the detail. An unknown reason is CloseOther with the whole text as
// detail.
func parseCloseReason(s string) (CloseReason, string) {
	key, detail, _ := strings.Cut(s, ":")
	detail = strings.TrimSpace(detail)
	for _, r := range Reasons {
		if key == string(r) && r != CloseOther {
			return r, detail
		}
	}
	if r, ok := hostCloseReasons[key]; ok {
		return r, detail
	}
	return CloseOther, "unknown close reason " + strconv.Quote(s)
}

// level is the level of the log line about a close with this reason:
// closes that need the operator are warnings, the filter's own closes are
// explained by the filter's lines and are info.
func (r CloseReason) level() slog.Level {
	switch r {
	case CloseUpstreamClosed, CloseFilterClosed, CloseFilterClosedUpstream, CloseIdleTimeout:
		return slog.LevelInfo
	case CloseFilterFailed:
		return slog.LevelError
	}
	return slog.LevelWarn
}

// hint is what the log line adds after a reason that carries no detail.
func (r CloseReason) hint() string {
	switch r {
	case CloseNoRoute:
		return "tcp_proxy has no cluster: the policy did not route the association and no default cluster is configured (--default-cluster)"
	case CloseFilterFailed:
		return "the filter VM failed under FAIL_CLOSE; see its critical log line (restart, or --fail-policy reload)"
	case CloseFilterClosed:
		return "the filter closed it; its audit line with this conn says why"
	case CloseFilterClosedUpstream:
		return "the filter closed the upstream connection"
	}
	return ""
}
