package host

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func opsString(tr *recTransport) string { return strings.Join(tr.opsList(), "|") }

func eventsAfter(e *env, prefix string) []string {
	var out []string
	for _, ev := range e.log.events() {
		if strings.HasPrefix(ev, prefix) {
			out = append(out, ev)
		}
	}
	return out
}

// tcp_proxy.cc Filter::initialize: readDisable(true) at chain construction; onUpstreamConnection
// re-enables reads, which re-dispatches the buffered bytes from the first filter
// (connection_impl.cc readDisable/dispatch_buffered_data_).
func TestTcpProxy_ReadDisabledUntilUpstreamConnected(t *testing.T) {
	e := newTestPlugin(t, `{}`, nil)
	tr := &recTransport{}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	require.Equal(t, "read_disabled=true|connect default", opsString(tr), "ops after new connection")
	c.DownstreamData([]byte("abc"), false)
	ev := eventsAfter(e, "downstream_data")
	require.Empty(t, ev, "filter saw data while reads were disabled: %q", ev)
	s := c.State()
	require.True(t, s.Buffered == 3 && s.DownstreamReadDisabled && s.Cluster == "default" && s.TCPProxyInitialized, "state = %+v", s)
	c.UpstreamConnected()
	require.Equal(t, `read_disabled=true|connect default|read_disabled=false|up "abc" end=false`, opsString(tr), "ops")
	ev = eventsAfter(e, "downstream_data")
	require.Equal(t, []string{`downstream_data id=2 size=3 end=false data="abc"`}, ev, "downstream_data events")
	c.DownstreamData([]byte("de"), true)
	require.Equal(t, "abcde", tr.upstream(), "upstream got")
	ev = eventsAfter(e, "downstream_data")
	require.Equal(t, `downstream_data id=2 size=2 end=true data="de"`, ev[len(ev)-1], "last event")
	s = c.State()
	require.True(t, s.BytesToUpstream == 5 && s.Buffered == 0, "state = %+v", s)
}

// filter_manager_impl.cc initializeReadFilters: Pause from on_new_connection stops iteration, so
// tcp_proxy is not initialised (no route, no upstream) and, with reads disabled, no data arrives;
// only continue_stream from another callback (tick + set_effective_context) resumes it.
func TestFilterManagerImpl_InitializeReadFilters_PauseLeavesTcpProxyUninitialised(t *testing.T) {
	e := newTestPlugin(t, `{"new_conn":"pause","tick_ms":100,"tick_action":"continue"}`, nil)
	tr := &recTransport{}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	c.DownstreamData([]byte("hello"), false)
	s := c.State()
	require.True(t, !s.TCPProxyInitialized && s.Cluster == "" && s.DownstreamReadDisabled, "state = %+v", s)
	require.Equal(t, "read_disabled=true", opsString(tr), "ops")
	e.p.Tick(e.clk.Advance(50 * time.Millisecond)) // period not elapsed
	require.Empty(t, eventsAfter(e, "tick"), "tick fired before its period")
	e.p.Tick(e.clk.Advance(60 * time.Millisecond))
	require.Equal(t, "id=2 status=0", e.log.probe(t, "tick_continue"), "tick_continue")
	got := e.log.probe(t, "tick_effective_unknown")
	require.Equal(t, "status=2", got, "set_effective_context(unknown), want BAD_ARGUMENT")
	require.Equal(t, "read_disabled=true|connect default", opsString(tr), "ops after continue")
	c.UpstreamConnected()
	// The buffered bytes are dispatched from the first filter: the Wasm filter sees them now.
	ev := eventsAfter(e, "downstream_data")
	require.Equal(t, []string{`downstream_data id=2 size=5 end=false data="hello"`}, ev, "downstream_data")
	require.Equal(t, "hello", tr.upstream(), "upstream")
}

// filter_manager_impl.cc onContinueReading: every read re-runs the chain over the whole unconsumed
// buffer; while the filter pauses, data_size grows (Envoy context.cc Context::onData).
func TestFilterManagerImpl_OnContinueReading_RedeliversWholeBuffer(t *testing.T) {
	e := newTestPlugin(t, `{"pause_until":6}`, nil)
	tr := &recTransport{}
	c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1024}, tr)
	c.UpstreamConnected()
	c.DownstreamData([]byte("abc"), false)
	c.DownstreamData([]byte("def"), false)
	c.DownstreamData([]byte("g"), false)
	ev := eventsAfter(e, "downstream_data")
	want := []string{
		`downstream_data id=2 size=3 end=false data="abc"`,
		`downstream_data id=2 size=6 end=false data="abcdef"`,
		`downstream_data id=2 size=1 end=false data="g"`,
	}
	require.Equal(t, strings.Join(want, "\n"), strings.Join(ev, "\n"), "events")
	require.Equal(t, "abcdefg", tr.upstream(), "upstream")
}

