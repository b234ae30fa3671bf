// Package gateway is dicomgate's local stand-in for an Istio ingress gateway's
// DICOM listener: a TCP listener with optional TLS termination (optionally
// mutual TLS), a proxy-wasm network filter driven through the wasm/host model
// of Envoy's filter manager and tcp_proxy, and a TCP proxy to named upstream
// clusters.
//
// The gateway owns the sockets; the filter (normally a *host.Conn) owns every
// decision. For each accepted connection the gateway
//
//   - creates the filter at accept, then runs the TLS handshake (when
//     configured) and hands the filter the session's properties
//     (Filter.SetTLS), as Envoy builds the network filter chain at accept,
//     before the handshake (active_stream_listener_base.cc
//     ActiveStreamListenerBase::newConnection). A filter deadline therefore
//     counts from accept and covers the handshake; a failed handshake reaches
//     the filter as a remote close with no data, Config.HandshakeTimeout as a
//     local close (see conn.handshake);
//   - reads the client in one goroutine and hands the bytes to
//     Filter.DownstreamData, pausing while the filter has disabled reads
//     (Transport.SetDownstreamReadDisabled, Envoy readDisable) or while the
//     upstream side has more than Config.BufferLimit bytes queued (Envoy's
//     watermark flow control);
//   - dials the cluster the filter asks for (Transport.ConnectUpstream),
//     round-robin over its endpoints with a connect timeout, and reports
//     Filter.UpstreamConnected or Filter.UpstreamConnectFailed;
//   - reads the upstream in a second goroutine (Filter.UpstreamData) and writes
//     each direction from its own writer goroutine, so Transport calls never
//     block the filter's VM;
//   - propagates half-closes (FIN / TLS close_notify) and closes both sockets
//     when the filter or tcp_proxy says so, or when a side goes away.
//
// Under load it keeps serving: accept errors from resource exhaustion
// (EMFILE, ENFILE, ENOBUFS, …) back off instead of ending Serve; connections
// beyond Config.MaxConnections are closed at accept and counted; the bytes
// held for filters and queued for writing are bounded by
// Config.MaxBufferedBytes, and memory freed after a flood is returned to the
// OS.
//
// All calls into one connection's Filter are serialized by a per-connection
// mutex. Transport methods never take that mutex, so a filter may call them
// from inside its own methods or from a tick on another goroutine.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dicomgate/dicomgate/wasm/host"
)

// Filter is the part of *host.Conn the gateway drives: the events of one
// downstream connection. Implementations must copy any byte slice they keep:
// the gateway reuses its read buffers after each call returns.
type Filter interface {
	// DownstreamData delivers bytes read from the client; endStream is the
	// client's half-close (FIN or TLS close_notify).
	DownstreamData(b []byte, endStream bool)
	// UpstreamConnected reports that the connection requested with
	// Transport.ConnectUpstream is established.
	UpstreamConnected()
	// UpstreamConnectFailed reports that it could not be established.
	UpstreamConnectFailed(reason string)
	// UpstreamData delivers bytes read from the upstream; endStream is the
	// upstream's half-close.
	UpstreamData(b []byte, endStream bool)
	// DownstreamClosed reports that the client connection closed; remote is
	// false when the close was asked for through Transport.CloseDownstream or
	// the gateway closed it (Envoy LocalClose vs RemoteClose).
	DownstreamClosed(remote bool)
	// UpstreamClosed reports that the upstream connection closed.
	UpstreamClosed()
	// SetTLS reports the TLS session once the handshake completed (TLS
	// listeners only; before any DownstreamData). The filter was created at
	// accept with an empty ConnInfo.TLS (host.Conn.SetTLS).
	SetTLS(tls *host.TLSInfo, requestedServerName string)
}

// upstreamAddrReporter is implemented by *host.Conn: UpstreamConnected with the
// upstream's addresses (properties upstream.address, upstream.local_address).
type upstreamAddrReporter interface {
	UpstreamConnectedAddr(remote, local netip.AddrPort)
}

