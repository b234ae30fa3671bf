//go:build !wasip1

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/filters/dicomgate/internal/abi"
	"github.com/dicomgate/dicomgate/internal/filtertable"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/stretchr/testify/require"
)

// nativeRunner runs the filter compiled into the test binary under the SDK's
// proxytest emulator, and models around it what proxytest lacks: Envoy's
// connection read buffer and the tcp_proxy that follows the filter
// (tcp_proxy.cc: route picked at its onNewConnection from the
// envoy.tcp_proxy.cluster filter state, whole buffer moved upstream by
// onData), close_stream, set_buffer_bytes(0, n) (context.cc
// Buffer::copyFrom: drain n, prepend), end_of_stream and a fake clock.
type nativeRunner struct {
	host   proxytest.HostEmulator
	reset  func()
	clock  time.Time
	conns  map[uint32]*nativeConn
	tcps   map[uint32]types.TcpContext
	cur    *nativeConn
	nextID uint64
	// propKeys are the property paths set on the emulator so far (its
	// properties are global, not per connection).
	propKeys map[string]bool
	listener filtertable.Listener
	// violations are what the runner's host could not do or saw the filter
	// do wrong (a bad set_envoy_filter_state, a property proxytest cannot
	// unset). The runner's methods run on the goroutines of filtertable's
	// subtests, where the test that made the runner must not FailNow, so
	// they are collected and required empty when that test ends.
	violations []string
}

// violation records a failure of the runner's host (see violations).
func (r *nativeRunner) violation(format string, args ...any) {
	r.violations = append(r.violations, fmt.Sprintf(format, args...))
}

var _ filtertable.Runner = (*nativeRunner)(nil)

func newNativeRunner(tb testing.TB) *nativeRunner {
	r := &nativeRunner{clock: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	old := abi.Emulated
	abi.Emulated = abi.Emulation{CloseDownstream: r.closeDownstream, ReplaceDownstreamPrefix: r.replacePrefix,
		Now: func() int64 { return r.clock.UnixNano() }}
	tb.Cleanup(func() {
		if r.reset != nil {
			r.reset()
			r.reset = nil
		}
		abi.Emulated = old
		require.Empty(tb, r.violations, "the native runner's host: each line is a host call the filter made wrongly or a step the runner could not take")
	})
	return r
}

// recordingPlugin lets the runner reach the connection contexts (to deliver
// end_of_stream, which proxytest cannot).
type recordingPlugin struct {
	*plugin
	r *nativeRunner
}

func (p recordingPlugin) NewTcpContext(id uint32) types.TcpContext {
	tc := p.plugin.NewTcpContext(id)
	p.r.tcps[id] = tc
	return tc
}

func (r *nativeRunner) Configure(config []byte, l filtertable.Listener) error {
	if r.reset != nil {
		r.reset()
	}
	r.listener = l
	r.conns = map[uint32]*nativeConn{}
	r.tcps = map[uint32]types.TcpContext{}
	r.propKeys = map[string]bool{}
	opt := proxytest.NewEmulatorOption().
		WithPluginContext(func(id uint32) types.PluginContext {
			return recordingPlugin{plugin: newPlugin(id).(*plugin), r: r}
		}).
		WithPluginConfiguration(config)
	r.host, r.reset = proxytest.NewHostEmulator(opt)
	r.host.RegisterForeignFunction(abi.ForeignSetFilterState, r.setFilterState)
	if st := r.host.StartVM(); st != types.OnVMStartStatusOK {
		return errors.New("proxy_on_vm_start returned false")
	}
	if st := r.host.StartPlugin(); st != types.OnPluginStartStatusOK {
		return errors.New("proxy_on_configure returned false")
	}
	return nil
}

func (r *nativeRunner) NewConn(props filtertable.ConnProps) (filtertable.Conn, error) {
	r.nextID++
	c := &nativeConn{r: r, props: props, connID: r.nextID, filterState: map[string]string{}}
	if err := c.setProps(); err != nil {
		return nil, err
	}
	r.cur = c
	id, act := r.host.InitializeConnection()
	r.cur = nil
	c.id = id
	r.conns[id] = c
	if act == types.ActionContinue && !c.closed {
		c.tcpProxyNewConnection()
	}
	return c, nil
}

func (r *nativeRunner) Advance(d time.Duration) {
	r.clock = r.clock.Add(d)
	if r.host.GetTickPeriod() > 0 {
		r.host.Tick()
	}
}

func (r *nativeRunner) Metric(series string) (uint64, bool) {
	v, err := r.host.GetCounterMetric(filtertable.EncodeSeries(series))
	return v, err == nil
}

func (r *nativeRunner) Logs(level filtertable.Level) []string {
	switch level {
	case filtertable.LevelDebug:
		return r.host.GetDebugLogs()
	case filtertable.LevelInfo:
		return r.host.GetInfoLogs()
	case filtertable.LevelWarn:
		return r.host.GetWarnLogs()
	case filtertable.LevelError:
		return append(append([]string(nil), r.host.GetErrorLogs()...), r.host.GetCriticalLogs()...)
	}
	return nil
}

// setFilterState is Envoy's set_envoy_filter_state foreign function
// (foreign.cc): it decodes SetEnvoyFilterStateArguments and stores the value
// on the calling connection's filter state. Only factory-backed keys exist.
func (r *nativeRunner) setFilterState(arg []byte) []byte {
	path, value, span, err := decodeFilterStateArgs(arg)
	if err != nil {
		r.violation("set_envoy_filter_state: %v (arg %x)", err, arg)
		return []byte{2}
	}
	if path != abi.FilterStateCluster {
		r.violation("set_envoy_filter_state: no object factory for %q", path)
		return []byte{1}
	}
	if span != abi.LifeSpanDownstreamConnection {
		r.violation("set_envoy_filter_state: span %d; want DownstreamConnection (2)", span)
	}
	if r.cur == nil {
		// Called outside a connection callback (e.g. from a tick): Envoy
		// finds no stream info and returns NOT_FOUND.
		r.violation("set_envoy_filter_state called outside a connection callback")
		return []byte{1}
	}
	r.cur.filterState[path] = value
	return []byte{0}
}

// decodeFilterStateArgs is an independent protobuf decoder for the three
// fields of SetEnvoyFilterStateArguments.
func decodeFilterStateArgs(b []byte) (path, value string, span uint64, err error) {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return "", "", 0, errors.New("bad field key")
		}
		b = b[n:]
		switch key {
		case 1<<3 | 2, 2<<3 | 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return "", "", 0, errors.New("bad length")
			}
			s := string(b[n : n+int(l)])
			b = b[n+int(l):]
			if key>>3 == 1 {
				path = s
			} else {
				value = s
			}
		case 3 << 3: // field 3, wire type 0 (varint)
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return "", "", 0, errors.New("bad varint")
			}
			span, b = v, b[n:]
		default:
			return "", "", 0, errors.New("unexpected field")
		}
	}
	return path, value, span, nil
}