// tcp_proxy.cc Config::getRegularRouteFromEntries: filter state envoy.tcp_proxy.cluster wins over the
// configured cluster. With early data the filter pauses on new connection, decides on the first
// bytes, and tcp_proxy initialises lazily when reached (filter_manager_impl.cc onContinueReading);
// its onNewConnection returns Continue in receive_before_connect mode, so its onData takes the same
// bytes in the same pass (early-data buffer) and they are flushed when the upstream connects.
func TestTcpProxy_PickRouteFromFilterState(t *testing.T) {
	e := newTestPlugin(t, `{"new_conn":"pause","cluster_on_data":"routed"}`, nil)
	tr := &recTransport{autoConnect: true}
	c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1024}, tr)
	got := opsString(tr)
	require.Empty(t, got, "ops after paused new connection (early data: no read disable, no connect)")
	tr.autoConnect = false
	c.DownstreamData([]byte("RQ"), false)
	s := c.State()
	require.True(t, s.Buffered == 0 && !s.UpstreamConnected, "before connect: %+v (the bytes belong in tcp_proxy's early-data buffer)", s)
	c.UpstreamConnected()
	require.Equal(t, "status=0", e.log.probe(t, "cluster_on_data"), "set_envoy_filter_state status")
	s = c.State()
	require.True(t, s.Cluster == "routed" && s.UpstreamConnected && s.FilterState["envoy.tcp_proxy.cluster"] == "routed", "state = %+v", s)
	require.Equal(t, `connect routed|up "RQ" end=false`, opsString(tr), "ops")
	ev := eventsAfter(e, "downstream_data")
	require.Len(t, ev, 1, "downstream_data events %q, want exactly one", ev)
	c.DownstreamData([]byte("more"), false)
	require.Equal(t, "RQmore", tr.upstream(), "upstream")
}

func TestTcpProxy_PickRouteFromFilterStateOnNewConnection(t *testing.T) {
	e := newTestPlugin(t, `{"cluster_on_new":"chosen"}`, nil)
	tr := &recTransport{}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	require.Equal(t, "read_disabled=true|connect chosen", opsString(tr), "ops")
	require.Equal(t, "chosen", c.State().Cluster, "cluster")
}

// Without early data the route is fixed at new connection: a cluster set during OnDownstreamData is
// accepted (OK) but too late (note §2.4).
func TestTcpProxy_FilterStateTooLateWithoutEarlyData(t *testing.T) {
	e := newTestPlugin(t, `{"cluster_on_data":"late"}`, nil)
	tr := &recTransport{autoConnect: true}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	c.DownstreamData([]byte("x"), false)
	require.Equal(t, "status=0", e.log.probe(t, "cluster_on_data"), "status")
	s := c.State()
	require.True(t, s.Cluster == "default" && s.FilterState["envoy.tcp_proxy.cluster"] == "late", "state = %+v", s)
}

// tcp_proxy.cc establishUpstreamConnection: unknown cluster ⇒ NoClusterFound, client closed.
func TestTcpProxy_UnknownClusterClosesDownstream(t *testing.T) {
	e := newTestPlugin(t, `{"cluster_on_new":"nope"}`, nil)
	tr := &recTransport{autoConnect: true, clusters: map[string]bool{"default": true}}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	s := c.State()
	require.True(t, s.Closed && s.CloseReason == "NoClusterFound: nope", "state = %+v", s)
	require.Equal(t, "read_disabled=true|connect nope|close_downstream NoClusterFound: nope", opsString(tr), "ops")
	ev := eventsAfter(e, "downstream_close")
	require.Equal(t, []string{"downstream_close id=2 peer=1"}, ev, "close events")
}

// Envoy Context::continueStream: continue_stream(DOWNSTREAM) is deferred until the guest call
// returns, then continueReading runs from the filter after the Wasm filter.
func TestContext_ContinueStream_DeferredContinueReading(t *testing.T) {
	e := newTestPlugin(t, `{"continue_in_data":true}`, nil)
	tr := &recTransport{}
	c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1024}, tr)
	c.UpstreamConnected()
	c.DownstreamData([]byte("abc"), false)
	require.Equal(t, "status=0", e.log.probe(t, "continue_in_data"), "status")
	require.Equal(t, "abc", tr.upstream(), "upstream")
	s := c.State()
	require.Zero(t, s.Buffered, "buffered bytes; state = %+v", s)
}

