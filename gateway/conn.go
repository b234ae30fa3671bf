package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dicomgate/dicomgate/wasm/host"
)

// upstream connection states.
const (
	upIdle = iota
	upConnecting
	upConnected
	upFailed
)

// side is one socket of a proxied connection (the client or the upstream)
// with its outbound queue. All fields are guarded by conn.mu.
type side struct {
	name   string   // "downstream" or "upstream", for logs
	nc     net.Conn // nil until the TLS handshake is done / the upstream is connected
	queue  [][]byte // bytes to write, in order
	queued int      // total bytes in queue

	endQueued   bool // half-close after the queue is written
	closeQueued bool // close after the queue is written (Envoy FlushWrite)
	readEOF     bool // the peer half-closed toward us
	writeEOF    bool // we half-closed toward the peer
	closed      bool

	readDisabled bool // the filter's readDisable (downstream only)

	// direct is a write that aliases the opposite side's read buffer: the
	// bytes the filter passed on unchanged from the read being delivered
	// (push found them in rbuf). The opposite reader writes them itself once
	// the filter call returned (flushDirect) — no copy and no hand-off to
	// the writer goroutine. Invariant: direct is set only while queue is
	// empty and no write is in flight, and the writer goroutine writes nothing
	// while direct is set or writing is true, so bytes leave in the order they
	// were pushed. direct counts in queued.
	direct []byte
	// writing: a write of this side is in flight outside c.mu (a direct
	// write by the opposite reader).
	writing bool
	// rbuf is this side's current read buffer (set by its reader under c.mu
	// when it changes): push recognises bytes that alias it.
	rbuf []byte

	rx, tx *atomic.Uint64 // byte counters in Metrics
}

// conn is one proxied client connection. It implements host.Transport.
type conn struct {
	g   *Gateway
	id  uint64
	raw net.Conn

	// fmu serializes every call into filter; notified* are guarded by it.
	fmu          sync.Mutex
	filter       Filter
	notifiedDown bool
	notifiedUp   bool

	mu         sync.Mutex
	cond       *sync.Cond
	down, up   side
	upState    int
	cluster    string
	dialCancel context.CancelFunc
	done       bool
	// handshaking: the TLS handshake runs on the downstream socket; no writer
	// goroutine exists yet, so a close asked for now closes the socket at once.
	handshaking bool
	// held counts client bytes delivered to the filter and not yet passed to
	// WriteUpstream (the filter's and tcp_proxy's buffers); buffered is held
	// plus both sides' queued bytes: this connection's share of
	// Gateway.buffered. Both are zero once the connection is done.
	held, buffered int64

	lastActive atomic.Int64 // unix nanoseconds of the last byte read on either side
}

var _ host.Transport = (*conn)(nil)

func newConn(g *Gateway, id uint64, nc net.Conn) *conn {
	c := &conn{g: g, id: id, raw: nc}
	c.cond = sync.NewCond(&c.mu)
	c.down = side{name: "downstream", rx: &g.metrics.DownstreamRxBytes, tx: &g.metrics.DownstreamTxBytes}
	c.up = side{name: "upstream", rx: &g.metrics.UpstreamRxBytes, tx: &g.metrics.UpstreamTxBytes}
	c.lastActive.Store(time.Now().UnixNano())
	return c
}

// logf logs one diagnostic about this connection.
func (c *conn) logf(level slog.Level, format string, args ...any) {
	c.g.logf(level, c.id, format, args...)
}

func setNoDelay(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
}