// NewFilterFunc creates the filter for an accepted connection, before its TLS
// handshake (info.TLS is then non-nil and empty; Filter.SetTLS fills it in).
// t is how the filter drives the sockets; it may be called before
// NewFilterFunc returns.
type NewFilterFunc func(info host.ConnInfo, proxy host.TCPProxyConfig, t host.Transport) Filter

// PluginFilters returns a NewFilterFunc that runs every connection through p
// (host.Plugin.NewConn).
func PluginFilters(p *host.Plugin) NewFilterFunc {
	return func(info host.ConnInfo, proxy host.TCPProxyConfig, t host.Transport) Filter {
		return p.NewConn(info, proxy, t)
	}
}

// Config configures a Gateway.
type Config struct {
	// TLS terminates TLS on accepted connections when non-nil (see
	// ServerTLSConfig); nil serves plaintext TCP.
	TLS *tls.Config
	// Clusters are the upstream clusters by name.
	Clusters []*Cluster
	// DefaultCluster is tcp_proxy's configured cluster (TcpProxy.cluster); the
	// filter may override it through filter state envoy.tcp_proxy.cluster.
	DefaultCluster string
	// MaxEarlyDataBytes is TcpProxy.max_early_data_bytes: > 0 keeps client
	// reads enabled before the upstream connects (needed for routing on the
	// A-ASSOCIATE-RQ); 0 is Envoy's and Istio's default.
	MaxEarlyDataBytes int
	// NewFilter creates each connection's filter (required).
	NewFilter NewFilterFunc
	// ConnectTimeout bounds each upstream dial; 0 means 5 s (Envoy's default
	// Cluster.connect_timeout).
	ConnectTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake (Envoy's
	// transport_socket_connect_timeout, 15 s on Istio's gateways); 0 means
	// 15 s. It is an outer bound: the filter, created at accept, may close the
	// connection earlier (its inspect deadline counts from accept).
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection on which neither side has sent a byte
	// for this long (tcp_proxy idle_timeout); 0 means 1 h (Envoy's default),
	// negative disables it.
	IdleTimeout time.Duration
	// FlushTimeout bounds how long a closing side may take to flush queued
	// bytes before it is closed anyway; 0 means 5 s.
	FlushTimeout time.Duration
	// BufferLimit is the per-direction high watermark of queued bytes above
	// which the opposite side stops reading; 0 means 1 MiB (Envoy's default
	// per_connection_buffer_limit_bytes).
	BufferLimit int
	// Logf receives the gateway's own diagnostics (one line per call, those
	// about one connection prefixed "conn N: "); nil discards them. Log, when
	// set, is used instead.
	Logf func(format string, args ...any)
	// Log receives the gateway's own diagnostics with their level and the
	// connection they are about (0: none; the same number as the filter's
	// connection.id), msg without a "conn N: " prefix. It wins over Logf.
	Log func(level slog.Level, conn uint64, msg string)
	// Metrics receives the gateway's counters; nil allocates a new set
	// (see Gateway.Metrics).
	Metrics *Metrics
	// MaxConnections caps the client connections open at once (Envoy's
	// listener connection limit, max_connections); a connection accepted
	// beyond it is closed at once — before TLS, without a filter — and
	// counted in connections_overflow_total (Envoy's listener stat
	// downstream_cx_overflow, ActiveTcpListener::onAccept). 0 means no
	// limit; DefaultMaxConnections sizes it from the file descriptor limit.
	MaxConnections int
	// MaxBufferedBytes is the global budget of bytes the gateway holds for
	// all connections together: client bytes delivered to a filter and not
	// yet passed upstream (an unfinished A-ASSOCIATE-RQ in the filter's or
	// tcp_proxy's buffer) plus the bytes queued for writing either way. While
	// the total is at or above the budget, only connections that hold nothing
	// read (one read each, ReadBufferSize at most), so an honest association
	// whose RQ fits one read is decided while a flood of unfinished RQs waits
	// for the filter's deadline. Reads resume below the budget. 0 means
	// 128 MiB; negative disables the budget. Per connection, the filter bounds
	// what it holds (maxAssociateRQBytes) and BufferLimit bounds the queues.
	MaxBufferedBytes int64
}

// Accept back-off bounds: an accept error that leaves the listener usable
// (EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED, timeouts) is retried after
// a pause that doubles from acceptBackoffMin up to acceptBackoffMax.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// FDReserve is the number of file descriptors DefaultMaxConnections keeps
// for everything but proxied connections: listeners, the metrics server,
// log and policy files, the Go runtime.
const FDReserve = 64

// DefaultMaxConnections sizes Config.MaxConnections from the process's file
// descriptor limit (RLIMIT_NOFILE): each proxied connection uses two
// descriptors (client and upstream), FDReserve are kept for the rest. So the
// gateway refuses a connection (counted) before accept would fail with
// EMFILE. It returns 0 (no limit) when the limit is unknown or unlimited, and
// at least 1.
func DefaultMaxConnections() int {
	n := fdLimit()
	if n == 0 || n > 1<<40 {
		return 0
	}
	if n <= 2*FDReserve {
		return max(1, int(n)/4)
	}
	return int((n - FDReserve) / 2)
}

// defaultMaxBufferedBytes is Config.MaxBufferedBytes when 0.
const defaultMaxBufferedBytes = 128 << 20

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("gateway: server closed")

// Gateway accepts client connections and proxies them through the filter.
type Gateway struct {
	cfg      Config
	clusters map[string]*Cluster
	metrics  *Metrics

	localSubject       string
	localURIs, localDN []string
	peers              peerCache // peer certificate properties, by DER

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   bool
	nextID    uint64
	idle      chan struct{} // closed and replaced whenever conns becomes empty
	sweeping  bool          // the idle sweeper goroutine runs
	stop      chan struct{} // closed by Shutdown/Close: stops the sweeper

	// buffered is the sum of every connection's conn.buffered (see
	// Config.MaxBufferedBytes).
	buffered atomic.Int64
	// flooded is set once buffered passed freeOSMemoryAbove; the connection
	// that brings it back under a quarter of that returns the freed heap to
	// the OS (debug.FreeOSMemory) and clears it.
	flooded atomic.Bool
	// lastOverflowLog rate-limits the log line of refused connections.
	lastOverflowLog atomic.Int64
}

// New validates cfg and returns a Gateway ready to Serve.
func New(cfg Config) (*Gateway, error) {
	if cfg.NewFilter == nil {
		return nil, errors.New("gateway: Config.NewFilter is required")
	}
	g := &Gateway{
		cfg:       cfg,
		clusters:  map[string]*Cluster{},
		metrics:   cfg.Metrics,
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		idle:      make(chan struct{}),
		stop:      make(chan struct{}),
	}
	if g.metrics == nil {
		g.metrics = &Metrics{}
	}
	g.metrics.bufferedFn = g.BufferedBytes
	for i, c := range cfg.Clusters {
		if c == nil || c.Name == "" {
			return nil, fmt.Errorf("gateway: Clusters[%d] has no name", i)
		}
		if len(c.Endpoints) == 0 {
			return nil, fmt.Errorf("gateway: cluster %q has no endpoints", c.Name)
		}
		if _, dup := g.clusters[c.Name]; dup {
			return nil, fmt.Errorf("gateway: cluster %q is defined twice; give each --cluster a unique name", c.Name)
		}
		g.clusters[c.Name] = c
		g.metrics.defineCluster(c.Name)
	}
	if cfg.DefaultCluster != "" && g.clusters[cfg.DefaultCluster] == nil {
		return nil, fmt.Errorf("gateway: default cluster %q is not defined (defined: %s)", cfg.DefaultCluster, strings.Join(g.clusterNames(), ", "))
	}
	if cfg.MaxEarlyDataBytes < 0 {
		return nil, fmt.Errorf("gateway: MaxEarlyDataBytes %d must be >= 0", cfg.MaxEarlyDataBytes)
	}
	if g.cfg.ConnectTimeout <= 0 {
		g.cfg.ConnectTimeout = 5 * time.Second
	}
	if g.cfg.HandshakeTimeout <= 0 {
		g.cfg.HandshakeTimeout = 15 * time.Second
	}
	if g.cfg.IdleTimeout == 0 {
		g.cfg.IdleTimeout = time.Hour
	}
	if g.cfg.FlushTimeout <= 0 {
		g.cfg.FlushTimeout = 5 * time.Second
	}
	if g.cfg.BufferLimit <= 0 {
		g.cfg.BufferLimit = 1 << 20
	}
	if cfg.MaxConnections < 0 {
		return nil, fmt.Errorf("gateway: MaxConnections %d must be >= 0 (0: no limit)", cfg.MaxConnections)
	}
	if g.cfg.MaxBufferedBytes == 0 {
		g.cfg.MaxBufferedBytes = defaultMaxBufferedBytes
	}
	if g.cfg.Log == nil {
		logf := g.cfg.Logf
		if logf == nil {
			logf = func(string, ...any) {}
		}
		g.cfg.Log = func(_ slog.Level, conn uint64, msg string) {
			if conn != 0 {
				logf("conn %d: %s", conn, msg)
				return
			}
			logf("%s", msg)
		}
	}
	g.localSubject, g.localURIs, g.localDN = localTLSInfo(cfg.TLS)
	return g, nil
}

// logf logs one diagnostic through Config.Log.
func (g *Gateway) logf(level slog.Level, conn uint64, format string, args ...any) {
	g.cfg.Log(level, conn, fmt.Sprintf(format, args...))
}

func (g *Gateway) clusterNames() []string {
	var names []string
	for n := range g.clusters {
		names = append(names, n)
	}
	return names
}

// Metrics returns the gateway's counters.
func (g *Gateway) Metrics() *Metrics { return g.metrics }

// WritePrometheus writes the gateway's metrics in Prometheus text format.
func (g *Gateway) WritePrometheus(w io.Writer) error { return g.metrics.WritePrometheus(w) }

// ActiveConnections returns the number of client connections not yet closed.
func (g *Gateway) ActiveConnections() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// Serve accepts connections on ln until ln fails or the gateway is shut down;
// it then returns ErrServerClosed (after Shutdown/Close) or the accept error.
// Serve may be called for several listeners.
func (g *Gateway) Serve(ln net.Listener) error {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	g.listeners[ln] = struct{}{}
	if !g.sweeping && g.cfg.IdleTimeout > 0 {
		g.sweeping = true
		go g.sweepIdle()
	}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.listeners, ln)
		g.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			g.mu.Lock()
			closing := g.closing
			g.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			if !retryableAcceptError(err) {
				return err
			}
			// Out of file descriptors or kernel memory: the connections
			// already open go on, new ones wait in the listen backlog until
			// descriptors are freed. Never give up the listener for this.
			g.metrics.AcceptErrors.Add(1)
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			g.logf(slog.LevelWarn, 0, "accept: %v; %d connection(s) open; retrying in %v", err, g.ActiveConnections(), backoff)
			select {
			case <-time.After(backoff):
			case <-g.stop:
			}
			continue
		}
		backoff = 0
		g.accept(nc)
	}
}

