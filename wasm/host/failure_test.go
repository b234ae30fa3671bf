package host

import (
	"strings"
	"testing"
	"time"
)

// cpp-host context.cc CHECK_FAIL_NET + Envoy Context::failStream: a trap fails the VM; under
// FAIL_CLOSED the trapping connection is closed (wasm_fail_stream), and other in-flight connections
// of that VM are closed at their next callback; new connections get an empty filter that closes
// them (Envoy wasm.cc PluginConfig::createContext). The failed VM is never called again.
func TestFailurePolicy_FailClosed(t *testing.T) {
	e := newTestPlugin(t, `{"panic_on_data":true,"tick_ms":100}`, nil)
	// The tick reaches a healthy VM (so the check after the failure can fail).
	e.p.Tick(e.clk.Advance(time.Second))
	if n := strings.Count(e.log.dump(), "EVT tick"); n != 1 {
		t.Fatalf("%d tick lines before the failure; want 1:\n%s", n, e.log.dump())
	}
	trA, trB := &recTransport{autoConnect: true}, &recTransport{autoConnect: true}
	a := e.conn(t, TCPProxyConfig{Cluster: "default"}, trA)
	b := e.conn(t, TCPProxyConfig{Cluster: "default"}, trB)
	if n := e.p.FailedVMs(); n != 0 {
		t.Fatalf("FailedVMs = %d before the trap", n)
	}
	a.DownstreamData([]byte("boom"), false)
	if n := e.p.FailedVMs(); n != 1 {
		t.Fatalf("FailedVMs = %d after the trap, want 1", n)
	}
	sa := a.State()
	if !sa.Closed || sa.CloseReason != "wasm_fail_stream" || !sa.FilterFailed {
		t.Fatalf("trapping conn state = %+v", sa)
	}
	if !strings.Contains(opsString(trA), "close_downstream wasm_fail_stream|close_upstream") {
		t.Fatalf("ops A = %q", opsString(trA))
	}
	if v, _ := e.p.Metrics().Get("wasm_host_vm_failures_total"); v != 1 {
		t.Fatalf("vm failures = %d", v)
	}
	if !strings.Contains(e.log.dump(), "panic_on_data") {
		t.Errorf("the guest panic message was not logged:\n%s", e.log.dump())
	}
	calls := e.p.HostCalls()
	// In-flight B: its next callback hits CHECK_FAIL ⇒ closed, no guest call.
	b.DownstreamData([]byte("x"), false)
	if sb := b.State(); !sb.Closed || sb.CloseReason != "wasm_fail_stream" {
		t.Fatalf("in-flight conn state = %+v", sb)
	}
	// New connection: closed at new connection, no upstream connect.
	trC := &recTransport{autoConnect: true}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, trC)
	if sc := c.State(); !sc.Closed || sc.CloseReason != "wasm_fail_stream" {
		t.Fatalf("new conn state = %+v", sc)
	}
	if strings.Contains(opsString(trC), "connect") {
		t.Fatalf("new conn connected upstream: %q", opsString(trC))
	}
	if e.p.HostCalls() != calls {
		t.Fatalf("the failed VM was called again (%d → %d host calls)", calls, e.p.HostCalls())
	}
	// No tick on a failed VM: cpp-host never calls into a VM that failed.
	e.p.Tick(e.clk.Advance(time.Hour))
	if n := strings.Count(e.log.dump(), "EVT tick"); n != 1 || e.p.HostCalls() != calls {
		t.Fatalf("the failed VM was ticked: %d tick lines, host calls %d → %d", n, calls, e.p.HostCalls())
	}
}

// FAIL_OPEN as Istio ≥ 1.25 sends it (failure_policy): new connections get no filter at all (Envoy
// wasm.cc PluginConfig::createContext returns nullptr), but a connection open on the VM that trapped
// is closed, because CHECK_FAIL reads the legacy fail_open bool (Envoy plugin.h PluginBase).
func TestFailurePolicy_FailOpen(t *testing.T) {
	e := newTestPlugin(t, `{"panic_on_data":true}`, func(c *PluginConfig) { c.FailurePolicy = FailOpen })
	trA := &recTransport{autoConnect: true}
	a := e.conn(t, TCPProxyConfig{Cluster: "default"}, trA)
	a.DownstreamData([]byte("boom"), false)
	if sa := a.State(); !sa.Closed || sa.CloseReason != "wasm_fail_stream" || trA.upstream() != "" {
		t.Fatalf("in-flight conn state = %+v upstream %q", sa, trA.upstream())
	}
	trB := &recTransport{autoConnect: true}
	b := e.conn(t, TCPProxyConfig{Cluster: "default"}, trB)
	b.DownstreamData([]byte("plain"), false)
	if sb := b.State(); sb.FilterInstalled || sb.Closed || trB.upstream() != "plain" {
		t.Fatalf("new conn state = %+v upstream %q", sb, trB.upstream())
	}
	if v, _ := e.p.Metrics().Get("wasm_host_connections_fail_open_total"); v != 1 {
		t.Fatalf("fail_open counter = %d", v)
	}
}

