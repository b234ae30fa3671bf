// Package filtertable is the behaviour table of the dicomgate network filter:
// a list of cases expressed only in what Envoy can observe (was the client
// connection closed, which cluster tcp_proxy picked, which bytes went
// upstream and with what content, metrics, log lines, properties), plus the
// [Runner] interface that an implementation of the filter's host must provide
// and [Run], which drives every case through a Runner.
//
// Two runners use the same table: the native one in filters/dicomgate (the
// filter compiled for the test binary, driven through the SDK's proxytest
// emulator) and the one in filters/dicomgate/wasmtest driving the compiled
// module (build/dicomgate.wasm) through wasm/host, the Envoy-faithful host. Expectations follow Envoy's L4 chain as summarised in
// docs/internals.md ("Envoy's L4 chain and the two connect modes"); each
// case names the Envoy source its behaviour comes from.
package filtertable

import (
	"strings"
	"time"

	"github.com/dicomgate/dicomgate/sdk/metricname"
)

// DefaultCluster is the cluster configured in the tcp_proxy that follows the
// filter in every case (tcp_proxy "cluster"); routed associations must pick
// another one through the envoy.tcp_proxy.cluster filter state.
const DefaultCluster = "dicom-default"

// Level is a proxy-wasm log level name as Envoy prints it.
type Level string

// Log levels used by the table.
const (
	LevelDebug Level = "debug"
	LevelInfo  Level = "info"
	LevelWarn  Level = "warning"
	LevelError Level = "error"
)

// Listener describes the filter chain a Runner builds: the dicomgate filter
// followed by tcp_proxy with cluster [DefaultCluster].
type Listener struct {
	// NoEarlyData leaves tcp_proxy's max_early_data_bytes unset (Envoy's and
	// Istio's default): tcp_proxy disables downstream reads when the chain
	// is built and re-enables them once the upstream connected
	// (tcp_proxy.cc Filter::initialize / onUpstreamConnection), so a filter
	// that pauses in proxy_on_new_connection never receives data. When
	// false, max_early_data_bytes is set (receive_before_connect, Envoy ≥
	// 1.37) and data flows before the upstream connects.
	NoEarlyData bool
}

// Runner is one way of running the filter under an Envoy-like host.
type Runner interface {
	// Configure starts a fresh plugin (new VM, zero metrics, no logs) with
	// the plugin configuration config (the JSON Istio passes as
	// pluginConfig) on a listener l. It returns a non-nil error when the
	// plugin rejected the configuration (proxy_on_configure returned
	// false). The upstream connects as soon as tcp_proxy asks for it.
	Configure(config []byte, l Listener) error
	// NewConn accepts a downstream connection with the given properties and
	// runs the filter chain's onNewConnection (Envoy
	// filter_manager_impl.cc initializeReadFilters).
	NewConn(props ConnProps) (Conn, error)
	// Advance moves the host clock (WASI clock_time_get) forward by d and
	// then runs proxy_on_tick on the plugin's root context once, provided
	// the plugin set a tick period (Envoy wasm.cc Wasm::tickHandler).
	Advance(d time.Duration)
	// Metric returns the current value of a Prometheus series as Envoy
	// exports it (see package metricname), e.g.
	// `dicomgate_denied_total{reason="eof"}`, and whether the plugin
	// defined that metric at all.
	Metric(series string) (value uint64, defined bool)
	// Logs returns every line the plugin logged at level so far, in order.
	Logs(level Level) []string
}

// Conn is one downstream connection of a Runner.
type Conn interface {
	// Data appends chunk to the connection's read buffer and runs the filter
	// chain over the whole unconsumed buffer (Envoy re-delivers it on every
	// read: filter_manager_impl.cc onContinueReading); eos is the client's
	// half-close. Data on a closed connection is ignored.
	Data(chunk []byte, eos bool)
	// ClientClose reports that the client closed the connection without a
	// half-close first (Envoy Network::ConnectionEvent::RemoteClose:
	// proxy_on_downstream_connection_close(REMOTE), then proxy_on_done,
	// proxy_on_log, proxy_on_delete; context.cc Context::onEvent). Later
	// Data calls are ignored.
	ClientClose()
	// Observe returns what Envoy shows for the connection now.
	Observe() Observed
}

// ConnProps are the downstream connection properties the host answers to
// proxy_get_property (Envoy expr context.cc ConnectionLookup); empty strings
// are absent properties.
type ConnProps struct {
	// Source is source.address, "ip:port".
	Source string
	// MTLS is connection.mtls (TLS terminated and a client certificate was
	// presented and verified). It is true exactly when SHA256 is set, as in
	// Envoy (Run refuses a case where they disagree): the filter tells mTLS
	// from the digest alone.
	MTLS bool
	// URISAN, DNSSAN, Subject and SHA256 are the peer certificate
	// properties connection.uri_san_peer_certificate,
	// connection.dns_san_peer_certificate, connection.subject_peer_certificate
	// and connection.sha256_peer_certificate_digest.
	URISAN, DNSSAN, Subject, SHA256 string
}

// Observed is the Envoy-visible state of a connection.
type Observed struct {
	// Closed reports that the filter closed the client connection
	// (proxy_close_stream; Envoy context.cc Context::closeStream).
	Closed bool
	// UpstreamConnect reports that tcp_proxy ran its onNewConnection, i.e.
	// picked a route and started connecting upstream.
	UpstreamConnect bool
	// Cluster is the cluster tcp_proxy picked: the envoy.tcp_proxy.cluster
	// filter state if the filter set it, else DefaultCluster ("" while
	// UpstreamConnect is false).
	Cluster string
	// Forwarded is every byte tcp_proxy moved upstream, in order.
	Forwarded []byte
	// Properties are the values the filter stored with proxy_set_property,
	// keyed by property name (e.g. "dicom.rule"); Envoy keeps them as filter
	// state "wasm.<name>" (context.cc Context::setProperty).
	Properties map[string]string
}

// EncodeSeries turns a Prometheus series as [Runner.Metric] takes it,
// `name{k="v",...}`, into the proxy-wasm metric name the filter defines
// (labels encoded in the name, see package metricname); a series without
// labels is its name.
func EncodeSeries(series string) string {
	i := strings.IndexByte(series, '{')
	if i < 0 {
		return series
	}
	var kv []string
	for _, p := range strings.Split(strings.TrimSuffix(series[i+1:], "}"), ",") {
		k, v, _ := strings.Cut(p, "=")
		kv = append(kv, k, strings.Trim(v, `"`))
	}
	return metricname.Encode(series[:i], kv...)
}