// retryableAcceptError reports whether an Accept error leaves the listener
// usable: resource exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM), a
// connection aborted before it was accepted, or a timeout.
func retryableAcceptError(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// accept registers nc and starts its goroutine; refused while shutting down
// or when MaxConnections are open.
func (g *Gateway) accept(nc net.Conn) {
	g.metrics.ConnectionsTotal.Add(1)
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		g.metrics.countClose(CloseShutdown)
		nc.Close()
		return
	}
	if g.cfg.MaxConnections > 0 && len(g.conns) >= g.cfg.MaxConnections {
		g.mu.Unlock()
		// Envoy ActiveTcpListener::onAccept: over the listener's
		// connection limit the socket is closed at once, no filter chain.
		// Counted and logged before the close, so that whoever sees the
		// close also sees the count.
		g.metrics.ConnectionsOverflow.Add(1)
		g.metrics.countClose(CloseConnectionLimit)
		if now := time.Now().UnixNano(); now-g.lastOverflowLog.Load() > int64(time.Second) {
			g.lastOverflowLog.Store(now)
			g.logf(slog.LevelWarn, 0, "refusing connections: %d open = MaxConnections (raise --max-connections or the file descriptor limit); counted in connections_overflow_total and downstream_closes_total{reason=%q}", g.cfg.MaxConnections, CloseConnectionLimit)
		}
		nc.Close()
		return
	}
	g.nextID++
	c := newConn(g, g.nextID, nc)
	g.conns[c] = struct{}{}
	g.mu.Unlock()
	g.metrics.ConnectionsActive.Add(1)
	go c.run()
}

