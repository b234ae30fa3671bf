// Package filtermanager models Envoy's network filter manager for one downstream connection with a
// proxy-wasm filter followed by tcp_proxy: the connection's read buffer, read disabling and
// watermarks, the re-dispatch of the whole buffer from the first filter on every read, the Wasm
// network filter's callbacks into its VM (new connection, data both ways, close, done/log/delete,
// deferred continue/close), tcp_proxy's route pick, connect and early-data buffer, and what a
// failed VM means for a new connection (failure policy). It never touches sockets: the owner feeds
// events in and gets instructions out through Transport. A Worker serializes a VM and its
// connections (Envoy: one Worker thread owns both).
//
// It follows Envoy source/common/network/filter_manager_impl.cc, connection_impl.cc,
// source/common/tcp_proxy/tcp_proxy.cc, source/extensions/common/wasm/context.cc (the network
// callbacks, closeStream/continueStream), proxy-wasm-cpp-host src/context.cc (CHECK_FAIL,
// DeferAfterCallActions) and source/extensions/common/wasm/wasm.cc (PluginConfig::createContext).
package filtermanager

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dicomgate/dicomgate/wasm/host/internal/properties"
	"github.com/dicomgate/dicomgate/wasm/host/internal/vm"
)

// filterStatus is Network::FilterStatus.
type filterStatus int

const (
	filterContinue filterStatus = iota
	filterStop
)

// Filter positions in the chain: the Wasm filter, then tcp_proxy (Istio: every phase is before
// tcp_proxy).
const (
	filterWasm = 0
	filterTCP  = 1
)

// Conn models Envoy's network filter manager for one downstream connection with the plugin's filter
// followed by a tcp_proxy terminal filter (source/common/network/filter_manager_impl.cc,
// source/common/tcp_proxy/tcp_proxy.cc, source/extensions/common/wasm/context.cc). It is a pure
// event-driven state machine: the owner feeds events through its methods and receives instructions
// through Transport. It never touches sockets.
//
// Conn methods are safe to call from one goroutine per connection, concurrently with host.Plugin.Tick and
// with other connections; the connection's state is guarded by its Worker's mutex (Envoy: one Worker
// thread owns both the VM and the connection). Transport methods are called without that mutex held,
// in order, never concurrently for one Conn, and may call back into the Conn (the call is processed
// after the current Transport method returns). They normally run on the goroutine of the Conn method
// that caused them; actions caused by host.Plugin.Tick or by another connection's guest call (a close or
// continue through proxy_set_effective_context) run on that goroutine.
type Conn struct {
	ch    *Chain
	w     *Worker
	v     *vm.VM      // VM serving this connection's filter (nil if none)
	sc    *vm.Context // stream context
	proxy TCPProxyConfig
	t     Transport

	hasWasm  bool // the Wasm filter is in the chain (false: FAIL_OPEN on a failed VM)
	emptyCtx bool // FAIL_CLOSED: filter present without a VM ⇒ fails every connection

	initialized  [2]bool // ActiveReadFilter::initialized_
	wasmCreated  bool    // ContextBase::in_vm_context_created_
	streamFailed bool    // ContextBase::stream_failed_

	readBuf          []byte // the connection read buffer
	readEnd          bool   // read_end_stream_
	endRaised        bool   // read_end_stream_raised_
	readDisableCount int
	highWatermark    bool // read buffer above the listener's per-connection buffer limit

	earlyBuf      []byte // tcp_proxy early_data_buffer_
	earlyEnd      bool
	earlyDisabled bool
	upEndSent     bool

	upstreamRequested bool
	upstreamClosed    bool

	dsAvail bool   // network_downstream_data_buffer_ != nullptr
	usAvail bool   // network_upstream_data_buffer_ != nullptr
	usBuf   []byte // bytes from upstream not yet written to the client

	closed          bool
	closeReason     string
	downstreamClose bool // Context::downstream_closed_
	tcpClosedDone   bool // Context::tcp_connection_closed_

	// props is what the connection's properties are read from: its ConnInfo, the upstream, the
	// cluster tcp_proxy picked and the filter state (set_envoy_filter_state and set_property objects).
	props     properties.Conn
	bytesUp   uint64
	bytesDown uint64

	outbox     []action // queued Transport calls
	outSpare   []action // the other outbox buffer (reused while one is delivered)
	outArr     [4]action
	scStore    vm.Context // backing store of sc
	delivering bool
	inDirty    bool
	released   bool // given back with Release and not handed out again
	// pendingDeliver counts UnlockAndDeliver calls that took c off the dirty list and have not yet
	// run c.deliver (they hold c without the lock).
	pendingDeliver int
}