// Envoy Context::closeStream: DOWNSTREAM and UPSTREAM both close the client with FlushWrite
// (deferred); tcp_proxy then closes the upstream; the filter gets LocalClose (1).
func TestContext_CloseStream_BothTypesCloseClient(t *testing.T) {
	for _, tc := range []struct{ kind, reason string }{{"downstream", "wasm_downstream_close"}, {"upstream", "wasm_upstream_close"}} {
		t.Run(tc.kind, func(t *testing.T) {
			e := newTestPlugin(t, `{"close_on_data":"`+tc.kind+`"}`, nil)
			tr := &recTransport{autoConnect: true}
			c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
			c.DownstreamData([]byte("x"), false)
			require.Equal(t, "status=0", e.log.probe(t, "close"), "close status")
			want := `read_disabled=true|connect default|read_disabled=false|close_downstream ` + tc.reason + `|close_upstream`
			require.Equal(t, want, opsString(tr), "ops")
			s := c.State()
			require.True(t, s.Closed && s.CloseReason == tc.reason, "state = %+v", s)
			ev := e.log.events()
			require.Equal(t, []string{"downstream_close id=2 peer=1", "stream_done id=2"}, ev[len(ev)-2:], "last events of %q", ev)
			c.DownstreamClosed(true) // the owner's late close report is ignored
			n := len(eventsAfter(e, "downstream_close"))
			require.Equal(t, 1, n, "downstream_close events")
		})
	}
}

// tcp_proxy.cc Filter::onData in receive_before_connect mode: bytes are buffered until the
// upstream connects; beyond max_early_data_bytes downstream reads are disabled.
func TestTcpProxy_EarlyDataBufferedThenFlushed(t *testing.T) {
	e := newTestPlugin(t, `{}`, nil)
	tr := &recTransport{}
	c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 4}, tr)
	c.DownstreamData([]byte("abc"), false)
	require.Equal(t, "connect default", opsString(tr), "ops")
	c.DownstreamData([]byte("defgh"), false)
	require.Equal(t, "connect default|read_disabled=true", opsString(tr), "ops")
	c.UpstreamConnected()
	require.Equal(t, `connect default|read_disabled=true|up "abcdefgh" end=false|read_disabled=false`, opsString(tr), "ops")
}

// Envoy Context::onWrite: proxy_on_upstream_data sees upstream bytes and may modify them; on
// end_stream, proxy_on_upstream_connection_close(UNKNOWN=0) follows.
func TestContext_OnWrite_UpstreamDataAndClose(t *testing.T) {
	e := newTestPlugin(t, `{"upstream_prepend":"U:"}`, nil)
	tr := &recTransport{autoConnect: true}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	c.UpstreamData([]byte("resp"), false)
	c.UpstreamData([]byte("2"), true)
	require.Equal(t, `read_disabled=true|connect default|read_disabled=false|down "U:resp" end=false|down "U:2" end=true`, opsString(tr), "ops")
	ev := eventsAfter(e, "upstream_close")
	require.Equal(t, []string{"upstream_close id=2 peer=0"}, ev, "upstream_close events")
	s := c.State()
	require.Equal(t, uint64(9), s.BytesToDownstream, "bytes to downstream; state = %+v", s)
	c.UpstreamClosed()
	s = c.State()
	require.True(t, s.Closed && s.CloseReason == "upstream_closed", "state = %+v", s)
}

// connection_impl.cc onRead: end_stream with an empty buffer is delivered once.
func TestConnectionImpl_OnRead_EndStreamRaisedOnce(t *testing.T) {
	e := newTestPlugin(t, `{}`, nil)
	tr := &recTransport{autoConnect: true}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	c.DownstreamData(nil, true)
	c.DownstreamData(nil, true)
	ev := eventsAfter(e, "downstream_data")
	require.Equal(t, []string{`downstream_data id=2 size=0 end=true data=""`}, ev, "events")
	got := opsString(tr)
	require.True(t, strings.HasSuffix(got, `up "" end=true`), "ops = %q, want it to end with an empty end_stream write", got)
}