// addBuffered adds delta to the global buffered bytes; after a flood (more
// than freeOSMemoryAbove at some point) it returns the freed heap to the OS
// once the total is back under a quarter of that.
func (g *Gateway) addBuffered(delta int64) {
	n := g.buffered.Add(delta)
	switch {
	case delta > 0 && n > freeOSMemoryAbove:
		g.flooded.Store(true)
	case delta < 0 && n < freeOSMemoryAbove/4 && g.flooded.CompareAndSwap(true, false):
		// The Go runtime keeps freed heap mapped and returns it slowly
		// (background scavenger); after a flood of buffered RQs that is
		// hundreds of MiB of RSS for minutes. Return it now, once per flood.
		g.metrics.MemoryReturns.Add(1)
		go debug.FreeOSMemory()
	}
}

// freeOSMemoryAbove is the buffered total that marks a flood (see addBuffered).
const freeOSMemoryAbove = 32 << 20

// overBudget reports whether the buffered total reached Config.MaxBufferedBytes.
func (g *Gateway) overBudget() bool {
	return g.cfg.MaxBufferedBytes > 0 && g.buffered.Load() >= g.cfg.MaxBufferedBytes
}

// BufferedBytes returns the bytes the gateway holds for all connections (see
// Config.MaxBufferedBytes).
func (g *Gateway) BufferedBytes() int64 { return g.buffered.Load() }

