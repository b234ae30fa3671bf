package host

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cpp-host context.cc CHECK_FAIL_NET + Envoy Context::failStream: a trap fails the VM; under
// FAIL_CLOSED the trapping connection is closed (wasm_fail_stream), and other in-flight connections
// of that VM are closed at their next callback; new connections get an empty filter that closes
// them (Envoy wasm.cc PluginConfig::createContext). The failed VM is never called again.
func TestFailurePolicy_FailClosed(t *testing.T) {
	e := newTestPlugin(t, `{"panic_on_data":true,"tick_ms":100}`, nil)
	// The tick reaches a healthy VM (so the check after the failure can fail).
	e.p.Tick(e.clk.Advance(time.Second))
	require.Equal(t, 1, strings.Count(e.log.dump(), "EVT tick"), "tick lines before the failure:\n%s", e.log.dump())
	trA, trB := &recTransport{autoConnect: true}, &recTransport{autoConnect: true}
	a := e.conn(t, TCPProxyConfig{Cluster: "default"}, trA)
	b := e.conn(t, TCPProxyConfig{Cluster: "default"}, trB)
	require.Zero(t, e.p.FailedVMs(), "FailedVMs before the trap")
	a.DownstreamData([]byte("boom"), false)
	require.Equal(t, 1, e.p.FailedVMs(), "FailedVMs after the trap")
	sa := a.State()
	require.True(t, sa.Closed && sa.CloseReason == "wasm_fail_stream" && sa.FilterFailed, "trapping conn state = %+v", sa)
	require.Contains(t, opsString(trA), "close_downstream wasm_fail_stream|close_upstream", "ops A")
	require.Equal(t, uint64(1), e.metric(t, "wasm_host_vm_failures_total"), "vm failures")
	require.Contains(t, e.log.dump(), "panic_on_data", "the guest panic message was not logged")
	calls := e.p.HostCalls()
	// In-flight B: its next callback hits CHECK_FAIL ⇒ closed, no guest call.
	b.DownstreamData([]byte("x"), false)
	sb := b.State()
	require.True(t, sb.Closed && sb.CloseReason == "wasm_fail_stream", "in-flight conn state = %+v", sb)
	// New connection: closed at new connection, no upstream connect.
	trC := &recTransport{autoConnect: true}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, trC)
	sc := c.State()
	require.True(t, sc.Closed && sc.CloseReason == "wasm_fail_stream", "new conn state = %+v", sc)
	require.NotContains(t, opsString(trC), "connect", "new conn connected upstream")
	require.Equal(t, calls, e.p.HostCalls(), "the failed VM was called again (host calls)")
	// No tick on a failed VM: cpp-host never calls into a VM that failed.
	e.p.Tick(e.clk.Advance(time.Hour))
	require.Equal(t, 1, strings.Count(e.log.dump(), "EVT tick"), "the failed VM was ticked (tick lines)")
	require.Equal(t, calls, e.p.HostCalls(), "the failed VM was ticked (host calls)")
}

// FAIL_OPEN as Istio ≥ 1.25 sends it (failure_policy): new connections get no filter at all (Envoy
// wasm.cc PluginConfig::createContext returns nullptr), but a connection open on the VM that trapped
// is closed, because CHECK_FAIL reads the legacy fail_open bool (Envoy plugin.h PluginBase).
func TestFailurePolicy_FailOpen(t *testing.T) {
	e := newTestPlugin(t, `{"panic_on_data":true}`, func(c *PluginConfig) { c.FailurePolicy = FailOpen })
	trA := &recTransport{autoConnect: true}
	a := e.conn(t, TCPProxyConfig{Cluster: "default"}, trA)
	a.DownstreamData([]byte("boom"), false)
	sa := a.State()
	require.True(t, sa.Closed && sa.CloseReason == "wasm_fail_stream" && trA.upstream() == "", "in-flight conn state = %+v upstream %q", sa, trA.upstream())
	trB := &recTransport{autoConnect: true}
	b := e.conn(t, TCPProxyConfig{Cluster: "default"}, trB)
	b.DownstreamData([]byte("plain"), false)
	sb := b.State()
	require.True(t, !sb.FilterInstalled && !sb.Closed && trB.upstream() == "plain", "new conn state = %+v upstream %q", sb, trB.upstream())
	require.Equal(t, uint64(1), e.metric(t, "wasm_host_connections_fail_open_total"), "fail_open counter")
}

