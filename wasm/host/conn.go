package host

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/dicomgate/dicomgate/wasm/host/internal/filtermanager"
	"github.com/dicomgate/dicomgate/wasm/host/internal/properties"
	"github.com/dicomgate/dicomgate/wasm/host/internal/vm"
)

// Conn models Envoy's network filter manager for one downstream connection with the plugin's filter
// followed by a tcp_proxy terminal filter (source/common/network/filter_manager_impl.cc,
// source/common/tcp_proxy/tcp_proxy.cc, source/extensions/common/wasm/context.cc). It is a pure
// event-driven state machine: the owner feeds events through its methods and receives instructions
// through Transport. It never touches sockets.
//
// Conn methods are safe to call from one goroutine per connection, concurrently with Plugin.Tick and
// with other connections; the connection's state is guarded by its Worker's mutex (Envoy: one Worker
// thread owns both the VM and the connection). Transport methods are called without that mutex held,
// in order, never concurrently for one Conn, and may call back into the Conn (the call is processed
// after the current Transport method returns). They normally run on the goroutine of the Conn method
// that caused them; actions caused by Plugin.Tick or by another connection's guest call (a close or
// continue through proxy_set_effective_context) run on that goroutine.
type Conn struct {
	p *Plugin
	c filtermanager.Conn // the filter manager's connection (all its state)
}

// NewConn builds the filter chain for a new downstream connection and runs initializeReadFilters
// (Envoy FilterChainUtility::buildFilterChain + FilterManagerImpl::initializeReadFilters): tcp_proxy
// disables downstream reads at construction unless MaxEarlyDataBytes > 0, then the Wasm filter's
// proxy_on_context_create + proxy_on_new_connection run, and on Continue tcp_proxy picks its route
// and asks the Transport to connect.
//
// The connection is pinned round-robin to a worker. If that worker's VM has failed: FAIL_OPEN installs
// no filter; FAIL_CLOSED installs an empty filter that closes the connection; FAIL_RELOAD recreates
// the VM when ReloadBackoff has elapsed since the last attempt (else behaves like FAIL_CLOSED)
// (Envoy wasm.cc PluginConfig::createContext / maybeReloadHandleIfNeeded).
func (p *Plugin) NewConn(info ConnInfo, proxy TCPProxyConfig, t Transport) *Conn {
	w := p.workers[0]
	if len(p.workers) > 1 { // round robin; one worker needs no shared counter
		w = p.workers[int(p.next.Add(1)-1)%len(p.workers)]
	}
	c, _ := p.connPool.Get().(*Conn) // a Conn given back with Release
	if c == nil {
		c = &Conn{p: p}
	}
	if b, ok := t.(ConnBinder); ok {
		b.Bind(c)
	}
	var ft filtermanager.Transport
	if t != nil {
		ft = t
	}
	c.c.Init(&p.chain, w, properties.ConnInfo{ID: info.ID, Source: info.Source, Destination: info.Destination,
		TLS: (*properties.TLSInfo)(info.TLS), RequestedServerName: info.RequestedServerName},
		filtermanager.TCPProxyConfig(proxy), ft)
	return c
}

// maybeReload recreates a failed VM under FAIL_RELOAD if the backoff allows (Envoy wasm.cc
// PluginConfig::maybeReloadHandleIfNeeded: the interval is measured from the handle's last load —
// its creation, then every attempt — and drawn from JitteredLowerBoundBackOffStrategy, i.e. in
// [base, 1.5·base)). Called with w.Mu held.
func (p *Plugin) maybeReload(w *filtermanager.Worker) *vm.VM {
	now := p.clock.Now()
	base := p.cfg.ReloadBackoff
	interval := base + time.Duration(rand.Int64N(int64(base/2)+1))
	if now.Sub(w.LastReload) < interval {
		return nil
	}
	w.LastReload = now
	p.cfgMu.Lock()
	conf := p.configuration
	p.cfgMu.Unlock()
	nv, err := p.newVM(context.Background(), w, conf)
	if err != nil {
		p.log(LogError, "FAIL_RELOAD: recreating the VM failed: "+err.Error())
		return nil
	}
	if old := w.VM; old != nil {
		old.Close(context.Background())
	}
	w.VM = nv
	p.vmReloads.Add(1)
	p.log(LogWarn, "FAIL_RELOAD: recreated the failed VM")
	return nv
}

// DownstreamData appends bytes read from the client to the connection read buffer and, if reads are
// enabled, re-runs the chain from the first filter over the whole unconsumed buffer
// (ConnectionImpl::onRead → FilterManagerImpl::onRead). Bytes delivered while reads are disabled are
// buffered and dispatched when reads are re-enabled. endStream is the client's FIN (half-close).
// The Conn does not keep b after the call returns (it copies what it must hold), so the caller may
// reuse it; when the filter lets the bytes through at once they are not copied at all.
func (c *Conn) DownstreamData(b []byte, endStream bool) { c.c.DownstreamData(b, endStream) }