// run creates the filter, terminates TLS and then reads the client until it
// goes away. It runs on the connection's own goroutine.
//
// The order is Envoy's: the network filter chain is built when the TCP
// connection is accepted, before the TLS handshake
// (active_stream_listener_base.cc ActiveStreamListenerBase::newConnection →
// createNetworkFilterChain → ServerConnectionImpl::initializeReadFilters), so
// proxy_on_new_connection runs at accept and a filter deadline counts from
// accept, handshake included. The filter gets the session with SetTLS once the
// handshake completed, before the first byte of data.
func (c *conn) run() {
	g := c.g
	setNoDelay(c.raw)
	info := host.ConnInfo{
		ID:          c.id,
		Source:      addrPort(c.raw.RemoteAddr()),
		Destination: addrPort(c.raw.LocalAddr()),
	}
	var tc *tls.Conn
	nc := c.raw
	if g.cfg.TLS != nil {
		tc = tls.Server(c.raw, g.cfg.TLS)
		nc = tc
		// Envoy's Ssl::ConnectionInfo exists from the start, empty until the handshake.
		info.TLS = &host.TLSInfo{}
	}
	c.mu.Lock()
	c.down.nc = nc
	c.handshaking = tc != nil
	aborted := c.down.closed
	c.mu.Unlock()
	if aborted { // closed by Shutdown/Close between accept and here
		nc.Close()
		c.checkDone()
		return
	}

	c.fmu.Lock()
	c.filter = g.cfg.NewFilter(info, host.TCPProxyConfig{
		Cluster:           g.cfg.DefaultCluster,
		MaxEarlyDataBytes: g.cfg.MaxEarlyDataBytes,
	}, c)
	c.fmu.Unlock()
	c.mu.Lock()
	aborted = c.down.closed
	c.mu.Unlock()
	if aborted { // closeSide ran before the filter existed: report the close now
		c.fmu.Lock()
		if !c.notifiedDown {
			c.notifiedDown = true
			c.filter.DownstreamClosed(false)
		}
		c.fmu.Unlock()
		return
	}
	if tc != nil && !c.handshake(tc) {
		return
	}
	go c.writeLoop(&c.down)
	c.readLoop(&c.down)
}

// handshake runs the TLS handshake after the filter was created and reports
// whether the connection goes on. On success the filter gets the session
// (Filter.SetTLS). On failure the client is closed and the filter sees the
// downstream close with no byte of data, as in Envoy:
//
//   - a failed handshake (bad or missing client certificate, protocol error,
//     the client going away) is a remote close: SslSocket::doRead returns
//     PostIoAction::Close and ConnectionImpl::onReadReady closes with
//     ConnectionEvent::RemoteClose (proxy-wasm PeerType REMOTE);
//   - Config.HandshakeTimeout is Envoy's transport_socket_connect_timeout:
//     ServerConnectionImpl::onTransportSocketConnectTimeout closes the
//     connection immediately, a local close (PeerType LOCAL);
//   - a close asked for while the handshake runs (the filter's
//     CloseDownstream, e.g. FAIL_CLOSED or its own deadline; gateway shutdown)
//     interrupts it and is a local close.
//
// Every failure that is not such a local close request is counted in
// tls_handshake_failures_total.
func (c *conn) handshake(tc *tls.Conn) bool {
	g := c.g
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	c.mu.Lock()
	c.handshaking = false
	closing := c.down.closed || c.down.closeQueued
	c.mu.Unlock()
	if err != nil {
		if closing {
			c.closeSide(&c.down, false)
			return false
		}
		g.metrics.TLSHandshakeFailures.Add(1)
		timedOut := errors.Is(err, context.DeadlineExceeded)
		if timedOut {
			g.metrics.countClose(CloseTLSHandshakeTimeout)
			c.logf(slog.LevelWarn, "closing client: %s: TLS handshake with %s took longer than %v", CloseTLSHandshakeTimeout, c.raw.RemoteAddr(), g.cfg.HandshakeTimeout)
		} else {
			g.metrics.countClose(CloseTLSHandshakeFailed)
			c.logf(slog.LevelWarn, "closing client: %s: TLS handshake with %s: %v", CloseTLSHandshakeFailed, c.raw.RemoteAddr(), err)
		}
		c.closeSide(&c.down, !timedOut)
		return false
	}
	cs := tc.ConnectionState()
	ti := tlsInfoFromState(cs, g.localSubject, g.localURIs, g.localDN, &g.peers)
	c.fmu.Lock()
	if !c.notifiedDown {
		c.filter.SetTLS(ti, cs.ServerName)
	}
	c.fmu.Unlock()
	return true
}

// other returns the opposite side.
func (c *conn) other(s *side) *side {
	if s == &c.down {
		return &c.up
	}
	return &c.down
}