// Legacy fail_open = true: CHECK_FAIL returns Continue, so in-flight connections become
// pass-through; new connections get no filter.
func TestFailurePolicy_LegacyFailOpen(t *testing.T) {
	e := newTestPlugin(t, `{"panic_on_data":true}`, func(c *PluginConfig) { c.FailurePolicy = FailOpen; c.LegacyFailOpen = true })
	trA := &recTransport{autoConnect: true}
	a := e.conn(t, TCPProxyConfig{Cluster: "default"}, trA)
	a.DownstreamData([]byte("boom"), false)
	sa := a.State()
	require.True(t, !sa.Closed && sa.FilterFailed, "state = %+v", sa)
	// CHECK_FAIL returned Continue: tcp_proxy got the bytes.
	require.Equal(t, "boom", trA.upstream(), "upstream (ops %q)", opsString(trA))
	a.DownstreamData([]byte("more"), false)
	require.Equal(t, "boommore", trA.upstream(), "upstream")
	trB := &recTransport{autoConnect: true}
	b := e.conn(t, TCPProxyConfig{Cluster: "default"}, trB)
	b.DownstreamData([]byte("plain"), false)
	sb := b.State()
	require.True(t, !sb.FilterInstalled && !sb.Closed && trB.upstream() == "plain", "new conn state = %+v upstream %q", sb, trB.upstream())
	require.Equal(t, uint64(1), e.metric(t, "wasm_host_connections_fail_open_total"), "fail_open counter")
}

// FAIL_RELOAD (Envoy wasm.cc maybeReloadHandleIfNeeded): in-flight connections close like
// FAIL_CLOSED; a new connection recreates the VM once the jittered backoff ([1 s, 1.5 s)) since the
// last load has elapsed; before that new connections are closed.
func TestFailurePolicy_FailReload(t *testing.T) {
	e := newTestPlugin(t, `{"pause_until":3,"panic_on_data":false}`, func(c *PluginConfig) { c.FailurePolicy = FailReload })
	// Make the VM trap by reconfiguring into panic mode on data.
	require.NoError(t, e.p.Reconfigure(t.Context(), []byte(`{"panic_on_data":true}`)))
	trA := &recTransport{autoConnect: true}
	a := e.conn(t, TCPProxyConfig{Cluster: "default"}, trA)
	a.DownstreamData([]byte("x"), false)
	sa := a.State()
	require.True(t, sa.Closed && sa.CloseReason == "wasm_fail_stream", "state = %+v", sa)
	// Within the backoff measured from the initial load: closed, no reload.
	c0 := e.conn(t, TCPProxyConfig{Cluster: "default"}, &recTransport{autoConnect: true})
	require.True(t, c0.State().Closed, "within the backoff after load: %+v", c0.State())
	e.clk.Advance(1500 * time.Millisecond)
	trB := &recTransport{autoConnect: true}
	b := e.conn(t, TCPProxyConfig{Cluster: "default"}, trB)
	sb := b.State()
	require.True(t, !sb.Closed && !sb.FilterFailed, "after reload: %+v\n%s", sb, e.log.dump())
	require.Zero(t, e.p.FailedVMs(), "FailedVMs after the reload")
	require.Equal(t, uint64(1), e.metric(t, "wasm_host_vm_reloads_total"), "reloads")
	// The reloaded VM starts with root context 1 and stream id 2 again.
	ev := eventsAfter(e, "new_connection")
	require.NotEmpty(t, ev, "no new_connection event")
	require.Equal(t, "new_connection id=2", ev[len(ev)-1], "last of the new_connection events %q", ev)
	// It traps again; within the backoff the next connection is closed, after it a reload happens.
	b.DownstreamData([]byte("y"), false)
	require.True(t, b.State().Closed, "second trap did not close the connection")
	e.clk.Advance(500 * time.Millisecond)
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, &recTransport{autoConnect: true})
	sc := c.State()
	require.True(t, sc.Closed, "within backoff: %+v", sc)
	e.clk.Advance(1000 * time.Millisecond)
	d := e.conn(t, TCPProxyConfig{Cluster: "default"}, &recTransport{autoConnect: true})
	sd := d.State()
	require.False(t, sd.Closed, "after backoff: %+v", sd)
	require.Equal(t, uint64(2), e.metric(t, "wasm_host_vm_reloads_total"), "reloads")
}

// A panic in proxy_on_new_connection fails the connection at once (CHECK_FAIL after the call).
func TestFailurePolicy_TrapInNewConnection(t *testing.T) {
	e := newTestPlugin(t, `{"panic_on_new":true}`, nil)
	tr := &recTransport{autoConnect: true}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	s := c.State()
	require.True(t, s.Closed && !s.TCPProxyInitialized, "state = %+v", s)
	require.Equal(t, "read_disabled=true|close_downstream wasm_fail_stream", opsString(tr), "ops")
}

func TestNewPlugin_LegacyFailOpenNeedsFailOpen(t *testing.T) {
	_, err := testEngine(t).NewPlugin(t.Context(), testFilter(t, ""), PluginConfig{Name: "x", LegacyFailOpen: true})
	require.ErrorContains(t, err, "LegacyFailOpen")
}