// connDone unregisters c once both of its sockets are closed.
func (g *Gateway) connDone(c *conn) {
	g.mu.Lock()
	if _, ok := g.conns[c]; !ok {
		g.mu.Unlock()
		return
	}
	delete(g.conns, c)
	if len(g.conns) == 0 {
		close(g.idle)
		g.idle = make(chan struct{})
	}
	g.mu.Unlock()
	g.metrics.ConnectionsActive.Add(-1)
}

// Shutdown stops accepting (closing every listener), then waits until every
// open connection has finished on its own (drain) or ctx is done, in which case
// the remaining connections are closed and ctx's error is returned.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.stopAccepting()
	for {
		g.mu.Lock()
		n := len(g.conns)
		idle := g.idle
		g.mu.Unlock()
		if n == 0 {
			g.stopSweeper()
			return nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			g.closeAll()
			g.stopSweeper()
			return ctx.Err()
		}
	}
}

// Close stops accepting and closes every connection at once.
func (g *Gateway) Close() error {
	g.stopAccepting()
	g.closeAll()
	g.stopSweeper()
	return nil
}

// stopAccepting marks the gateway closing and closes its listeners.
func (g *Gateway) stopAccepting() {
	g.mu.Lock()
	g.closing = true
	for ln := range g.listeners {
		ln.Close()
	}
	g.mu.Unlock()
}

func (g *Gateway) stopSweeper() {
	g.mu.Lock()
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	g.mu.Unlock()
}

// sweepIdle closes connections idle for longer than Config.IdleTimeout
// (tcp_proxy.cc Filter::onIdleTimeout), checking every IdleTimeout/4, at
// least once a minute.
func (g *Gateway) sweepIdle() {
	every := min(max(g.cfg.IdleTimeout/4, 10*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case now := <-t.C:
			g.mu.Lock()
			var idle []*conn
			for c := range g.conns {
				if now.Sub(time.Unix(0, c.lastActive.Load())) > g.cfg.IdleTimeout {
					idle = append(idle, c)
				}
			}
			g.mu.Unlock()
			for _, c := range idle {
				g.metrics.IdleTimeouts.Add(1)
				c.abort(CloseIdleTimeout)
			}
		}
	}
}

func (g *Gateway) closeAll() {
	g.mu.Lock()
	conns := make([]*conn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		c.abort(CloseShutdown)
	}
}

// addrPort converts a net.Addr of a TCP socket to netip.AddrPort (zero if not TCP).
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