// waitReadable blocks while reading s is disabled by the filter or by flow
// control, and reports whether s may still be read. With budget it also
// waits while the gateway's buffered-bytes budget is used up and this
// connection holds bytes (Config.MaxBufferedBytes), polling every
// budgetPoll: the budget is freed by other connections.
func (c *conn) waitReadable(s *side, budget bool) bool {
	paused := false
	for {
		c.mu.Lock()
		o := c.other(s)
		for !s.closed && !s.closeQueued && (s.readDisabled || o.queued > c.g.cfg.BufferLimit) {
			c.cond.Wait()
		}
		ok := !s.closed && !s.closeQueued
		mine := c.buffered
		c.mu.Unlock()
		if !ok || !budget || mine == 0 || !c.g.overBudget() {
			return ok
		}
		if !paused {
			paused = true
			c.g.metrics.BudgetPauses.Add(1)
		}
		time.Sleep(budgetPoll)
	}
}

// budgetPoll is how often a connection paused by the buffered-bytes budget
// checks it again.
const budgetPoll = 10 * time.Millisecond

// Read buffer sizes: every side starts with a small buffer (an idle or
// slow connection costs little) and moves to a pooled large one once a read
// fills the small one.
const (
	smallReadBuffer = 4 << 10
	largeReadBuffer = 32 << 10
)

var largeReadBuffers = sync.Pool{New: func() any { b := make([]byte, largeReadBuffer); return &b }}

// addBufLocked changes this connection's buffered bytes by d (c.mu held).
func (c *conn) addBufLocked(d int64) {
	if d != 0 {
		c.buffered += d
		c.g.addBuffered(d)
	}
}

// readLoop reads s and delivers the bytes to the filter. Bytes read while
// reads were being disabled are held back until reads are enabled again, as
// if they were still in the kernel buffer (Envoy ConnectionImpl::readDisable).
func (c *conn) readLoop(s *side) {
	buf := make([]byte, smallReadBuffer)
	var large *[]byte
	c.setReadBuffer(s, buf)
	defer func() {
		c.setReadBuffer(s, nil)
		if large != nil {
			largeReadBuffers.Put(large)
		}
	}()
	for {
		if !c.waitReadable(s, true) {
			return
		}
		n, err := s.nc.Read(buf)
		if n > 0 {
			s.rx.Add(uint64(n))
			c.lastActive.Store(time.Now().UnixNano())
			if !c.waitReadable(s, false) {
				return
			}
			c.deliver(s, buf[:n], false)
			c.flushDirect(c.other(s))
			if n == len(buf) && large == nil {
				large = largeReadBuffers.Get().(*[]byte)
				buf = *large
				c.setReadBuffer(s, buf)
			}
		}
		if err == nil {
			continue
		}
		c.mu.Lock()
		closing := s.closed || s.closeQueued
		c.mu.Unlock()
		if closing {
			return
		}
		if errors.Is(err, io.EOF) {
			// Half-close: deliver end_stream; the socket closes once we have
			// half-closed our direction too (Envoy connection_impl.cc
			// ConnectionImpl::onReadReady, bothSidesHalfClosed => RemoteClose).
			c.mu.Lock()
			s.readEOF = true
			both := s.writeEOF
			c.mu.Unlock()
			c.deliver(s, nil, true)
			if both {
				c.closeSide(s, true)
			}
			return
		}
		c.logf(slog.LevelInfo, "%s read: %v", s.name, err)
		c.closeSide(s, true)
		return
	}
}

// setReadBuffer records s's read buffer for push's alias check.
func (c *conn) setReadBuffer(s *side, buf []byte) {
	c.mu.Lock()
	s.rbuf = buf
	c.mu.Unlock()
}

// aliases reports whether b lies within buf.
func aliases(b, buf []byte) bool {
	if len(b) == 0 || len(buf) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(buf))
}

// flushDirect writes s.direct, the bytes the filter passed on unchanged from
// the opposite side's last read, on the opposite reader's goroutine after the
// filter call returned (so no filter lock is held: a slow peer blocks only
// this direction's reader, as io.Copy would). A write error closes s as the
// writer goroutine would.
func (c *conn) flushDirect(s *side) {
	c.mu.Lock()
	b := s.direct
	if b == nil {
		c.mu.Unlock()
		return
	}
	s.writing = true
	nc, closing := s.nc, s.closeQueued
	c.mu.Unlock()
	_, err := nc.Write(b)
	c.mu.Lock()
	s.direct, s.writing = nil, false
	if !s.closed { // closeSide already took the whole queue off queued and buffered
		s.queued -= len(b)
		c.addBufLocked(-int64(len(b)))
	}
	// Wake the writer only when it has something to do after this write.
	if len(s.queue) > 0 || s.endQueued || s.closeQueued || s.closed {
		c.cond.Broadcast()
	}
	closing = closing || s.closeQueued || s.closed // a close during the write ended it: nothing to log
	c.mu.Unlock()
	c.wrote(s, len(b), err, closing)
}

