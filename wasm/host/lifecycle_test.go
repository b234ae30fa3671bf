package host

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// cpp-host src/context.cc ContextBase::onStart/onConfigure, WasmBase::allocContextId: root context id
// 1, on_vm_start and on_configure on the root context with the configuration sizes.
func TestWasmBase_Start_RootContextAndConfigure(t *testing.T) {
	conf := `{"new_conn":"continue"}`
	e := newTestPlugin(t, conf, func(c *PluginConfig) { c.VMConfig = []byte("vmconf") })
	ev := e.log.events()
	want := []string{
		// The SDK creates its plugin context in proxy_on_context_create(1, 0), before on_vm_start.
		`plugin_context id=1`,
		`vm_start size=6 data="vmconf" err=<nil>`,
		`configure root=1 size=23`,
	}
	require.GreaterOrEqual(t, len(ev), len(want), "events %q, want prefix %q", ev, want)
	require.Equal(t, want, ev[:len(want)], "first events")
}

// Envoy: a false proxy_on_configure rejects the config; the error carries the guest's log lines.
func TestNewPlugin_ConfigRejected(t *testing.T) {
	log := &captureLogger{}
	_, err := testEngine(t).NewPlugin(context.Background(), testFilter(t, ""), PluginConfig{
		Name: "rej", Configuration: []byte(`{"reject":true}`), Workers: 1, Logger: log,
	})
	require.ErrorIs(t, err, ErrConfigRejected)
	require.ErrorContains(t, err, "reject=true", "the error does not carry the guest log line")
}

// Reconfigure validates in a canary: a rejecting config keeps the previous one.
func TestPlugin_Reconfigure_RejectKeepsPrevious(t *testing.T) {
	e := newTestPlugin(t, `{"on_data":"pause"}`, nil)
	err := e.p.Reconfigure(context.Background(), []byte(`{"reject":true}`))
	require.ErrorIs(t, err, ErrConfigRejected, "Reconfigure(reject)")
	require.ErrorContains(t, err, "reject=true", "Reconfigure(reject)")
	tr := &recTransport{}
	c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1024}, tr)
	c.DownstreamData([]byte("abc"), false)
	// Old config (pause) still in force: nothing reached tcp_proxy.
	// tcp_proxy was initialised at new connection (Continue); the data is paused in the buffer.
	s := c.State()
	require.True(t, s.Buffered == 3 && s.TCPProxyInitialized, "state after pause = %+v", s)
	require.NoError(t, e.p.Reconfigure(context.Background(), []byte(`{"on_data":"continue"}`)), "Reconfigure")
	c2 := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1024}, &recTransport{})
	c2.DownstreamData([]byte("xyz"), false)
	s = c2.State()
	require.Zero(t, s.Buffered, "new config not applied: %+v", s)
}

// Context ids per VM: root=1, streams 2,3,…; close ⇒ downstream_close(peer), done, log, delete
// (Envoy context.cc Context::onEvent/onCloseTCP).
func TestContext_Lifecycle_IDsAndCloseSequence(t *testing.T) {
	e := newTestPlugin(t, `{}`, nil)
	tr1, tr2 := &recTransport{}, &recTransport{}
	c1 := e.conn(t, TCPProxyConfig{Cluster: "a"}, tr1)
	c2 := e.conn(t, TCPProxyConfig{Cluster: "a"}, tr2)
	c1.DownstreamClosed(true)
	c2.DownstreamClosed(false)
	got := strings.Join(e.log.events()[3:], "\n")
	want := strings.Join([]string{
		"new_connection id=2",
		"new_connection id=3",
		"downstream_close id=2 peer=2",
		"stream_done id=2",
		"downstream_close id=3 peer=1",
		"stream_done id=3",
	}, "\n")
	require.Equal(t, want, got, "events")
	require.Equal(t, "read_disabled=true|connect a|close_upstream", strings.Join(tr1.opsList(), "|"), "transport ops")
}

// cpp-host src/wasm.cc WasmBase::startVm: non-logging host calls during _initialize trap.
func TestWasmBase_StartVm_RestrictedCallTraps(t *testing.T) {
	log := &captureLogger{}
	_, err := testEngine(t).NewPlugin(context.Background(), testFilter(t, ""), PluginConfig{
		Name: "init", Workers: 1, Logger: log,
		Env: map[string]string{"TF_INIT_HOSTCALL": "1"},
	})
	require.ErrorContains(t, err, "restricted_callback", "want a restricted_callback trap during _initialize")
	require.ErrorContains(t, err, "proxy_set_tick_period_milliseconds", "want a restricted_callback trap during _initialize")
}

// include/proxy-wasm/wasm.h WasmBase::allocMemory: only logging/clock/poll_oneoff during the
// allocator; `malloc` is preferred over proxy_on_memory_allocate (WasmBase::getFunctions).
func TestWasmBase_AllocMemory_RestrictedCallTraps(t *testing.T) {
	log := &captureLogger{}
	_, err := testEngine(t).NewPlugin(context.Background(), testFilter(t, "tfmalloc"), PluginConfig{
		Name: "alloc", Workers: 1, Logger: log, Configuration: []byte(`{}`),
		Env: map[string]string{"TF_MALLOC_HOSTCALL": "1"},
	})
	// The first allocation (returning PLUGIN_CONFIGURATION in on_configure) runs the guest's
	// malloc, which calls a restricted host function.
	require.ErrorContains(t, err, "guest allocator trapped: restricted_callback: env.proxy_set_effective_context", "want a restricted_callback trap inside malloc")
	// Without the restricted call, the same module (malloc export) works.
	p, err := testEngine(t).NewPlugin(context.Background(), testFilter(t, "tfmalloc"), PluginConfig{
		Name: "alloc-ok", Workers: 1, Logger: log, Configuration: []byte(`{}`),
	})
	require.NoError(t, err, "malloc-exporting module")
	_ = p.Close(context.Background())
}

// cpp-host WasmBase::load: undecodable bytes and modules without a proxy_abi_version_* export are
// rejected with an error (never a panic).
func TestNewPlugin_RejectsBadModules(t *testing.T) {
	for name, tc := range map[string]struct {
		wasm []byte
		want string
	}{
		"garbage":   {[]byte("not wasm"), "compile module"},
		"empty":     {nil, "compile module"},
		"no-abi":    {[]byte("\x00asm\x01\x00\x00\x00"), "missing or unknown Proxy-Wasm ABI version"},
		"truncated": {[]byte("\x00asm\x01\x00\x00\x00\x01\x05"), "compile module"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := testEngine(t).NewPlugin(context.Background(), tc.wasm, PluginConfig{Name: "bad", Workers: 1, Logger: &captureLogger{}})
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, `"bad"`, "the error does not name the plugin")
		})
	}
}