// A tick may close a paused connection through set_effective_context + close_stream (the deferred
// close runs after proxy_on_tick returns; Envoy Context::closeStream).
func TestContext_CloseStreamFromTick(t *testing.T) {
	e := newTestPlugin(t, `{"new_conn":"pause","tick_ms":100,"tick_action":"close"}`, nil)
	tr := &recTransport{}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	e.p.Tick(e.clk.Advance(100 * time.Millisecond))
	require.Equal(t, "id=2 status=0", e.log.probe(t, "tick_close"), "tick_close")
	s := c.State()
	require.True(t, s.Closed && s.CloseReason == "wasm_downstream_close" && !s.TCPProxyInitialized, "state = %+v", s)
	// No upstream was requested, so only the client is closed.
	require.Equal(t, "read_disabled=true|close_downstream wasm_downstream_close", opsString(tr), "ops")
	ev := e.log.events()
	require.Equal(t, []string{"downstream_close id=2 peer=1", "stream_done id=2"}, ev[len(ev)-2:], "last events of %q", ev)
	// The next tick no longer sees the connection.
	e.p.Tick(e.clk.Advance(100 * time.Millisecond))
	ev = eventsAfter(e, "tick")
	require.Equal(t, "tick root=1 conns=0", ev[len(ev)-1], "last of the ticks %q", ev)
}

// connection_impl.cc read-buffer watermarks: a filter that keeps pausing past the per-connection
// buffer limit gets downstream reads disabled (the chain still runs on what was read), and they
// are enabled again once the buffer drains below half the limit.
func TestConnectionImpl_ReadBufferHighWatermark(t *testing.T) {
	e := newTestPlugin(t, `{"pause_until":12}`, nil)
	tr := &recTransport{}
	c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1024, ReadBufferLimit: 8}, tr)
	c.UpstreamConnected()
	c.DownstreamData([]byte("12345"), false)
	c.DownstreamData([]byte("6789"), false) // 9 > 8: high watermark
	s := c.State()
	require.True(t, s.DownstreamReadDisabled && s.Buffered == 9, "state = %+v", s)
	// A read that was already in flight is still dispatched (only the watermark disables reads).
	c.DownstreamData([]byte("abc"), false)
	s = c.State()
	require.True(t, !s.DownstreamReadDisabled && s.Buffered == 0 && tr.upstream() == "123456789abc", "state = %+v upstream %q", s, tr.upstream())
	require.Equal(t, `connect default|read_disabled=true|up "123456789abc" end=false|read_disabled=false`, opsString(tr), "ops")
}

// Conn.DownstreamData borrows the caller's bytes only for the call: what the connection still holds
// afterwards — a buffer the filter keeps paused (Envoy context.cc Context::onData re-delivers it) or
// tcp_proxy's early-data buffer (tcp_proxy.cc Filter::onData before the upstream connects) — is a
// copy, and appending to a held buffer never writes into the caller's spare capacity.
func TestConn_DownstreamData_KeepsNoCallerBytes(t *testing.T) {
	t.Run("paused", func(t *testing.T) {
		e := newTestPlugin(t, `{"pause_until":6}`, nil)
		tr := &recTransport{}
		c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1024}, tr)
		c.UpstreamConnected()
		b := make([]byte, 3, 16)
		copy(b, "abc")
		c.DownstreamData(b, false)
		copy(b[:cap(b)], "XYZXYZXYZXYZXYZX") // the caller reuses its buffer
		c.DownstreamData([]byte("def"), false)
		require.Equal(t, "abcdef", tr.upstream(), "upstream")
		b2 := make([]byte, 3, 16)
		copy(b2, "ghi")
		e2 := newTestPlugin(t, `{"pause_until":6}`, nil)
		c2 := e2.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1024}, &recTransport{})
		c2.DownstreamData(b2, false)
		c2.DownstreamData([]byte("jk"), false)
		require.Equal(t, "ghi"+string(make([]byte, 13)), string(b2[:cap(b2)]), "caller's array")
	})
	t.Run("early data", func(t *testing.T) {
		e := newTestPlugin(t, `{}`, nil)
		tr := &recTransport{}
		c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1024}, tr)
		b := []byte("hello")
		c.DownstreamData(b, false)
		copy(b, "XXXXX")
		s := c.State()
		require.True(t, !s.UpstreamConnected && s.BytesToUpstream == 0, "state before connect = %+v", s)
		c.UpstreamConnected()
		require.Equal(t, "hello", tr.upstream(), "upstream")
	})
	t.Run("passthrough", func(t *testing.T) {
		e := newTestPlugin(t, `{}`, nil)
		tr := &recTransport{}
		c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1024}, tr)
		c.UpstreamConnected()
		b := []byte("payload")
		c.DownstreamData(b, false)
		copy(b, "XXXXXXX")
		c.DownstreamData(b, false)
		require.Equal(t, "payloadXXXXXXX", tr.upstream(), "upstream")
	})
}