// wrote finishes a write of n bytes to side s, made without c.mu: a failed
// write is logged unless a close cut it (closing) and closes the side; a
// successful one is counted. It reports whether the write succeeded.
func (c *conn) wrote(s *side, n int, err error, closing bool) bool {
	if err != nil {
		if !closing {
			c.logf(slog.LevelInfo, "%s write: %v", s.name, err)
		}
		c.closeSide(s, !closing)
		return false
	}
	s.tx.Add(uint64(n))
	return true
}

// deliver hands bytes read from s to the filter unless s's close was already
// reported.
func (c *conn) deliver(s *side, b []byte, end bool) {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	if s == &c.down {
		if !c.notifiedDown {
			if len(b) > 0 {
				c.mu.Lock()
				if !c.done {
					c.held += int64(len(b))
					c.addBufLocked(int64(len(b)))
				}
				c.mu.Unlock()
			}
			c.filter.DownstreamData(b, end)
		}
		return
	}
	if !c.notifiedUp && !c.notifiedDown {
		c.filter.UpstreamData(b, end)
	}
}

// writeLoop writes s's queue in order, then half-closes or closes s when asked.
func (c *conn) writeLoop(s *side) {
	for {
		c.mu.Lock()
		// A direct write (s.direct, s.writing) goes first: wait for it.
		for !s.closed && (s.direct != nil || s.writing || (len(s.queue) == 0 && !s.closeQueued && !(s.endQueued && !s.writeEOF))) {
			c.cond.Wait()
		}
		switch {
		case s.closed:
			c.mu.Unlock()
			return
		case len(s.queue) > 0:
			b := s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.writing = true
			nc, closing := s.nc, s.closeQueued
			c.mu.Unlock()
			_, err := nc.Write(b)
			c.mu.Lock()
			s.writing = false
			s.queued -= len(b)
			if !s.closed { // closeSide already took the whole queue off buffered
				c.addBufLocked(-int64(len(b)))
			}
			c.cond.Broadcast()
			c.mu.Unlock()
			if !c.wrote(s, len(b), err, closing) {
				return
			}
		case s.endQueued && !s.writeEOF:
			s.writeEOF = true
			both := s.readEOF
			nc := s.nc
			c.mu.Unlock()
			closeWrite(nc)
			if both {
				// Envoy ConnectionImpl::onWriteReady: bothSidesHalfClosed => LocalClose.
				c.closeSide(s, false)
				return
			}
		default: // closeQueued with an empty queue
			c.mu.Unlock()
			c.closeSide(s, false)
			return
		}
	}
}

// closeWrite half-closes nc: a TLS close_notify alert, or a TCP FIN.
func closeWrite(nc net.Conn) {
	switch t := nc.(type) {
	case *tls.Conn:
		_ = t.CloseWrite()
	case interface{ CloseWrite() error }:
		_ = t.CloseWrite()
	}
}

// closeSide closes s's socket at once and reports it to the filter, then asks
// the other side to close after flushing, as tcp_proxy does for either
// side's close (tcp_proxy.cc Filter::onDownstreamEvent / onUpstreamEvent).
func (c *conn) closeSide(s *side, remote bool) {
	c.mu.Lock()
	if s.closed {
		c.mu.Unlock()
		return
	}
	s.closed = true
	nc := s.nc
	isUp := s == &c.up
	wasConnected := isUp && c.upState == upConnected
	if isUp && c.dialCancel != nil {
		c.dialCancel()
		c.dialCancel = nil
	}
	c.addBufLocked(-int64(s.queued))
	s.queue, s.queued, s.direct = nil, 0, nil
	c.cond.Broadcast()
	c.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
	c.fmu.Lock()
	if c.filter != nil {
		if !isUp && !c.notifiedDown {
			c.notifiedDown = true
			c.filter.DownstreamClosed(remote)
		} else if wasConnected && !c.notifiedUp {
			c.notifiedUp = true
			c.filter.UpstreamClosed()
		}
	}
	c.fmu.Unlock()
	c.closeAfterFlush(c.other(s))
	c.checkDone()
}

