package host

import (
	"strings"
	"testing"
	"time"
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
	if got := opsString(tr); got != "read_disabled=true|connect default" {
		t.Fatalf("ops after new connection = %q", got)
	}
	c.DownstreamData([]byte("abc"), false)
	if ev := eventsAfter(e, "downstream_data"); len(ev) != 0 {
		t.Fatalf("filter saw data while reads were disabled: %q", ev)
	}
	if s := c.State(); s.Buffered != 3 || !s.DownstreamReadDisabled || s.Cluster != "default" || !s.TCPProxyInitialized {
		t.Fatalf("state = %+v", s)
	}
	c.UpstreamConnected()
	if got := opsString(tr); got != `read_disabled=true|connect default|read_disabled=false|up "abc" end=false` {
		t.Fatalf("ops = %q", got)
	}
	if ev := eventsAfter(e, "downstream_data"); len(ev) != 1 || ev[0] != `downstream_data id=2 size=3 end=false data="abc"` {
		t.Fatalf("downstream_data events = %q", ev)
	}
	c.DownstreamData([]byte("de"), true)
	if got := tr.upstream(); got != "abcde" {
		t.Fatalf("upstream got %q", got)
	}
	if ev := eventsAfter(e, "downstream_data"); ev[len(ev)-1] != `downstream_data id=2 size=2 end=true data="de"` {
		t.Fatalf("last event %q", ev[len(ev)-1])
	}
	if s := c.State(); s.BytesToUpstream != 5 || s.Buffered != 0 {
		t.Fatalf("state = %+v", s)
	}
}

// filter_manager_impl.cc initializeReadFilters: Pause from on_new_connection stops iteration, so
// tcp_proxy is not initialised (no route, no upstream) and, with reads disabled, no data arrives;
// only continue_stream from another callback (tick + set_effective_context) resumes it.
func TestFilterManagerImpl_InitializeReadFilters_PauseLeavesTcpProxyUninitialised(t *testing.T) {
	e := newTestPlugin(t, `{"new_conn":"pause","tick_ms":100,"tick_action":"continue"}`, nil)
	tr := &recTransport{}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	c.DownstreamData([]byte("hello"), false)
	if s := c.State(); s.TCPProxyInitialized || s.Cluster != "" || !s.DownstreamReadDisabled {
		t.Fatalf("state = %+v", s)
	}
	if got := opsString(tr); got != "read_disabled=true" {
		t.Fatalf("ops = %q", got)
	}
	e.p.Tick(e.clk.Advance(50 * time.Millisecond)) // period not elapsed
	if len(eventsAfter(e, "tick")) != 0 {
		t.Fatal("tick fired before its period")
	}
	e.p.Tick(e.clk.Advance(60 * time.Millisecond))
	if got := e.log.probe(t, "tick_continue"); got != "id=2 status=0" {
		t.Fatalf("tick_continue = %q", got)
	}
	if got := e.log.probe(t, "tick_effective_unknown"); got != "status=2" {
		t.Fatalf("set_effective_context(unknown) = %q, want BAD_ARGUMENT", got)
	}
	if got := opsString(tr); got != "read_disabled=true|connect default" {
		t.Fatalf("ops after continue = %q", got)
	}
	c.UpstreamConnected()
	// The buffered bytes are dispatched from the first filter: the Wasm filter sees them now.
	if ev := eventsAfter(e, "downstream_data"); len(ev) != 1 || ev[0] != `downstream_data id=2 size=5 end=false data="hello"` {
		t.Fatalf("downstream_data = %q", ev)
	}
	if tr.upstream() != "hello" {
		t.Fatalf("upstream = %q", tr.upstream())
	}
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
	if strings.Join(ev, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(ev, "\n"), strings.Join(want, "\n"))
	}
	if tr.upstream() != "abcdefg" {
		t.Fatalf("upstream = %q", tr.upstream())
	}
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
	if got := opsString(tr); got != "" {
		t.Fatalf("ops after paused new connection = %q (early data: no read disable, no connect)", got)
	}
	tr.autoConnect = false
	c.DownstreamData([]byte("RQ"), false)
	if s := c.State(); s.Buffered != 0 || s.UpstreamConnected {
		t.Fatalf("before connect: %+v (the bytes belong in tcp_proxy's early-data buffer)", s)
	}
	c.UpstreamConnected()
	if got := e.log.probe(t, "cluster_on_data"); got != "status=0" {
		t.Fatalf("set_envoy_filter_state status = %q", got)
	}
	s := c.State()
	if s.Cluster != "routed" || !s.UpstreamConnected || s.FilterState["envoy.tcp_proxy.cluster"] != "routed" {
		t.Fatalf("state = %+v", s)
	}
	if got := opsString(tr); got != `connect routed|up "RQ" end=false` {
		t.Fatalf("ops = %q", got)
	}
	if ev := eventsAfter(e, "downstream_data"); len(ev) != 1 {
		t.Fatalf("downstream_data events %q, want exactly one", ev)
	}
	c.DownstreamData([]byte("more"), false)
	if tr.upstream() != "RQmore" {
		t.Fatalf("upstream = %q", tr.upstream())
	}
}