// Legacy fail_open = true: CHECK_FAIL returns Continue, so in-flight connections become
// pass-through; new connections get no filter.
func TestFailurePolicy_LegacyFailOpen(t *testing.T) {
	e := newTestPlugin(t, `{"panic_on_data":true}`, func(c *PluginConfig) { c.FailurePolicy = FailOpen; c.LegacyFailOpen = true })
	trA := &recTransport{autoConnect: true}
	a := e.conn(t, TCPProxyConfig{Cluster: "default"}, trA)
	a.DownstreamData([]byte("boom"), false)
	if sa := a.State(); sa.Closed || !sa.FilterFailed {
		t.Fatalf("state = %+v", sa)
	}
	// CHECK_FAIL returned Continue: tcp_proxy got the bytes.
	if trA.upstream() != "boom" {
		t.Fatalf("upstream = %q (ops %q)", trA.upstream(), opsString(trA))
	}
	a.DownstreamData([]byte("more"), false)
	if trA.upstream() != "boommore" {
		t.Fatalf("upstream = %q", trA.upstream())
	}
	trB := &recTransport{autoConnect: true}
	b := e.conn(t, TCPProxyConfig{Cluster: "default"}, trB)
	b.DownstreamData([]byte("plain"), false)
	if sb := b.State(); sb.FilterInstalled || sb.Closed || trB.upstream() != "plain" {
		t.Fatalf("new conn state = %+v upstream %q", sb, trB.upstream())
	}
	if v, _ := e.p.Metrics().Get("wasm_host_connections_fail_open_total"); v != 1 {
		t.Fatalf("fail_open counter = %d", v)
	}
}

// FAIL_RELOAD (Envoy wasm.cc maybeReloadHandleIfNeeded): in-flight connections close like
// FAIL_CLOSED; a new connection recreates the VM once the jittered backoff ([1 s, 1.5 s)) since the
// last load has elapsed; before that new connections are closed.
func TestFailurePolicy_FailReload(t *testing.T) {
	e := newTestPlugin(t, `{"pause_until":3,"panic_on_data":false}`, func(c *PluginConfig) { c.FailurePolicy = FailReload })
	// Make the VM trap by reconfiguring into panic mode on data.
	if err := e.p.Reconfigure(t.Context(), []byte(`{"panic_on_data":true}`)); err != nil {
		t.Fatal(err)
	}
	trA := &recTransport{autoConnect: true}
	a := e.conn(t, TCPProxyConfig{Cluster: "default"}, trA)
	a.DownstreamData([]byte("x"), false)
	if sa := a.State(); !sa.Closed || sa.CloseReason != "wasm_fail_stream" {
		t.Fatalf("state = %+v", sa)
	}
	// Within the backoff measured from the initial load: closed, no reload.
	if c0 := e.conn(t, TCPProxyConfig{Cluster: "default"}, &recTransport{autoConnect: true}); !c0.State().Closed {
		t.Fatalf("within the backoff after load: %+v", c0.State())
	}
	e.clk.Advance(1500 * time.Millisecond)
	trB := &recTransport{autoConnect: true}
	b := e.conn(t, TCPProxyConfig{Cluster: "default"}, trB)
	if sb := b.State(); sb.Closed || sb.FilterFailed {
		t.Fatalf("after reload: %+v\n%s", sb, e.log.dump())
	}
	if n := e.p.FailedVMs(); n != 0 {
		t.Fatalf("FailedVMs = %d after the reload, want 0", n)
	}
	if v, _ := e.p.Metrics().Get("wasm_host_vm_reloads_total"); v != 1 {
		t.Fatalf("reloads = %d", v)
	}
	// The reloaded VM starts with root context 1 and stream id 2 again.
	if ev := eventsAfter(e, "new_connection"); ev[len(ev)-1] != "new_connection id=2" {
		t.Fatalf("new_connection events %q", ev)
	}
	// It traps again; within the backoff the next connection is closed, after it a reload happens.
	b.DownstreamData([]byte("y"), false)
	if !b.State().Closed {
		t.Fatal("second trap did not close the connection")
	}
	e.clk.Advance(500 * time.Millisecond)
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, &recTransport{autoConnect: true})
	if sc := c.State(); !sc.Closed {
		t.Fatalf("within backoff: %+v", sc)
	}
	e.clk.Advance(1000 * time.Millisecond)
	d := e.conn(t, TCPProxyConfig{Cluster: "default"}, &recTransport{autoConnect: true})
	if sd := d.State(); sd.Closed {
		t.Fatalf("after backoff: %+v", sd)
	}
	if v, _ := e.p.Metrics().Get("wasm_host_vm_reloads_total"); v != 2 {
		t.Fatalf("reloads = %d", v)
	}
}

// A panic in proxy_on_new_connection fails the connection at once (CHECK_FAIL after the call).
func TestFailurePolicy_TrapInNewConnection(t *testing.T) {
	e := newTestPlugin(t, `{"panic_on_new":true}`, nil)
	tr := &recTransport{autoConnect: true}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	if s := c.State(); !s.Closed || s.TCPProxyInitialized {
		t.Fatalf("state = %+v", s)
	}
	if got := opsString(tr); got != "read_disabled=true|close_downstream wasm_fail_stream" {
		t.Fatalf("ops = %q", got)
	}
}

func TestNewPlugin_LegacyFailOpenNeedsFailOpen(t *testing.T) {
	_, err := testEngine(t).NewPlugin(t.Context(), testFilter(t, ""), PluginConfig{Name: "x", LegacyFailOpen: true})
	if err == nil || !strings.Contains(err.Error(), "LegacyFailOpen") {
		t.Fatalf("err = %v", err)
	}
}