// Init builds the filter chain of a new downstream connection on worker w and runs
// initializeReadFilters (Envoy FilterChainUtility::buildFilterChain +
// FilterManagerImpl::initializeReadFilters): tcp_proxy disables downstream reads at construction
// unless MaxEarlyDataBytes > 0, then the Wasm filter's proxy_on_context_create +
// proxy_on_new_connection run, and on Continue tcp_proxy picks its route and asks the Transport to
// connect. c is a zero Conn or one Release gave back.
//
// If the worker's VM has failed: FAIL_OPEN installs no filter; FAIL_CLOSED installs an empty filter
// that closes the connection; FAIL_RELOAD asks Chain.Reload for a new VM (else behaves like
// FAIL_CLOSED) (Envoy wasm.cc PluginConfig::createContext / maybeReloadHandleIfNeeded).
func (c *Conn) Init(ch *Chain, w *Worker, info properties.ConnInfo, proxy TCPProxyConfig, t Transport) {
	if t == nil {
		t = discardTransport{}
	}
	if c.released {
		c.unmarkReleased() // zeroed by Release: only its markers to undo
	}
	c.ch, c.w, c.proxy, c.t, c.hasWasm = ch, w, proxy, t, true
	c.props.Info = info
	c.outbox, c.outSpare = c.outArr[0:0:2], c.outArr[2:2:4]
	w.Mu.Lock()
	ch.ConnsTotal.Add(1)
	v := w.VM
	if ch.Closed() {
		c.emptyCtx = true
	} else if v == nil || v.Failed {
		switch ch.FailurePolicy {
		case FailOpen:
			c.hasWasm = false
			ch.ConnsFailOpen.Add(1)
		case FailReload:
			v = ch.Reload(w)
			if v == nil {
				c.emptyCtx = true
			}
		default:
			c.emptyCtx = true
		}
	}
	if c.hasWasm && !c.emptyCtx {
		c.v = v
		c.scStore = vm.Context{Stream: c}
		c.sc = v.AddContext(&c.scStore)
	}
	if c.emptyCtx {
		ch.ConnsFailClosed.Add(1)
	}
	// tcp_proxy Filter::initialize (initializeReadFilterCallbacks): readDisable(true) unless
	// receive_before_connect (max_early_data_bytes).
	if proxy.MaxEarlyDataBytes <= 0 {
		c.readDisable(true)
	}
	c.initializeReadFilters()
	c.finishLocked(nil)
}

// --- public events ---------------------------------------------------------------------------

func (c *Conn) event(f func()) {
	c.w.Mu.Lock()
	f()
	c.checkReadWatermark()
	c.finishLocked(nil)
}

// dataEvent is event for DownstreamData/UpstreamData, whose bytes b the connection borrows instead
// of copying: the read buffer and queued writes may alias b while the event runs. Before returning,
// every reference to b that could outlive the call is replaced by a copy (a buffer the filter keeps
// paused, writes that another goroutine is delivering), and this connection's queued Transport calls
// are delivered on this goroutine before the method returns, so b is never used after it.
func (c *Conn) dataEvent(b []byte, f func()) {
	c.w.Mu.Lock()
	f()
	c.checkReadWatermark()
	c.finishLocked(b)
}

// finishLocked ends an event on c (called with w.Mu held, returns with it released): it delivers
// the Transport calls queued for c on this goroutine — those of other connections touched by the
// event first (UnlockAndDeliver) — unless c is already being delivered (by a Transport method that
// called back into c, or by another goroutine), in which case that delivery picks them up. b, if
// not nil, is the caller's borrowed slice: no reference to it survives the return.
func (c *Conn) finishLocked(b []byte) {
	w := c.w
	if c.delivering {
		// Delivered by another goroutine, or by the Transport method that called us: after we
		// return, so nothing may keep b. The deliverer re-checks the outbox under the lock.
		if b != nil {
			c.unborrow(b)
		}
		w.removeDirty(c)
		w.UnlockAndDeliver()
		return
	}
	// Claim this connection's delivery while still holding the lock: its Transport calls (and
	// those queued by callbacks into the Conn meanwhile) run on this goroutine before we return.
	c.delivering = true
	w.removeDirty(c)
	if len(w.dirty) > 0 {
		w.UnlockAndDeliver()
		w.Mu.Lock()
	}
	for len(c.outbox) > 0 {
		out := c.outbox
		c.outbox = c.outSpare[:0]
		c.outSpare = nil
		w.Mu.Unlock()
		for i := range out {
			out[i].run(c.t)
			out[i] = action{}
		}
		w.Mu.Lock()
		if c.outSpare == nil {
			c.outSpare = out[:0]
		}
	}
	if b != nil {
		c.unborrow(b)
	}
	c.delivering = false
	w.UnlockAndDeliver()
}

// unborrow replaces every reference to b that the connection still holds by a copy. Called with
// w.Mu held.
func (c *Conn) unborrow(b []byte) {
	if overlaps(c.readBuf, b) {
		c.readBuf = append(make([]byte, 0, max(len(c.readBuf), 512)), c.readBuf...)
	}
	if overlaps(c.usBuf, b) {
		c.usBuf = append(make([]byte, 0, max(len(c.usBuf), 512)), c.usBuf...)
	}
	if overlaps(c.earlyBuf, b) {
		c.earlyBuf = append([]byte(nil), c.earlyBuf...)
	}
	for i := range c.outbox {
		if d := c.outbox[i].data; overlaps(d, b) {
			c.outbox[i].data = append([]byte(nil), d...)
		}
	}
}