func (r *nativeRunner) closeDownstream(id uint32) error {
	c, ok := r.conns[id]
	if !ok {
		if r.cur != nil && r.cur.id == 0 {
			c = r.cur // closed from OnNewConnection, before the id is known
		} else {
			return errors.New("close_stream: unknown context")
		}
	}
	c.closed = true
	return nil
}

func (r *nativeRunner) replacePrefix(id uint32, n int, data []byte) error {
	c, ok := r.conns[id]
	if !ok || r.cur != c {
		return errors.New("set_buffer_bytes: no paused downstream buffer for this context")
	}
	if n > len(c.buf) {
		n = len(c.buf)
	}
	c.buf = append(append([]byte(nil), data...), c.buf[n:]...)
	return nil
}

// nativeConn models one downstream connection.
type nativeConn struct {
	r           *nativeRunner
	id          uint32
	connID      uint64
	props       filtertable.ConnProps
	buf         []byte
	closed      bool
	connected   bool
	cluster     string
	filterState map[string]string
	forwarded   []byte
	gone        bool // the client closed the connection
}

// ClientClose: Envoy RemoteClose -> proxy_on_downstream_connection_close,
// then proxy_on_done / proxy_on_log / proxy_on_delete.
func (c *nativeConn) ClientClose() {
	if c.gone {
		return
	}
	c.gone = true
	r := c.r
	if err := c.setProps(); err != nil {
		r.violation("conn %d: client close: %v", c.connID, err)
		return
	}
	r.cur = c
	defer func() { r.cur = nil }()
	// proxytest's CloseDownstreamConnection reports a LOCAL close; Envoy
	// reports the client's close as REMOTE (context.cc Context::onEvent).
	if err := proxywasm.SetEffectiveContext(c.id); err != nil {
		r.violation("conn %d: client close: SetEffectiveContext: %v", c.connID, err)
		return
	}
	r.tcps[c.id].OnDownstreamClose(types.PeerTypeRemote)
	r.host.CompleteConnection(c.id)
}