func TestTcpProxy_PickRouteFromFilterStateOnNewConnection(t *testing.T) {
	e := newTestPlugin(t, `{"cluster_on_new":"chosen"}`, nil)
	tr := &recTransport{}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	if got := opsString(tr); got != "read_disabled=true|connect chosen" {
		t.Fatalf("ops = %q", got)
	}
	if c.State().Cluster != "chosen" {
		t.Fatalf("cluster = %q", c.State().Cluster)
	}
}

// Without early data the route is fixed at new connection: a cluster set during OnDownstreamData is
// accepted (OK) but too late (note §2.4).
func TestTcpProxy_FilterStateTooLateWithoutEarlyData(t *testing.T) {
	e := newTestPlugin(t, `{"cluster_on_data":"late"}`, nil)
	tr := &recTransport{autoConnect: true}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	c.DownstreamData([]byte("x"), false)
	if got := e.log.probe(t, "cluster_on_data"); got != "status=0" {
		t.Fatalf("status = %q", got)
	}
	if s := c.State(); s.Cluster != "default" || s.FilterState["envoy.tcp_proxy.cluster"] != "late" {
		t.Fatalf("state = %+v", s)
	}
}

// tcp_proxy.cc establishUpstreamConnection: unknown cluster ⇒ NoClusterFound, client closed.
func TestTcpProxy_UnknownClusterClosesDownstream(t *testing.T) {
	e := newTestPlugin(t, `{"cluster_on_new":"nope"}`, nil)
	tr := &recTransport{autoConnect: true, clusters: map[string]bool{"default": true}}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	s := c.State()
	if !s.Closed || s.CloseReason != "NoClusterFound: nope" {
		t.Fatalf("state = %+v", s)
	}
	if got := opsString(tr); got != "read_disabled=true|connect nope|close_downstream NoClusterFound: nope" {
		t.Fatalf("ops = %q", got)
	}
	if ev := eventsAfter(e, "downstream_close"); len(ev) != 1 || ev[0] != "downstream_close id=2 peer=1" {
		t.Fatalf("close events = %q", ev)
	}
}

// Envoy Context::continueStream: continue_stream(DOWNSTREAM) is deferred until the guest call
// returns, then continueReading runs from the filter after the Wasm filter.
func TestContext_ContinueStream_DeferredContinueReading(t *testing.T) {
	e := newTestPlugin(t, `{"continue_in_data":true}`, nil)
	tr := &recTransport{}
	c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1024}, tr)
	c.UpstreamConnected()
	c.DownstreamData([]byte("abc"), false)
	if got := e.log.probe(t, "continue_in_data"); got != "status=0" {
		t.Fatalf("status = %q", got)
	}
	if tr.upstream() != "abc" {
		t.Fatalf("upstream = %q", tr.upstream())
	}
	if s := c.State(); s.Buffered != 0 {
		t.Fatalf("state = %+v", s)
	}
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
			if got := e.log.probe(t, "close"); got != "status=0" {
				t.Fatalf("close status = %q", got)
			}
			want := `read_disabled=true|connect default|read_disabled=false|close_downstream ` + tc.reason + `|close_upstream`
			if got := opsString(tr); got != want {
				t.Fatalf("ops = %q, want %q", got, want)
			}
			if s := c.State(); !s.Closed || s.CloseReason != tc.reason {
				t.Fatalf("state = %+v", s)
			}
			ev := e.log.events()
			if ev[len(ev)-2] != "downstream_close id=2 peer=1" || ev[len(ev)-1] != "stream_done id=2" {
				t.Fatalf("events = %q", ev)
			}
			c.DownstreamClosed(true) // the owner's late close report is ignored
			if n := len(eventsAfter(e, "downstream_close")); n != 1 {
				t.Fatalf("%d downstream_close events", n)
			}
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
	if got := opsString(tr); got != "connect default" {
		t.Fatalf("ops = %q", got)
	}
	c.DownstreamData([]byte("defgh"), false)
	if got := opsString(tr); got != "connect default|read_disabled=true" {
		t.Fatalf("ops = %q", got)
	}
	c.UpstreamConnected()
	if got := opsString(tr); got != `connect default|read_disabled=true|up "abcdefgh" end=false|read_disabled=false` {
		t.Fatalf("ops = %q", got)
	}
}

