package host

import "net/netip"

// Conn models Envoy's network filter manager for one downstream connection with the plugin's filter
// followed by a tcp_proxy terminal filter (source/common/network/filter_manager_impl.cc,
// source/common/tcp_proxy/tcp_proxy.cc). It never touches sockets.
type Conn struct{}

// NewConn builds the filter chain for a new downstream connection and runs initializeReadFilters.
func (p *Plugin) NewConn(info ConnInfo, proxy TCPProxyConfig, t Transport) *Conn { return &Conn{} }

// DownstreamData appends bytes read from the client to the read buffer and re-runs the chain.
func (c *Conn) DownstreamData(b []byte, endStream bool) {}

// UpstreamConnected reports that the upstream connection requested by ConnectUpstream is established.
func (c *Conn) UpstreamConnected() {}

// UpstreamConnectedAddr is UpstreamConnected with the upstream's remote and local addresses (properties
// upstream.address, upstream.port, upstream.local_address).
func (c *Conn) UpstreamConnectedAddr(remote, local netip.AddrPort) {}

// UpstreamConnectFailed reports that the upstream connection could not be established.
func (c *Conn) UpstreamConnectFailed(reason string) {}

// UpstreamData delivers bytes from the upstream toward the client.
func (c *Conn) UpstreamData(b []byte, endStream bool) {}

// DownstreamClosed reports that the client connection closed (remote=true) or was closed locally.
func (c *Conn) DownstreamClosed(remote bool) {}

// UpstreamClosed reports that the upstream connection closed.
func (c *Conn) UpstreamClosed() {}

// State returns a snapshot of the connection.
func (c *Conn) State() ConnState { return ConnState{} }

// FilterState returns a copy of the connection's filter state as strings.
func (c *Conn) FilterState() map[string]string { return nil }