// closeAfterFlush asks s to close once its queued bytes are written (Envoy
// ConnectionCloseType::FlushWrite), bounded by Config.FlushTimeout. An
// upstream that is not connected is simply marked closed (a dial in flight is
// cancelled).
func (c *conn) closeAfterFlush(s *side) {
	c.mu.Lock()
	if s.closed || s.closeQueued {
		c.mu.Unlock()
		return
	}
	if s == &c.down && c.handshaking {
		// Closing interrupts the handshake; handshake() then reports the
		// local close to the filter. Nothing can have been written yet.
		s.closeQueued = true
		c.cond.Broadcast()
		c.mu.Unlock()
		c.raw.Close()
		return
	}
	if s.nc == nil {
		s.closed = true
		if c.dialCancel != nil && s == &c.up {
			c.dialCancel()
			c.dialCancel = nil
		}
		c.cond.Broadcast()
		c.mu.Unlock()
		c.checkDone()
		return
	}
	s.closeQueued = true
	_ = s.nc.SetWriteDeadline(time.Now().Add(c.g.cfg.FlushTimeout))
	c.cond.Broadcast()
	c.mu.Unlock()
}

// checkDone unregisters the connection once both sides are closed.
func (c *conn) checkDone() {
	c.mu.Lock()
	done := c.down.closed && c.up.closed && !c.done
	if done {
		c.done = true
		// Whatever the filter still held, and queues not yet written, is gone.
		c.held = 0
		c.addBufLocked(-c.buffered)
	}
	c.mu.Unlock()
	if done {
		c.g.connDone(c)
	}
}

// abort closes both sides at once (idle timeout, gateway shutdown after the
// drain deadline) and counts the close by reason.
func (c *conn) abort(reason CloseReason) {
	c.mu.Lock()
	already := c.down.closed || c.down.closeQueued
	c.mu.Unlock()
	if !already {
		c.g.metrics.countClose(reason)
		c.logf(reason.level(), "closing client: %s", reason)
	}
	c.raw.Close()
	c.closeSide(&c.down, false)
	c.closeSide(&c.up, false)
}

// push queues b for writing on s, followed by a half-close if end. Bytes
// after a half-close or close are dropped.
//
// Bytes that alias the opposite side's read buffer (the filter passed on what
// it was just given, on the reader's goroutine: the host hands Transport a
// borrowed slice only there, and copies it before another goroutine could
// deliver it) become s.direct when nothing is queued or in flight: the
// reader writes them after the filter call, without a copy or a wake-up.
// Anything else is copied into the queue for s's writer goroutine.
func (c *conn) push(s *side, b []byte, end bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.closed || s.closeQueued || s.endQueued {
		return
	}
	if len(b) > 0 {
		if s.nc != nil && s.direct == nil && !s.writing && len(s.queue) == 0 && !(s == &c.down && c.handshaking) &&
			aliases(b, c.other(s).rbuf) {
			s.direct = b
		} else {
			s.queue = append(s.queue, bytes.Clone(b))
		}
		s.queued += len(b)
		d := int64(len(b))
		if s == &c.up { // client bytes leave the filter's hold for the queue
			d -= min(c.held, d)
			c.held -= int64(len(b)) - d
		}
		c.addBufLocked(d)
	}
	if end {
		s.endQueued = true
	}
	if s.direct == nil || end {
		c.cond.Broadcast()
	}
}

// ConnectUpstream implements host.Transport: dial cluster asynchronously and
// report the outcome to the filter.
func (c *conn) ConnectUpstream(cluster string) {
	c.mu.Lock()
	if c.down.closed || c.up.closed || c.upState == upConnecting || c.upState == upConnected {
		c.mu.Unlock()
		return
	}
	c.upState = upConnecting
	c.cluster = cluster
	ctx, cancel := context.WithTimeout(context.Background(), c.g.cfg.ConnectTimeout)
	c.dialCancel = cancel
	c.mu.Unlock()
	go c.dial(ctx, cancel, cluster)
}