// Envoy Context::onWrite: proxy_on_upstream_data sees upstream bytes and may modify them; on
// end_stream, proxy_on_upstream_connection_close(UNKNOWN=0) follows.
func TestContext_OnWrite_UpstreamDataAndClose(t *testing.T) {
	e := newTestPlugin(t, `{"upstream_prepend":"U:"}`, nil)
	tr := &recTransport{autoConnect: true}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	c.UpstreamData([]byte("resp"), false)
	c.UpstreamData([]byte("2"), true)
	if got := opsString(tr); got != `read_disabled=true|connect default|read_disabled=false|down "U:resp" end=false|down "U:2" end=true` {
		t.Fatalf("ops = %q", got)
	}
	if ev := eventsAfter(e, "upstream_close"); len(ev) != 1 || ev[0] != "upstream_close id=2 peer=0" {
		t.Fatalf("upstream_close events = %q", ev)
	}
	if s := c.State(); s.BytesToDownstream != 9 {
		t.Fatalf("state = %+v", s)
	}
	c.UpstreamClosed()
	if s := c.State(); !s.Closed || s.CloseReason != "upstream_closed" {
		t.Fatalf("state = %+v", s)
	}
}

// connection_impl.cc onRead: end_stream with an empty buffer is delivered once.
func TestConnectionImpl_OnRead_EndStreamRaisedOnce(t *testing.T) {
	e := newTestPlugin(t, `{}`, nil)
	tr := &recTransport{autoConnect: true}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	c.DownstreamData(nil, true)
	c.DownstreamData(nil, true)
	ev := eventsAfter(e, "downstream_data")
	if len(ev) != 1 || ev[0] != `downstream_data id=2 size=0 end=true data=""` {
		t.Fatalf("events = %q", ev)
	}
	if got := opsString(tr); !strings.HasSuffix(got, `up "" end=true`) {
		t.Fatalf("ops = %q", got)
	}
}

// A tick may close a paused connection through set_effective_context + close_stream (the deferred
// close runs after proxy_on_tick returns; Envoy Context::closeStream).
func TestContext_CloseStreamFromTick(t *testing.T) {
	e := newTestPlugin(t, `{"new_conn":"pause","tick_ms":100,"tick_action":"close"}`, nil)
	tr := &recTransport{}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	e.p.Tick(e.clk.Advance(100 * time.Millisecond))
	if got := e.log.probe(t, "tick_close"); got != "id=2 status=0" {
		t.Fatalf("tick_close = %q", got)
	}
	if s := c.State(); !s.Closed || s.CloseReason != "wasm_downstream_close" || s.TCPProxyInitialized {
		t.Fatalf("state = %+v", s)
	}
	// No upstream was requested, so only the client is closed.
	if got := opsString(tr); got != "read_disabled=true|close_downstream wasm_downstream_close" {
		t.Fatalf("ops = %q", got)
	}
	ev := e.log.events()
	if ev[len(ev)-2] != "downstream_close id=2 peer=1" || ev[len(ev)-1] != "stream_done id=2" {
		t.Fatalf("events = %q", ev)
	}
	// The next tick no longer sees the connection.
	e.p.Tick(e.clk.Advance(100 * time.Millisecond))
	if ev := eventsAfter(e, "tick"); ev[len(ev)-1] != "tick root=1 conns=0" {
		t.Fatalf("ticks = %q", ev)
	}
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
	if s := c.State(); !s.DownstreamReadDisabled || s.Buffered != 9 {
		t.Fatalf("state = %+v", s)
	}
	// A read that was already in flight is still dispatched (only the watermark disables reads).
	c.DownstreamData([]byte("abc"), false)
	if s := c.State(); s.DownstreamReadDisabled || s.Buffered != 0 || tr.upstream() != "123456789abc" {
		t.Fatalf("state = %+v upstream %q", s, tr.upstream())
	}
	if got := opsString(tr); got != `connect default|read_disabled=true|up "123456789abc" end=false|read_disabled=false` {
		t.Fatalf("ops = %q", got)
	}
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
		if got := tr.upstream(); got != "abcdef" {
			t.Fatalf("upstream = %q, want %q", got, "abcdef")
		}
		b2 := make([]byte, 3, 16)
		copy(b2, "ghi")
		e2 := newTestPlugin(t, `{"pause_until":6}`, nil)
		c2 := e2.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1024}, &recTransport{})
		c2.DownstreamData(b2, false)
		c2.DownstreamData([]byte("jk"), false)
		if got := string(b2[:cap(b2)]); got != "ghi"+string(make([]byte, 13)) {
			t.Fatalf("caller's array changed to %q", got)
		}
	})
	t.Run("early data", func(t *testing.T) {
		e := newTestPlugin(t, `{}`, nil)
		tr := &recTransport{}
		c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1024}, tr)
		b := []byte("hello")
		c.DownstreamData(b, false)
		copy(b, "XXXXX")
		if s := c.State(); s.UpstreamConnected || s.BytesToUpstream != 0 {
			t.Fatalf("state before connect = %+v", s)
		}
		c.UpstreamConnected()
		if got := tr.upstream(); got != "hello" {
			t.Fatalf("upstream = %q, want %q", got, "hello")
		}
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
		if got := tr.upstream(); got != "payloadXXXXXXX" {
			t.Fatalf("upstream = %q", got)
		}
	})
}
