package gateway

import (
	"io"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/dicomgate/dicomgate/wasm/host/promtext"
)

// Metrics are the gateway's own counters (the plugin's metrics live in the
// host's registry). They follow Envoy's listener/tcp_proxy stats in meaning:
// downstream_cx_total, downstream_cx_active, ssl.handshake failures,
// upstream_cx_connect_fail, downstream_cx_no_route, *_cx_rx/tx_bytes_total.
type Metrics struct {
	ConnectionsTotal         atomic.Uint64 // accepted client connections
	ConnectionsActive        atomic.Int64  // client connections not yet fully closed
	TLSHandshakeFailures     atomic.Uint64 // TLS handshakes that failed or timed out
	NoCluster                atomic.Uint64 // connect requests naming a cluster the gateway does not define
	IdleTimeouts             atomic.Uint64 // connections closed by Config.IdleTimeout
	DownstreamRxBytes        atomic.Uint64 // bytes read from clients
	DownstreamTxBytes        atomic.Uint64 // bytes written to clients
	UpstreamRxBytes          atomic.Uint64 // bytes read from upstreams
	UpstreamTxBytes          atomic.Uint64 // bytes written to upstreams
	AcceptErrors             atomic.Uint64 // Accept errors retried after a back-off (EMFILE, ENFILE, ENOBUFS, …)
	ConnectionsOverflow      atomic.Uint64 // connections closed at accept because MaxConnections were open
	BudgetPauses             atomic.Uint64 // reads delayed because MaxBufferedBytes was reached
	MemoryReturns            atomic.Uint64 // times freed memory was returned to the OS after a flood
	bufferedFn               func() int64  // Gateway.BufferedBytes, set by New
	mu                       sync.Mutex
	upstreamConnects         map[string]uint64
	upstreamConnectFailures  map[string]uint64
	downstreamCloseByReasons map[string]uint64
}

// countClose counts a client connection the gateway closed, by reason.
func (m *Metrics) countClose(r CloseReason) { m.incCluster(&m.downstreamCloseByReasons, string(r)) }

// DownstreamCloses returns the client connections the gateway closed with
// reason r.
func (m *Metrics) DownstreamCloses(r CloseReason) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.downstreamCloseByReasons[string(r)]
}

func (m *Metrics) buffered() int64 {
	if m.bufferedFn == nil {
		return 0
	}
	return m.bufferedFn()
}

func (m *Metrics) incCluster(mp *map[string]uint64, cluster string) {
	m.mu.Lock()
	if *mp == nil {
		*mp = map[string]uint64{}
	}
	(*mp)[cluster]++
	m.mu.Unlock()
}

// defineCluster exports cluster's per-cluster series from the start, at 0,
// as Envoy defines cluster.<name>.* stats when the cluster is added: a
// missing series would read as "never happened" to a dashboard.
func (m *Metrics) defineCluster(cluster string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mp := range []*map[string]uint64{&m.upstreamConnects, &m.upstreamConnectFailures} {
		if *mp == nil {
			*mp = map[string]uint64{}
		}
		if _, ok := (*mp)[cluster]; !ok {
			(*mp)[cluster] = 0
		}
	}
}

// UpstreamConnectFailures returns the number of failed upstream connects to
// cluster (timeouts, refusals; unknown clusters count as NoCluster instead).
func (m *Metrics) UpstreamConnectFailures(cluster string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.upstreamConnectFailures[cluster]
}

// UpstreamConnects returns the number of successful upstream connects to cluster.
func (m *Metrics) UpstreamConnects(cluster string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.upstreamConnects[cluster]
}

// WritePrometheus writes the metrics in the Prometheus text exposition format
// (version 0.0.4, through wasm/host/promtext, the host's writer), every name
// prefixed with dicomgate_gateway_.
func (m *Metrics) WritePrometheus(w io.Writer) error {
	pw := promtext.NewWriter(w)
	one := func(name string, typ promtext.Type, help string, v string) {
		pw.Family("dicomgate_gateway_"+name, typ, help)
		pw.Sample("dicomgate_gateway_"+name, nil, v)
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	one("connections_total", promtext.Counter, "Client connections accepted.", u(m.ConnectionsTotal.Load()))
	one("connections_active", promtext.Gauge, "Client connections open.", strconv.FormatInt(m.ConnectionsActive.Load(), 10))
	one("tls_handshake_failures_total", promtext.Counter, "TLS handshakes that failed or timed out.", u(m.TLSHandshakeFailures.Load()))
	one("no_cluster_total", promtext.Counter, "Connections closed because the route names a cluster the gateway does not define (also close reason unknown_cluster in downstream_closes_total; no route at all is reason no_route).", u(m.NoCluster.Load()))
	one("idle_timeouts_total", promtext.Counter, "Connections closed after IdleTimeout without traffic.", u(m.IdleTimeouts.Load()))
	one("downstream_rx_bytes_total", promtext.Counter, "Bytes received from clients.", u(m.DownstreamRxBytes.Load()))
	one("downstream_tx_bytes_total", promtext.Counter, "Bytes sent to clients.", u(m.DownstreamTxBytes.Load()))
	one("upstream_rx_bytes_total", promtext.Counter, "Bytes received from upstreams.", u(m.UpstreamRxBytes.Load()))
	one("upstream_tx_bytes_total", promtext.Counter, "Bytes sent to upstreams.", u(m.UpstreamTxBytes.Load()))
	one("accept_errors_total", promtext.Counter, "Accept errors (EMFILE, ENFILE, ENOBUFS, ...) retried after a back-off.", u(m.AcceptErrors.Load()))
	one("connections_overflow_total", promtext.Counter, "Connections closed at accept because MaxConnections were open (Envoy downstream_cx_overflow).", u(m.ConnectionsOverflow.Load()))
	one("buffer_budget_pauses_total", promtext.Counter, "Reads delayed because the buffered-bytes budget was reached.", u(m.BudgetPauses.Load()))
	one("memory_returns_total", promtext.Counter, "Times freed memory was returned to the OS after a flood.", u(m.MemoryReturns.Load()))
	one("buffered_bytes", promtext.Gauge, "Bytes held for filters and queued for writing, all connections.", strconv.FormatInt(m.buffered(), 10))
	m.mu.Lock()
	labelled := func(name, help, label string, mp map[string]uint64) {
		pw.Family("dicomgate_gateway_"+name, promtext.Counter, help)
		keys := make([]string, 0, len(mp))
		for k := range mp {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			pw.Sample("dicomgate_gateway_"+name, []promtext.Label{{Name: label, Value: k}}, u(mp[k]))
		}
	}
	labelled("upstream_connections_total", "Upstream connections established, by cluster.", "cluster", m.upstreamConnects)
	labelled("upstream_connect_failures_total", "Upstream connect attempts that failed, by cluster.", "cluster", m.upstreamConnectFailures)
	closes := make(map[string]uint64, len(Reasons))
	for _, r := range Reasons { // every reason from the start, at 0
		closes[string(r)] = m.downstreamCloseByReasons[string(r)]
	}
	labelled("downstream_closes_total", "Client connections the gateway closed (not the client), by reason (gateway/README.md, Close reasons).", "reason", closes)
	m.mu.Unlock()
	return pw.Flush()
}