// overlaps reports whether x's backing array intersects b's (capacities included).
func overlaps(x, b []byte) bool {
	if cap(x) == 0 || cap(b) == 0 {
		return false
	}
	xs, bs := uintptr(unsafe.Pointer(unsafe.SliceData(x))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return xs < bs+uintptr(cap(b)) && bs < xs+uintptr(cap(x))
}

// borrow returns b capped to its length: appending to it always copies, never writing into the
// caller's array beyond len(b).
func borrow(b []byte) []byte { return b[:len(b):len(b)] }

// readBufferLimit is the listener's per_connection_buffer_limit_bytes (Envoy default 1 MiB).
func (c *Conn) readBufferLimit() int {
	if c.proxy.ReadBufferLimit > 0 {
		return c.proxy.ReadBufferLimit
	}
	return 1 << 20
}

// checkReadWatermark is the read buffer's watermark callbacks (connection_impl.cc
// onReadBufferHighWatermark / onReadBufferLowWatermark): above the limit reads are disabled, below
// half of it they are enabled again. Called with w.Mu held after every event.
func (c *Conn) checkReadWatermark() {
	if c.closed {
		return
	}
	limit := c.readBufferLimit()
	switch {
	case !c.highWatermark && len(c.readBuf) > limit:
		c.highWatermark = true
		c.readDisable(true)
	case c.highWatermark && len(c.readBuf) < limit/2:
		c.highWatermark = false
		c.readDisable(false)
	}
}

// DownstreamData appends bytes read from the client to the connection read buffer and, if reads are
// enabled, re-runs the chain from the first filter over the whole unconsumed buffer
// (ConnectionImpl::onRead → FilterManagerImpl::onRead). Bytes delivered while reads are disabled are
// buffered and dispatched when reads are re-enabled. endStream is the client's FIN (half-close).
// The Conn does not keep b after the call returns (it copies what it must hold), so the caller may
// reuse it; when the filter lets the bytes through at once they are not copied at all.
func (c *Conn) DownstreamData(b []byte, endStream bool) {
	c.dataEvent(b, func() {
		if c.closed {
			return
		}
		if len(c.readBuf) == 0 {
			c.readBuf = borrow(b)
		} else {
			c.readBuf = append(c.readBuf, b...)
		}
		if endStream {
			c.readEnd = true
		}
		c.onRead()
	})
}

// UpstreamConnected reports that the upstream connection requested by ConnectUpstream is established.
func (c *Conn) UpstreamConnected() { c.UpstreamConnectedAddr(netip.AddrPort{}, netip.AddrPort{}) }

// UpstreamConnectedAddr is UpstreamConnected with the upstream's remote and local addresses (properties
// upstream.address, upstream.port, upstream.local_address). tcp_proxy Filter::onUpstreamConnection:
// flush the early-data buffer (with the client's end_stream if seen), re-enable downstream reads if
// tcp_proxy disabled them; enabling reads re-dispatches a non-empty read buffer from the first
// filter (ConnectionImpl::readDisable dispatch_buffered_data_).
func (c *Conn) UpstreamConnectedAddr(remote, local netip.AddrPort) {
	c.event(func() {
		if c.closed {
			if !c.upstreamClosed {
				c.upstreamClosed = true
				c.enqueue(action{kind: actCloseUpstream})
			}
			return
		}
		if c.props.UpstreamConnected || !c.upstreamRequested {
			return
		}
		c.props.UpstreamConnected = true
		c.props.UpstreamRemote, c.props.UpstreamLocal = remote, local
		if len(c.earlyBuf) > 0 || c.earlyEnd {
			data, end := c.earlyBuf, c.earlyEnd
			c.earlyBuf = nil
			c.writeUpstream(data, end)
		}
		// Re-enable reads disabled at construction (no early data) or by the early-data limit.
		switch {
		case c.earlyDisabled:
			c.earlyDisabled = false
			c.readDisable(false)
		case c.proxy.MaxEarlyDataBytes <= 0:
			c.readDisable(false)
		}
		// onGenericPoolReady then calls read_callbacks_->continueReading() from tcp_proxy, the last
		// filter: nothing follows it.
	})
}

// UpstreamConnectFailed reports that the upstream connection could not be established (unknown
// cluster ⇒ Envoy NoClusterFound; refused ⇒ UpstreamConnectionFailure): tcp_proxy closes the client.
func (c *Conn) UpstreamConnectFailed(reason string) {
	c.event(func() {
		if reason == "" {
			reason = "upstream_connect_failed"
		}
		c.upstreamClosed = true
		c.closeDownstreamLocal(reason)
	})
}

// UpstreamData delivers bytes from the upstream toward the client: the Wasm write filter
// (proxy_on_upstream_data over the whole pending buffer; on end_stream also
// proxy_on_upstream_connection_close(UNKNOWN), Envoy Context::onWrite), then WriteDownstream.
//
// Like DownstreamData, the Conn does not keep b after the call returns.
func (c *Conn) UpstreamData(b []byte, endStream bool) {
	c.dataEvent(b, func() {
		// ConnectionImpl::write: nothing to write and no end_stream ⇒ no write filter runs.
		if c.closed || (len(b) == 0 && !endStream) {
			return
		}
		if len(c.usBuf) == 0 {
			c.usBuf = borrow(b)
		} else {
			c.usBuf = append(c.usBuf, b...)
		}
		if c.hasWasm && c.wasmOnWrite(endStream) == filterStop {
			return
		}
		if c.closed {
			return
		}
		data := c.usBuf
		c.usBuf = nil
		if len(data) > 0 || endStream {
			c.bytesDown += uint64(len(data))
			c.enqueue(action{kind: actWriteDownstream, data: data, flag: endStream})
		}
	})
}

// DownstreamClosed reports that the client connection closed (remote=true: the peer closed it;
// false: closed locally by the owner). The Wasm filter gets proxy_on_downstream_connection_close
// (2 REMOTE / 1 LOCAL) then proxy_on_done, proxy_on_log, proxy_on_delete; tcp_proxy closes the
// upstream.
func (c *Conn) DownstreamClosed(remote bool) {
	c.event(func() {
		if c.closed {
			return
		}
		c.closed = true
		if remote {
			c.closeReason = "downstream_remote_close"
		} else {
			c.closeReason = "downstream_local_close"
		}
		peer := uint64(1)
		if remote {
			peer = 2
		}
		c.onDownstreamCloseEvent(peer)
		c.closeUpstreamIfAny()
	})
}

// UpstreamClosed reports that the upstream connection closed: tcp_proxy closes the client connection
// with FlushWrite (Filter::onUpstreamEvent RemoteClose).
func (c *Conn) UpstreamClosed() {
	c.event(func() {
		c.upstreamClosed = true
		if c.closed {
			return
		}
		if c.hasWasm && c.downstreamClose {
			c.onCloseTCP()
		}
		c.closeDownstreamLocal("upstream_closed")
	})
}

// SetTLS records the connection's TLS session once the owner's handshake completed: tls (copied)
// and requestedServerName answer the connection.* properties from then on. It is for an owner that
// creates the Conn at accept, before the handshake, as Envoy does: the network filter chain is built
// when the TCP connection is accepted (source/common/listener_manager/active_stream_listener_base.cc
// ActiveStreamListenerBase::newConnection: createServerConnection, then createNetworkFilterChain →
// FilterChainUtility::buildFilterChain → ServerConnectionImpl::initializeReadFilters), so
// proxy_on_new_connection runs before a single TLS byte was read. Envoy's Ssl::ConnectionInfo exists from the start (SslSocket::initialize creates
// it with the transport socket; SslSocket::ssl returns it) but is only populated by the handshake
// (SslHandshakerImpl::doHandshake): until then connection.mtls is false and the peer certificate
// fields are empty. Pass a non-nil, empty ConnInfo.TLS to host.Plugin.NewConn (Init) for such a connection and fill it
// with SetTLS; the handshake always completes before the first DownstreamData (SslSocket::doRead
// returns no bytes before it), so the filter reads the final values when it decides.
//
// SetTLS runs no guest code and queues no Transport call; it is safe to call concurrently with
// host.Plugin.Tick and with the Conn's other methods. It does nothing on a closed Conn.
func (c *Conn) SetTLS(tls *properties.TLSInfo, requestedServerName string) {
	var cp *properties.TLSInfo
	if tls != nil {
		v := *tls
		cp = &v
	}
	c.w.Mu.Lock()
	if !c.closed {
		c.props.Info.TLS = cp
		c.props.Info.RequestedServerName = requestedServerName
	}
	c.w.Mu.Unlock()
}

// State returns a snapshot of the connection.
func (c *Conn) State() ConnState {
	c.w.Mu.Lock()
	defer c.w.Mu.Unlock()
	return ConnState{
		ID:                     c.props.Info.ID,
		Cluster:                c.props.Cluster,
		TCPProxyInitialized:    c.initialized[filterTCP],
		UpstreamConnected:      c.props.UpstreamConnected,
		DownstreamReadDisabled: c.readDisableCount > 0,
		Buffered:               len(c.readBuf),
		BytesToUpstream:        c.bytesUp,
		BytesToDownstream:      c.bytesDown,
		FilterInstalled:        c.hasWasm,
		FilterFailed:           c.emptyCtx || (c.v != nil && c.v.Failed),
		Closed:                 c.closed,
		CloseReason:            c.closeReason,
		FilterState:            c.filterStateLocked(),
	}
}

// FilterState returns a copy of the connection's filter state: keys set by set_envoy_filter_state
// (e.g. "envoy.tcp_proxy.cluster") and by set_property ("wasm.<path>", NUL separators shown as '.').
func (c *Conn) FilterState() map[string]string {
	c.w.Mu.Lock()
	defer c.w.Mu.Unlock()
	return c.filterStateLocked()
}

func (c *Conn) filterStateLocked() map[string]string { return c.props.FilterState.Snapshot() }

// Release marks a finished connection for reuse and reports whether it did (the caller then pools
// it and a later Init reuses its memory). It is optional: a Conn that is never released is garbage
// collected as usual.
//
// The rule: call Release only when nothing will use c again — neither the caller nor its Transport
// (e.g. a connect still in progress that would report UpstreamConnected, a reader or writer
// goroutine, State or FilterState). After Release, the owner may Init the same *Conn for another
// connection, so any later use of c is a use-after-free bug of the caller. Until it is handed out
// again, a released Conn behaves as closed (its methods do nothing). Release does nothing if the
// connection is still open, its filter context was not torn down (proxy_on_done/log/delete), or it
// still has Transport calls to deliver. A second Release of the same Conn is ignored as long as it
// comes before Init hands the Conn out again (after that it would release the new connection).
func (c *Conn) Release() bool {
	w := c.w
	w.Mu.Lock()
	if c.released || !c.closed || (c.sc != nil && !c.tcpClosedDone) || c.delivering || c.inDirty ||
		c.pendingDeliver > 0 || len(c.outbox) > 0 {
		w.Mu.Unlock()
		return false
	}
	c.markReleased()
	w.Mu.Unlock()
	return true
}

// markReleased resets c for the pool: every reference (VM, Transport, buffers, strings) dropped so
// a pooled Conn keeps nothing alive, and closed with a discarding Transport so that its methods do
// nothing. Only ch and w stay. unmarkReleased undoes exactly the markers, leaving the zero Conn
// (plus ch and w) that Init fills in without zeroing it again.
func (c *Conn) markReleased() {
	ch, w := c.ch, c.w
	*c = Conn{} // plain zeroing: a literal with fields would be built on the stack and copied
	c.ch, c.w, c.t = ch, w, discardTransport{}
	c.closed, c.upstreamClosed, c.released, c.closeReason = true, true, true, "released"
}

func (c *Conn) unmarkReleased() {
	c.t, c.closed, c.upstreamClosed, c.released, c.closeReason = nil, false, false, false, ""
}

// --- delivery ---------------------------------------------------------------------------------

// actionKind names a queued Transport call.
type actionKind uint8

const (
	actConnectUpstream actionKind = iota
	actWriteUpstream
	actWriteDownstream
	actCloseDownstream
	actCloseUpstream
	actReadDisabled
)

// action is one queued Transport call (a value rather than a closure: no allocation per call).
type action struct {
	kind actionKind
	flag bool   // endStream, or disabled for actReadDisabled
	data []byte // bytes to write
	s    string // cluster or close reason
}

func (a *action) run(t Transport) {
	switch a.kind {
	case actConnectUpstream:
		t.ConnectUpstream(a.s)
	case actWriteUpstream:
		t.WriteUpstream(a.data, a.flag)
	case actWriteDownstream:
		t.WriteDownstream(a.data, a.flag)
	case actCloseDownstream:
		t.CloseDownstream(a.s)
	case actCloseUpstream:
		t.CloseUpstream()
	case actReadDisabled:
		t.SetDownstreamReadDisabled(a.flag)
	}
}

// enqueue queues a Transport call; called with w.Mu held.
func (c *Conn) enqueue(a action) {
	c.outbox = append(c.outbox, a)
	if !c.inDirty {
		c.inDirty = true
		c.w.dirty = append(c.w.dirty, c)
	}
}

// deliver runs queued Transport calls in order without holding w.Mu. A re-entrant call (from inside
// a Transport method) only queues; the outer loop delivers.
func (c *Conn) deliver() {
	c.w.Mu.Lock()
	c.pendingDeliver--
	if c.delivering {
		c.w.Mu.Unlock()
		return
	}
	c.delivering = true
	c.deliverLocked()
}

// deliverLocked is deliver after the caller set c.delivering with w.Mu held; it returns with w.Mu
// released. The two outbox buffers alternate: calls queued while one batch runs go to the other.
func (c *Conn) deliverLocked() {
	for len(c.outbox) > 0 {
		out := c.outbox
		c.outbox = c.outSpare[:0]
		c.outSpare = nil
		c.w.Mu.Unlock()
		for i := range out {
			out[i].run(c.t)
			out[i] = action{} // drop references to delivered bytes
		}
		c.w.Mu.Lock()
		if c.outSpare == nil {
			c.outSpare = out[:0]
		}
	}
	c.delivering = false
	c.w.Mu.Unlock()
}

// --- connection (ConnectionImpl) ---------------------------------------------------------------

// readDisable is ConnectionImpl::readDisable: a counter; the transition to enabled re-dispatches a
// non-empty read buffer (dispatch_buffered_data_).
func (c *Conn) readDisable(disable bool) {
	if c.closed {
		return
	}
	if disable {
		c.readDisableCount++
		if c.readDisableCount == 1 {
			c.enqueue(action{kind: actReadDisabled, flag: true})
		}
		return
	}
	if c.readDisableCount == 0 {
		return
	}
	c.readDisableCount--
	if c.readDisableCount == 0 {
		c.enqueue(action{kind: actReadDisabled, flag: false})
		if len(c.readBuf) > 0 {
			c.onRead()
		}
	}
}

// onRead is ConnectionImpl::onRead: nothing while reads are disabled — unless the only reason is
// the read buffer's high watermark (filterChainWantsData) —; end_stream is raised once.
func (c *Conn) onRead() {
	if c.closed {
		return
	}
	if c.readDisableCount > 0 && !(c.readDisableCount == 1 && c.highWatermark) {
		return
	}
	if len(c.readBuf) == 0 && !c.readEnd {
		return
	}
	if c.readEnd {
		if c.endRaised {
			return
		}
		c.endRaised = true
	}
	c.continueReading(-1)
}

// closeDownstreamLocal is connection().close(FlushWrite, details): the owner is told to close the
// client, the LocalClose event reaches the Wasm filter, and tcp_proxy closes its upstream.
func (c *Conn) closeDownstreamLocal(reason string) {
	if c.closed {
		return
	}
	c.closed = true
	c.closeReason = reason
	c.enqueue(action{kind: actCloseDownstream, s: reason})
	c.onDownstreamCloseEvent(1)
	c.closeUpstreamIfAny()
}

func (c *Conn) closeUpstreamIfAny() {
	if c.upstreamRequested && !c.upstreamClosed {
		c.upstreamClosed = true
		c.enqueue(action{kind: actCloseUpstream})
	}
}

// --- filter manager (FilterManagerImpl) ---------------------------------------------------------

// initializeReadFilters calls onNewConnection on each filter in order until one stops iteration or
// the connection closes.
func (c *Conn) initializeReadFilters() {
	for i := filterWasm; i <= filterTCP; i++ {
		if i == filterWasm && !c.hasWasm {
			continue
		}
		if c.closed {
			return
		}
		if c.initialized[i] {
			continue
		}
		c.initialized[i] = true
		if c.filterOnNewConnection(i) == filterStop || c.closed {
			return
		}
	}
}

// continueReading is FilterManagerImpl::onContinueReading starting after filter `after` (-1 = from
// the first filter, as onRead does): uninitialized filters get onNewConnection first, then onData
// with the whole read buffer if it is non-empty or end_stream was read.
func (c *Conn) continueReading(after int) {
	for i := after + 1; i <= filterTCP; i++ {
		if c.closed {
			return
		}
		if i == filterWasm && !c.hasWasm {
			continue
		}
		if !c.initialized[i] {
			c.initialized[i] = true
			if c.filterOnNewConnection(i) == filterStop || c.closed {
				return
			}
		}
		if len(c.readBuf) > 0 || c.readEnd {
			if c.filterOnData(i) == filterStop || c.closed {
				return
			}
		}
	}
}

func (c *Conn) filterOnNewConnection(i int) filterStatus {
	if i == filterWasm {
		return c.wasmOnNewConnection()
	}
	return c.tcpOnNewConnection()
}

func (c *Conn) filterOnData(i int) filterStatus {
	if i == filterWasm {
		return c.wasmOnData()
	}
	return c.tcpOnData()
}

// --- tcp_proxy ---------------------------------------------------------------------------------

// tcpOnNewConnection is tcp_proxy Filter::onNewConnection (IMMEDIATE connect mode): pickRoute
// (filter state envoy.tcp_proxy.cluster wins over the configured cluster,
// Config::getRegularRouteFromEntries) and establishUpstreamConnection, which returns Continue in
// receive_before_connect mode (so onData buffers the bytes at once) and StopIteration otherwise.
func (c *Conn) tcpOnNewConnection() filterStatus {
	cluster := c.proxy.Cluster
	if fs, ok := c.props.FilterState.Get("envoy.tcp_proxy.cluster"); ok {
		cluster = fs
	}
	c.props.Cluster = cluster
	if cluster == "" {
		// No route: downstream_cx_no_route, connection closed.
		c.closeDownstreamLocal("NoRouteFound")
		return filterStop
	}
	c.upstreamRequested = true
	c.enqueue(action{kind: actConnectUpstream, s: cluster})
	if c.proxy.MaxEarlyDataBytes > 0 {
		return filterContinue
	}
	return filterStop
}

// tcpOnData is tcp_proxy Filter::onData: with an upstream, move the whole buffer upstream; in
// receive_before_connect mode, move it into the early-data buffer and disable reads once
// max_early_data_bytes or more are buffered (read_disabled_due_to_buffer_). Always StopIteration.
func (c *Conn) tcpOnData() filterStatus {
	switch {
	case c.props.UpstreamConnected:
		data, end := c.readBuf, c.readEnd
		c.readBuf = nil
		c.writeUpstream(data, end)
	case c.proxy.MaxEarlyDataBytes > 0:
		if len(c.earlyBuf) == 0 {
			c.earlyBuf = c.readBuf // may borrow the caller's bytes: see dataEvent
		} else {
			c.earlyBuf = append(c.earlyBuf, c.readBuf...)
		}
		c.readBuf = nil
		if c.readEnd {
			c.earlyEnd = true
		}
		if len(c.earlyBuf) >= c.proxy.MaxEarlyDataBytes && !c.earlyDisabled {
			c.earlyDisabled = true
			c.readDisable(true)
		}
	}
	return filterStop
}

func (c *Conn) writeUpstream(data []byte, end bool) {
	if end && c.upEndSent {
		end = false
	}
	if len(data) == 0 && !end {
		return
	}
	if end {
		c.upEndSent = true
	}
	c.bytesUp += uint64(len(data))
	c.enqueue(action{kind: actWriteUpstream, data: data, flag: end})
}

// --- Wasm filter (Envoy Context + cpp-host ContextBase) -----------------------------------------

func (c *Conn) vmFailed() bool { return c.emptyCtx || c.v == nil || c.v.Failed }

// checkFailNet is cpp-host context.cc CHECK_FAIL_NET: on a failed VM, plugin_->fail_open_ (the
// legacy fail_open bool) ⇒ Continue; else failStream(Downstream) + failStream(Upstream) (both close
// the client, once) and StopIteration.
func (c *Conn) checkFailNet() (bool, filterStatus) {
	if !c.vmFailed() {
		return false, filterContinue
	}
	if c.ch.LegacyFailOpen {
		return true, filterContinue
	}
	if !c.streamFailed {
		c.streamFailed = true
		c.closeDownstreamLocal("wasm_fail_stream")
	}
	return true, filterStop
}

// callGuest makes a top-level call on this connection's stream context and then runs the deferred
// actions (cpp-host DeferAfterCallActions).
func (c *Conn) callGuest(fn *vm.Func, args ...uint64) (uint64, bool) {
	v := c.v
	if fn == nil {
		return 0, true
	}
	r, ok := v.Call(c.sc, fn, args...)
	c.w.RunDeferred(v.TakeDeferred())
	return r, ok
}

// wasmOnNewConnection is Envoy Context::onNewConnection: onCreate (proxy_on_context_create once)
// then onNetworkNewConnection (proxy_on_new_connection; 0 ⇒ Continue, else StopIteration).
func (c *Conn) wasmOnNewConnection() filterStatus {
	if !c.vmFailed() && !c.wasmCreated {
		c.wasmCreated = true
		c.callGuest(c.v.FnContextCreate, uint64(c.sc.ID), uint64(c.v.Root.ID))
	}
	c.wasmCreated = true
	return c.filterCall(onNewConnection, false)
}

// wasmOnData is Envoy Context::onData: the downstream buffer is available to the guest during the
// call and stays available after a Pause; Continue releases it.
func (c *Conn) wasmOnData() filterStatus {
	if !c.wasmCreated {
		return filterContinue
	}
	c.dsAvail = true
	st := c.onDownstreamData()
	if st == filterContinue {
		c.dsAvail = false
	}
	return st
}

// onDownstreamData is cpp-host ContextBase::onDownstreamData.
func (c *Conn) onDownstreamData() filterStatus {
	return c.filterCall(onDownstreamData, c.readEnd)
}

// wasmOnWrite is Envoy Context::onWrite.
func (c *Conn) wasmOnWrite(end bool) filterStatus {
	if !c.wasmCreated {
		return filterContinue
	}
	c.usAvail = true
	st := c.filterCall(onUpstreamData, end)
	if st == filterContinue {
		c.usAvail = false
	}
	if end && !c.closed {
		c.onUpstreamConnectionClose(0)
	}
	return st
}

// The network-filter callbacks filterCall makes.
const (
	onNewConnection  = iota // proxy_on_new_connection(context_id)
	onDownstreamData        // proxy_on_downstream_data(context_id, data_size, end_of_stream)
	onUpstreamData          // proxy_on_upstream_data(context_id, data_size, end_of_stream)
)

// filterCall is the shape cpp-host ContextBase::onNetworkNewConnection, onDownstreamData and
// onUpstreamData share: CHECK_FAIL_NET before the call (a failed VM is never touched, its context
// may be gone); no export ⇒ Continue; the top-level call, CHECK_FAIL_NET again, then the deferred
// actions (after the failure check, in DeferAfterCallActions' destructor order); the guest's 0 ⇒
// Continue, anything else ⇒ StopIteration.
func (c *Conn) filterCall(callback int, end bool) filterStatus {
	if failed, st := c.checkFailNet(); failed {
		return st
	}
	var r uint64
	e := uint64(0)
	if end {
		e = 1
	}
	switch callback {
	case onNewConnection:
		if c.v.FnNewConnection == nil {
			return filterContinue
		}
		r, _ = c.v.Call(c.sc, c.v.FnNewConnection, uint64(c.sc.ID))
	case onDownstreamData:
		if c.v.FnDownstreamData == nil {
			return filterContinue
		}
		r, _ = c.v.Call(c.sc, c.v.FnDownstreamData, uint64(c.sc.ID), uint64(len(c.readBuf)), e)
	default:
		if c.v.FnUpstreamData == nil {
			return filterContinue
		}
		r, _ = c.v.Call(c.sc, c.v.FnUpstreamData, uint64(c.sc.ID), uint64(len(c.usBuf)), e)
	}
	failed, st := c.checkFailNet()
	c.w.RunDeferred(c.v.TakeDeferred())
	if failed {
		return st
	}
	if uint32(r) == 0 {
		return filterContinue
	}
	return filterStop
}

// onUpstreamConnectionClose is Envoy Context::onUpstreamConnectionClose.
func (c *Conn) onUpstreamConnectionClose(peer uint64) {
	if !c.vmFailed() && c.v.FnUpstreamClose != nil {
		c.callGuest(c.v.FnUpstreamClose, uint64(c.sc.ID), peer)
	}
	if c.downstreamClose {
		c.onCloseTCP()
	}
}

// onDownstreamCloseEvent is Envoy Context::onEvent(Local/RemoteClose) → onDownstreamConnectionClose
// → onCloseTCP.
func (c *Conn) onDownstreamCloseEvent(peer uint64) {
	c.dsAvail, c.usAvail = false, false
	if !c.hasWasm || !c.wasmCreated {
		return
	}
	if !c.vmFailed() && c.v.FnDownstreamClose != nil && !c.tcpClosedDone {
		c.callGuest(c.v.FnDownstreamClose, uint64(c.sc.ID), peer)
	}
	c.downstreamClose = true
	c.onCloseTCP()
}

// onCloseTCP is Envoy Context::onCloseTCP: proxy_on_done → proxy_on_log → proxy_on_delete, once.
func (c *Conn) onCloseTCP() {
	if c.tcpClosedDone || !c.wasmCreated || c.sc == nil {
		return
	}
	c.tcpClosedDone = true
	if !c.vmFailed() {
		c.callGuest(c.v.FnDone, uint64(c.sc.ID))
		c.callGuest(c.v.FnLog, uint64(c.sc.ID))
		c.callGuest(c.v.FnDelete, uint64(c.sc.ID))
	}
	if c.v != nil {
		delete(c.v.Contexts, c.sc.ID)
	}
}

// applyDeferred runs one deferred continue/close action on this connection (called with w.Mu held).
func (c *Conn) applyDeferred(kind int) {
	if c.closed {
		return
	}
	switch kind {
	case vm.DeferContinueDownstream:
		// ActiveReadFilter::continueReading: resume after the Wasm filter.
		c.continueReading(filterWasm)
	case vm.DeferCloseDownstream:
		c.closeDownstreamLocal("wasm_downstream_close")
	case vm.DeferCloseUpstream:
		c.closeDownstreamLocal("wasm_upstream_close")
	}
	c.checkReadWatermark()
}

// discardTransport stands in for a nil Transport.
type discardTransport struct{}

func (discardTransport) ConnectUpstream(string)         {}
func (discardTransport) WriteUpstream([]byte, bool)     {}
func (discardTransport) WriteDownstream([]byte, bool)   {}
func (discardTransport) CloseDownstream(string)         {}
func (discardTransport) CloseUpstream()                 {}
func (discardTransport) SetDownstreamReadDisabled(bool) {}

// Props, DownstreamBuffer and UpstreamBuffer make the Conn a vm.Stream: what the imports see of it.

// Props returns what the connection's properties are read from.
func (c *Conn) Props() *properties.Conn { return &c.props }

// DownstreamBuffer is the read buffer; held while the filter holds it (Envoy
// network_downstream_data_buffer_ set in onData, kept while paused).
func (c *Conn) DownstreamBuffer() (*[]byte, bool) { return &c.readBuf, c.dsAvail }

// UpstreamBuffer is the bytes from upstream not yet written to the client; held during onWrite
// and while paused.
func (c *Conn) UpstreamBuffer() (*[]byte, bool) { return &c.usBuf, c.usAvail }

// Failure policies (Envoy envoy.extensions.wasm.v3.FailurePolicy); host.FailurePolicy has the same
// values.
const (
	FailClosed = iota
	FailOpen
	FailReload
)

// Chain is what the filter chains of one plugin's connections share: the failure policy, the
// plugin's connection counters and how to get a new VM under FAIL_RELOAD.
type Chain struct {
	FailurePolicy int
	// LegacyFailOpen: connections already open on a VM that traps continue as pass-through
	// (Envoy's legacy fail_open; CHECK_FAIL returns Continue).
	LegacyFailOpen bool
	// Closed reports whether the plugin was closed (new connections get an empty filter).
	Closed func() bool
	// ConnsTotal, ConnsFailOpen and ConnsFailClosed count connections: all, passed through without
	// the filter (FAIL_OPEN), and closed because the VM had failed.
	ConnsTotal, ConnsFailOpen, ConnsFailClosed *atomic.Uint64
	// Reload replaces w's failed VM if the FAIL_RELOAD backoff allows and returns it (nil: not now,
	// or it failed). Called with w.Mu held.
	Reload func(w *Worker) *vm.VM
}

// Worker is one Envoy worker thread: it owns one VM at a time and all connections pinned to it. Its
// mutex serializes every guest call of its VM and every state change of its connections.
type Worker struct {
	Index int
	// Mu serializes every guest call of VM and every state change of the worker's connections.
	Mu sync.Mutex
	// VM is the worker's current VM (nil: none could be started).
	VM *vm.VM
	// LastReload is when VM was loaded or last reloaded (the FAIL_RELOAD backoff counts from it).
	LastReload time.Time
	dirty      []*Conn // connections with undelivered Transport actions
}

// RunDeferred runs continue/close actions queued by a guest call (cpp-host DeferAfterCallActions).
// Called with w.Mu held; every target connection is on the same VM, hence the same worker.
func (w *Worker) RunDeferred(actions []vm.Deferred) {
	for _, a := range actions {
		c, _ := a.Stream.(*Conn) // the only vm.Stream there is
		if c == nil || c.w != w {
			continue
		}
		c.applyDeferred(a.Kind)
	}
}

// UnlockAndDeliver releases w.Mu and then delivers the queued Transport actions of every connection
// touched while it was held (by this goroutine's step only, so a connection's own event delivers its
// own actions on its own goroutine).
func (w *Worker) UnlockAndDeliver() {
	if len(w.dirty) == 0 {
		w.Mu.Unlock()
		return
	}
	var small [4]*Conn
	var dirty []*Conn
	if len(w.dirty) <= len(small) {
		dirty = small[:copy(small[:], w.dirty)]
	} else {
		dirty = append([]*Conn(nil), w.dirty...)
	}
	clear(w.dirty)
	w.dirty = w.dirty[:0]
	for _, c := range dirty {
		c.inDirty = false
		c.pendingDeliver++ // this goroutine still holds c: Release must not recycle it yet
	}
	w.Mu.Unlock()
	for _, c := range dirty {
		c.deliver()
	}
}

// removeDirty takes c off the dirty list (its caller delivers it itself). Called with w.Mu held.
func (w *Worker) removeDirty(c *Conn) {
	if !c.inDirty {
		return
	}
	c.inDirty = false
	for i, x := range w.dirty {
		if x == c {
			w.dirty = append(w.dirty[:i], w.dirty[i+1:]...)
			w.dirty[len(w.dirty):cap(w.dirty)][0] = nil
			return
		}
	}
}