// UpstreamConnected reports that the upstream connection requested by ConnectUpstream is established.
func (c *Conn) UpstreamConnected() { c.c.UpstreamConnected() }

// UpstreamConnectedAddr is UpstreamConnected with the upstream's remote and local addresses (properties
// upstream.address, upstream.port, upstream.local_address). tcp_proxy Filter::onUpstreamConnection:
// flush the early-data buffer (with the client's end_stream if seen), re-enable downstream reads if
// tcp_proxy disabled them; enabling reads re-dispatches a non-empty read buffer from the first
// filter (ConnectionImpl::readDisable dispatch_buffered_data_).
func (c *Conn) UpstreamConnectedAddr(remote, local netip.AddrPort) {
	c.c.UpstreamConnectedAddr(remote, local)
}

// UpstreamConnectFailed reports that the upstream connection could not be established (unknown
// cluster ⇒ Envoy NoClusterFound; refused ⇒ UpstreamConnectionFailure): tcp_proxy closes the client.
func (c *Conn) UpstreamConnectFailed(reason string) { c.c.UpstreamConnectFailed(reason) }

// UpstreamData delivers bytes from the upstream toward the client: the Wasm write filter
// (proxy_on_upstream_data over the whole pending buffer; on end_stream also
// proxy_on_upstream_connection_close(UNKNOWN), Envoy Context::onWrite), then WriteDownstream.
//
// Like DownstreamData, the Conn does not keep b after the call returns.
func (c *Conn) UpstreamData(b []byte, endStream bool) { c.c.UpstreamData(b, endStream) }

// DownstreamClosed reports that the client connection closed (remote=true: the peer closed it;
// false: closed locally by the owner). The Wasm filter gets proxy_on_downstream_connection_close
// (2 REMOTE / 1 LOCAL) then proxy_on_done, proxy_on_log, proxy_on_delete; tcp_proxy closes the
// upstream.
func (c *Conn) DownstreamClosed(remote bool) { c.c.DownstreamClosed(remote) }

// UpstreamClosed reports that the upstream connection closed: tcp_proxy closes the client connection
// with FlushWrite (Filter::onUpstreamEvent RemoteClose).
func (c *Conn) UpstreamClosed() { c.c.UpstreamClosed() }

// SetTLS records the connection's TLS session once the owner's handshake completed: tls (copied)
// and requestedServerName answer the connection.* properties from then on. It is for an owner that
// creates the Conn at accept, before the handshake, as Envoy does: the network filter chain is built
// when the TCP connection is accepted (source/common/listener_manager/active_stream_listener_base.cc
// ActiveStreamListenerBase::newConnection: createServerConnection, then createNetworkFilterChain →
// FilterChainUtility::buildFilterChain → ServerConnectionImpl::initializeReadFilters), so
// proxy_on_new_connection runs before a single TLS byte was read. Envoy's Ssl::ConnectionInfo exists from the start (SslSocket::initialize creates
// it with the transport socket; SslSocket::ssl returns it) but is only populated by the handshake
// (SslHandshakerImpl::doHandshake): until then connection.mtls is false and the peer certificate
// fields are empty. Pass a non-nil, empty ConnInfo.TLS to NewConn for such a connection and fill it
// with SetTLS; the handshake always completes before the first DownstreamData (SslSocket::doRead
// returns no bytes before it), so the filter reads the final values when it decides.
//
// SetTLS runs no guest code and queues no Transport call; it is safe to call concurrently with
// Plugin.Tick and with the Conn's other methods. It does nothing on a closed Conn.
func (c *Conn) SetTLS(tls *TLSInfo, requestedServerName string) {
	c.c.SetTLS((*properties.TLSInfo)(tls), requestedServerName)
}

// State returns a snapshot of the connection.
func (c *Conn) State() ConnState { return ConnState(c.c.State()) }

// FilterState returns a copy of the connection's filter state: keys set by set_envoy_filter_state
// (e.g. "envoy.tcp_proxy.cluster") and by set_property ("wasm.<path>", NUL separators shown as '.').
func (c *Conn) FilterState() map[string]string { return c.c.FilterState() }

// Release gives a finished connection back to its plugin, so that a later NewConn reuses its memory
// instead of allocating a new Conn. It is optional: a Conn that is never released is garbage
// collected as usual.
//
// The rule: call Release only when nothing will use c again — neither the caller nor its Transport
// (e.g. a connect still in progress that would report UpstreamConnected, a reader or writer
// goroutine, State or FilterState). After Release, NewConn may return the same *Conn for another
// connection, so any later use of c is a use-after-free bug of the caller. Until it is handed out
// again, a released Conn behaves as closed (its methods do nothing). Release does nothing if the
// connection is still open, its filter context was not torn down (proxy_on_done/log/delete), or it
// still has Transport calls to deliver. A second Release of the same Conn is ignored as long as it
// comes before NewConn hands the Conn out again (after that it would release the new connection).
func (c *Conn) Release() {
	if c.c.Release() {
		c.p.connPool.Put(c)
	}
}