// dial connects to one endpoint of cluster (round robin) and then reads the
// upstream until it goes away.
func (c *conn) dial(ctx context.Context, cancel context.CancelFunc, cluster string) {
	defer cancel()
	g := c.g
	cl := g.clusters[cluster]
	if cl == nil {
		var reason string
		if cluster == "" {
			reason = fmt.Sprintf("%s: no cluster chosen (give a --default-cluster or route the association in the policy)", CloseNoRoute)
		} else {
			g.metrics.NoCluster.Add(1)
			reason = fmt.Sprintf("%s: cluster %q is not configured (add --cluster %s=HOST:PORT)", CloseUnknownCluster, cluster, cluster)
		}
		c.connectFailed(reason)
		return
	}
	ep := cl.pick()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", ep)
	if err != nil {
		c.mu.Lock()
		closed := c.up.closed
		c.mu.Unlock()
		if closed { // cancelled because the connection is going away
			return
		}
		g.metrics.incCluster(&g.metrics.upstreamConnectFailures, cluster)
		c.connectFailed(fmt.Sprintf("%s: cluster %s endpoint %s: %v", CloseUpstreamConnectFailed, cluster, ep, err))
		return
	}
	setNoDelay(nc)
	c.mu.Lock()
	if c.up.closed {
		c.mu.Unlock()
		nc.Close()
		return
	}
	c.up.nc = nc
	c.upState = upConnected
	c.dialCancel = nil
	c.mu.Unlock()
	g.metrics.incCluster(&g.metrics.upstreamConnects, cluster)
	go c.writeLoop(&c.up)
	c.fmu.Lock()
	if !c.notifiedDown {
		if r, ok := c.filter.(upstreamAddrReporter); ok {
			r.UpstreamConnectedAddr(addrPort(nc.RemoteAddr()), addrPort(nc.LocalAddr()))
		} else {
			c.filter.UpstreamConnected()
		}
	}
	c.fmu.Unlock()
	c.readLoop(&c.up)
}

// connectFailed reports a failed connect to the filter; reason is
// "<CloseReason>: detail", which the host hands back to CloseDownstream.
// Unless the filter retried (tcp_proxy picks the route again and reconnects
// while attempts remain), the client is closed: tcp_proxy.cc
// Filter::onInitFailure closes the downstream, so a client is never left
// hanging.
func (c *conn) connectFailed(reason string) {
	c.mu.Lock()
	c.upState = upFailed
	c.dialCancel = nil
	c.mu.Unlock()
	c.fmu.Lock()
	if !c.notifiedDown {
		c.filter.UpstreamConnectFailed(reason)
	}
	c.fmu.Unlock()
	c.mu.Lock()
	retrying := c.upState == upConnecting
	closing := c.down.closed || c.down.closeQueued
	c.mu.Unlock()
	if !retrying && !closing {
		c.closeClient(reason)
	} else if retrying {
		r, detail := parseCloseReason(reason)
		c.logf(slog.LevelWarn, "%s: %s; tcp_proxy retries", r, detail)
	}
}

// closeClient logs and counts a gateway- or filter-initiated client close
// (reason as the host passes it, see parseCloseReason) and closes the client
// after flushing. The normal end of an association (upstream_closed) is
// counted, not logged.
func (c *conn) closeClient(reason string) {
	r, detail := parseCloseReason(reason)
	c.g.metrics.countClose(r)
	if r != CloseUpstreamClosed {
		if detail == "" {
			detail = r.hint()
		}
		if detail != "" {
			c.logf(r.level(), "closing client: %s: %s", r, detail)
		} else {
			c.logf(r.level(), "closing client: %s", r)
		}
	}
	c.closeAfterFlush(&c.down)
}

// WriteUpstream implements host.Transport.
func (c *conn) WriteUpstream(b []byte, endStream bool) { c.push(&c.up, b, endStream) }

// WriteDownstream implements host.Transport.
func (c *conn) WriteDownstream(b []byte, endStream bool) { c.push(&c.down, b, endStream) }

// CloseDownstream implements host.Transport: close the client after flushing.
func (c *conn) CloseDownstream(reason string) {
	c.mu.Lock()
	already := c.down.closed || c.down.closeQueued
	c.mu.Unlock()
	if already {
		c.closeAfterFlush(&c.down)
		return
	}
	c.closeClient(reason)
}

// CloseUpstream implements host.Transport: close the upstream after flushing
// (or cancel its dial).
func (c *conn) CloseUpstream() { c.closeAfterFlush(&c.up) }

// SetDownstreamReadDisabled implements host.Transport.
func (c *conn) SetDownstreamReadDisabled(disabled bool) {
	c.mu.Lock()
	c.down.readDisabled = disabled
	c.cond.Broadcast()
	c.mu.Unlock()
}