func (c *nativeConn) setProps() error {
	r := c.r
	set := func(path []string, v []byte) {
		r.host.SetProperty(path, v)
		r.propKeys[strings.Join(path, ".")] = true
	}
	id := make([]byte, 8)
	binary.LittleEndian.PutUint64(id, c.connID)
	set([]string{"connection", "id"}, id)
	mtls := []byte{0}
	if c.props.MTLS {
		mtls[0] = 1
	}
	set([]string{"connection", "mtls"}, mtls)
	for _, p := range []struct {
		path []string
		v    string
	}{
		{[]string{"source", "address"}, c.props.Source},
		{[]string{"connection", "uri_san_peer_certificate"}, c.props.URISAN},
		{[]string{"connection", "dns_san_peer_certificate"}, c.props.DNSSAN},
		{[]string{"connection", "subject_peer_certificate"}, c.props.Subject},
		{[]string{"connection", "sha256_peer_certificate_digest"}, c.props.SHA256},
	} {
		if p.v != "" {
			set(p.path, []byte(p.v))
		} else if r.propKeys[strings.Join(p.path, ".")] {
			return errors.New("native runner: property " + strings.Join(p.path, ".") +
				" was set for an earlier connection and cannot be removed in proxytest; use a separate case")
		}
	}
	return nil
}

func (c *nativeConn) Data(chunk []byte, eos bool) {
	if c.closed || c.gone {
		return
	}
	r := c.r
	if err := c.setProps(); err != nil {
		r.violation("conn %d: data: %v", c.connID, err)
		return
	}
	c.buf = append(c.buf, chunk...)
	if r.listener.NoEarlyData && !c.connected {
		// tcp_proxy disabled downstream reads at chain construction and
		// re-enables them only once its upstream connected
		// (tcp_proxy.cc Filter::initialize): the bytes wait in the socket.
		return
	}
	r.cur = c
	defer func() { r.cur = nil }()
	act := types.ActionPause
	if len(chunk) > 0 {
		act = r.host.CallOnDownstreamData(c.id, chunk)
	}
	if eos && !c.closed && (act == types.ActionPause || len(chunk) == 0) {
		// proxytest always passes end_of_stream=false; deliver the
		// half-close the way Envoy does: onData(whole buffer, true).
		if err := proxywasm.SetEffectiveContext(c.id); err != nil {
			r.violation("conn %d: end of stream: SetEffectiveContext: %v", c.connID, err)
			return
		}
		act = r.tcps[c.id].OnDownstreamData(len(c.buf), true)
	}
	if c.closed || act != types.ActionContinue {
		return
	}
	if !c.connected {
		// The filter continued for the first time: tcp_proxy's
		// onNewConnection picks the route and connects; once connected,
		// Envoy re-dispatches the still-buffered bytes from the first
		// filter (connection_impl.cc readDisable -> onRead), so the filter
		// sees them again and must let them pass untouched.
		c.tcpProxyNewConnection()
		if len(c.buf) == 0 {
			return
		}
		if r.host.CallOnDownstreamData(c.id, c.buf) != types.ActionContinue || c.closed {
			return
		}
	}
	c.forwarded = append(c.forwarded, c.buf...)
	c.buf = nil
}

func (c *nativeConn) tcpProxyNewConnection() {
	c.connected = true
	c.cluster = filtertable.DefaultCluster
	if v, ok := c.filterState[abi.FilterStateCluster]; ok {
		c.cluster = v
	}
}

func (c *nativeConn) Observe() filtertable.Observed {
	o := filtertable.Observed{Closed: c.closed, UpstreamConnect: c.connected, Forwarded: c.forwarded,
		Properties: map[string]string{}}
	if c.connected {
		o.Cluster = c.cluster
	}
	for _, k := range []string{"dicom.calling_ae", "dicom.called_ae", "dicom.decision", "dicom.rule"} {
		if v, err := c.r.host.GetProperty([]string{k}); err == nil {
			o.Properties[k] = string(v)
		}
	}
	return o
}

// TestFilterTable runs the shared behaviour table against the native build.
func TestFilterTable(t *testing.T) {
	filtertable.Run(t, newNativeRunner(t))
}
