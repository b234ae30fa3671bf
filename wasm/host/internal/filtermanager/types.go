package filtermanager

// The types host re-declares in its public API (host.TCPProxyConfig, host.Transport,
// host.ConnState convert to and from these), so that the public package documents its own types.
// The two cannot drift apart unnoticed: a struct conversion needs identical fields and the
// Transport assignment the same methods, so a difference fails the build.

// TCPProxyConfig is the subset of envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy the model needs.
type TCPProxyConfig struct {
	// Cluster is tcp_proxy's configured cluster (overridden by filter state envoy.tcp_proxy.cluster).
	Cluster string
	// MaxEarlyDataBytes > 0 enables receive_before_connect (tcp_proxy.cc Filter::initialize): downstream
	// reads stay enabled before the upstream connects, tcp_proxy's onNewConnection returns Continue and
	// its onData buffers the bytes, disabling reads once this many are buffered; they are flushed when
	// the upstream connects. 0 (Envoy default) disables downstream reads at chain construction until
	// the upstream is connected.
	MaxEarlyDataBytes int
	// ReadBufferLimit is the listener's per_connection_buffer_limit_bytes (0 = Envoy's default 1 MiB):
	// when the downstream read buffer holds more (e.g. the filter keeps pausing), reads are disabled
	// until it drains below half (ConnectionImpl read-buffer watermarks).
	ReadBufferLimit int
}

// Transport is how a Conn tells its owner (the socket gateway or a test) what to do. Methods are called
// from inside Conn methods (or host.Plugin.Tick), never concurrently for one Conn. They may call back into
// the Conn; such calls are queued and processed after the current event.
//
// Bytes passed to WriteUpstream and WriteDownstream are only valid during the call (they may be the
// very slice given to Conn.DownstreamData or Conn.UpstreamData): an implementation that keeps them
// must copy them.
type Transport interface {
	// ConnectUpstream: tcp_proxy picked a route; start connecting, then call Conn.UpstreamConnected or
	// Conn.UpstreamConnectFailed (unknown cluster => UpstreamConnectFailed, Envoy NoClusterFound).
	ConnectUpstream(cluster string)
	// WriteUpstream forwards client bytes (tcp_proxy onData); endStream = half-close toward upstream.
	WriteUpstream(b []byte, endStream bool)
	// WriteDownstream forwards upstream bytes to the client; endStream = half-close toward the client.
	WriteDownstream(b []byte, endStream bool)
	// CloseDownstream closes the client connection after flushing pending writes (FlushWrite); tcp_proxy
	// then closes its upstream, signalled separately with CloseUpstream.
	CloseDownstream(reason string)
	// CloseUpstream closes the upstream connection (if any). It may come while the connect requested
	// by ConnectUpstream is still in progress: abandon it (a later UpstreamConnected is ignored).
	CloseUpstream()
	// SetDownstreamReadDisabled stops (true) or resumes (false) reading from the client socket.
	SetDownstreamReadDisabled(disabled bool)
}

// ConnState is a snapshot of a Conn for tests and diagnostics.
type ConnState struct {
	ID                     uint64            // ConnInfo.ID
	Cluster                string            // cluster tcp_proxy picked ("" until tcp_proxy ran onNewConnection)
	TCPProxyInitialized    bool              // tcp_proxy.onNewConnection has run
	UpstreamConnected      bool              // UpstreamConnected was reported for the requested upstream
	DownstreamReadDisabled bool              // reads are disabled (tcp_proxy, early-data limit or read watermark)
	Buffered               int               // bytes in the downstream read buffer not yet consumed
	BytesToUpstream        uint64            // bytes handed to Transport.WriteUpstream
	BytesToDownstream      uint64            // bytes handed to Transport.WriteDownstream
	FilterInstalled        bool              // false when FAIL_OPEN skipped the filter for this connection
	FilterFailed           bool              // the VM serving this connection trapped
	Closed                 bool              // the downstream connection is closed (or being closed)
	CloseReason            string            // e.g. "wasm_downstream_close", "wasm_upstream_close", "wasm_fail_stream", "upstream_closed", "downstream_remote_close", or the UpstreamConnectFailed reason
	FilterState            map[string]string // see Conn.FilterState
}
