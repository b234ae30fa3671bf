package host

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Envoy context.cc Buffer::copyFrom and cpp-host exports.cc get_buffer_bytes: start 0 drains `size`
// then prepends; start ≥ length appends; 0 < start < length ⇒ BAD_ARGUMENT; reads past the end ⇒ OK
// (0,0); start+max is clamped (cpp-host's overflow check is on 64-bit Words); UPSTREAM_DATA outside its callback is an empty buffer
// (get OK/(0,0), set BAD_ARGUMENT), as are the HTTP body buffers on a network filter (Envoy
// Context::getBuffer buffer_.set(nullptr)); PLUGIN_CONFIGURATION only in on_configure; VM_CONFIGURATION always.
func TestContext_CopyFrom_MidBufferBadArgument(t *testing.T) {
	e := newTestPlugin(t, `{"probe":"buffer","on_data":"pause"}`, func(c *PluginConfig) { c.VMConfig = []byte("VMC") })
	tr := &recTransport{autoConnect: true}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	c.DownstreamData([]byte("abcd"), false)
	want := map[string]string{
		"buf_get":                   "status=0 len=4",
		"buf_get_past_end":          "status=0",
		"buf_get_overflow":          "status=0",
		"buf_set_mid":               "status=2",
		"buf_prepend":               "status=0",
		"buf_append":                "status=0",
		"buf_replace_first":         "status=0",
		"buf_after":                 `data="[abcd>"`,
		"buf_upstream_outside":      "status=0",
		"buf_set_upstream_outside":  "status=2",
		"buf_plugin_config_outside": "status=1",
		"buf_vm_config":             `status=0 data="VMC"`,
		"buf_http_body":             "status=0",
		"buf_bad_type":              "status=2",
	}
	e.log.probes(t, want)
	// The modification persists in the connection buffer (paused ⇒ still buffered).
	require.Equal(t, 6, c.State().Buffered, "buffered bytes, want 6 ([abcd>)")
}

// Envoy context.cc Context::onData: after Pause the buffer pointer is kept, so a tick with the
// effective context can read the paused bytes.
func TestContext_PausedBufferReadableFromTick(t *testing.T) {
	e := newTestPlugin(t, `{"on_data":"pause","tick_ms":10,"tick_action":"read"}`, nil)
	tr := &recTransport{autoConnect: true}
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, tr)
	c.DownstreamData([]byte("paused"), false)
	e.p.Tick(e.clk.Advance(20 * time.Millisecond))
	require.Equal(t, `id=2 status=0 data="paused"`, e.log.probe(t, "tick_read"), "tick_read")
}

// Envoy foreign.cc set_envoy_filter_state + Context::setEnvoyFilterState: known factory ⇒ OK;
// unknown key ⇒ NOT_FOUND; unparsable proto ⇒ BAD_ARGUMENT; factory rejects value ⇒ BAD_ARGUMENT;
// unknown function (cpp-host exports.cc call_foreign_function) ⇒ NOT_FOUND.
func TestForeign_SetEnvoyFilterState_Statuses(t *testing.T) {
	e := newTestPlugin(t, `{"probe":"foreign","on_data":"pause"}`, nil)
	c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 100}, &recTransport{})
	c.DownstreamData([]byte("x"), false)
	e.log.probes(t, map[string]string{
		"foreign_known":       "status=0",
		"foreign_unknown_key": "status=1",
		"foreign_bad_proto":   "status=2",
		"foreign_bad_value":   "status=2",
		"foreign_unknown_fn":  "status=1",
	})
	require.Equal(t, map[string]string{"envoy.tcp_proxy.cluster": "c1"}, c.FilterState(), "filter state")
}

// From proxy_on_tick after set_effective_context to a stream, set_envoy_filter_state acts on that
// stream's connection (real Envoy 1.40 returns OK and tcp_proxy then routes by it:
// conformance TestCallsFromTick).
func TestForeign_SetEnvoyFilterState_OnTickActsOnEffectiveContext(t *testing.T) {
	e := newTestPlugin(t, `{"new_conn":"pause","tick_ms":10,"tick_action":"foreign"}`, nil)
	c := e.conn(t, TCPProxyConfig{Cluster: "default"}, &recTransport{})
	e.p.Tick(e.clk.Advance(10 * time.Millisecond))
	require.Equal(t, "id=2 status=0", e.log.probe(t, "tick_foreign"), "tick_foreign, want OK")
	require.Equal(t, map[string]string{"envoy.tcp_proxy.cluster": "tick-cluster"}, c.FilterState(), "filter state")
}

func decodeProp(t *testing.T, e *env, path string) (status string, val []byte) {
	t.Helper()
	got := e.log.probe(t, "prop "+path)
	parts := strings.SplitN(got, " ", 2)
	require.Len(t, parts, 2, "prop line %q", got)
	b, err := hex.DecodeString(strings.TrimPrefix(parts[1], "hex="))
	require.NoError(t, err, "prop line %q", got)
	return parts[0], b
}

// Envoy expr context.cc ConnectionLookup/UpstreamLookup + context.cc serializeValue: strings raw,
// ports int64 LE, ids uint64 LE, mtls bool; SAN lists give the first entry, an empty list ⇒
// NOT_FOUND (as real Envoy 1.40 answers, conformance); TLS fields on plaintext ⇒ NOT_FOUND;
// upstream.* only after connect.
func TestContext_GetProperty_FromConnInfoAndTLS(t *testing.T) {
	e := newTestPlugin(t, `{"probe":"props"}`, func(c *PluginConfig) {
		c.Properties = map[string][]byte{"xds.node.id": []byte("router~1")}
		c.VMID = "vm1"
	})
	info := ConnInfo{
		ID:                  77,
		Source:              netip.MustParseAddrPort("10.0.0.1:40000"),
		Destination:         netip.MustParseAddrPort("10.0.0.2:11112"),
		RequestedServerName: "pacs.example",
		TLS: &TLSInfo{
			Version: "TLSv1.3", PeerCertPresented: true, SubjectPeer: "CN=modality",
			URISANsPeer:      []string{"spiffe://a/b", "spiffe://c"},
			SHA256PeerDigest: "abcd",
		},
	}
	c := e.p.NewConn(info, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 10}, &recTransport{})
	c.DownstreamData([]byte("x"), false)
	le64 := func(v uint64) []byte { b := make([]byte, 8); binary.LittleEndian.PutUint64(b, v); return b }
	checks := []struct {
		path, status string
		val          []byte
	}{
		{"source.address", "status=0", []byte("10.0.0.1:40000")},
		{"source.port", "status=0", le64(40000)},
		{"destination.address", "status=0", []byte("10.0.0.2:11112")},
		{"destination.port", "status=0", le64(11112)},
		{"connection.id", "status=0", le64(77)},
		{"connection_id", "status=0", le64(77)},
		{"connection.mtls", "status=0", []byte{1}},
		{"connection.tls_version", "status=0", []byte("TLSv1.3")},
		{"connection.subject_peer_certificate", "status=0", []byte("CN=modality")},
		{"connection.uri_san_peer_certificate", "status=0", []byte("spiffe://a/b")},
		{"connection.dns_san_peer_certificate", "status=1", nil},
		{"connection.sha256_peer_certificate_digest", "status=0", []byte("abcd")},
		{"connection.requested_server_name", "status=0", []byte("pacs.example")},
		{"plugin_name", "status=0", []byte("ns.testfilter")},
		{"plugin_root_id", "status=0", []byte("testfilter")},
		{"plugin_vm_id", "status=0", []byte("vm1")},
		{"upstream.address", "status=1", nil},
		{"xds.node.id", "status=0", []byte("router~1")},
		{"no.such", "status=1", nil},
	}
	want, got := map[string]string{}, map[string]string{}
	for _, ck := range checks {
		st, val := decodeProp(t, e, ck.path)
		want[ck.path], got[ck.path] = fmt.Sprintf("%s %q", ck.status, ck.val), fmt.Sprintf("%s %q", st, val)
	}
	require.Equal(t, want, got, "properties (path: status value)")

	// Plaintext: mtls false, TLS fields NOT_FOUND; upstream.address after connect.
	e.log.reset()
	c2 := e.p.NewConn(ConnInfo{ID: 78, Source: netip.MustParseAddrPort("[::1]:5")}, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 10}, &recTransport{})
	c2.UpstreamConnectedAddr(netip.MustParseAddrPort("10.1.1.1:104"), netip.MustParseAddrPort("10.1.1.2:5555"))
	c2.DownstreamData([]byte("x"), false)
	want, got = map[string]string{}, map[string]string{}
	for _, ck := range []struct {
		path, status string
		val          []byte
	}{
		{"connection.mtls", "status=0", []byte{0}},
		{"connection.tls_version", "status=1", nil},
		{"source.address", "status=0", []byte("[::1]:5")},
		{"upstream.address", "status=0", []byte("10.1.1.1:104")},
	} {
		st, val := decodeProp(t, e, ck.path)
		want[ck.path], got[ck.path] = fmt.Sprintf("%s %q", ck.status, ck.val), fmt.Sprintf("%s %q", st, val)
	}
	require.Equal(t, want, got, "plaintext properties (path: status value)")
}

// Conn.SetTLS: a TLS connection created at accept with an empty TLSInfo (Envoy builds the chain
// before the handshake; SslSocket's connection info exists but is empty) reports mtls false until
// the handshake; after SetTLS the filter reads the session's values, copied at the call.
func TestConn_SetTLS_FillsTLSPropertiesAfterHandshake(t *testing.T) {
	e := newTestPlugin(t, `{"probe":"props"}`, nil)
	check := func(what string, want map[string]string) {
		t.Helper()
		got := make(map[string]string, len(want))
		for path := range want {
			st, val := decodeProp(t, e, path)
			got[path] = st + " " + string(val)
		}
		require.Equal(t, want, got, "%s: properties (path: status value)", what)
	}

	// Before the handshake: the TLS connection exists, nothing is known about the peer.
	pending := e.p.NewConn(ConnInfo{ID: 1, TLS: &TLSInfo{}}, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 10}, &recTransport{})
	pending.DownstreamData([]byte("x"), false)
	check("before the handshake", map[string]string{
		"connection.mtls":                     "status=0 \x00",
		"connection.subject_peer_certificate": "status=0 ",
		"connection.requested_server_name":    "status=0 ",
		// Envoy 1.40: BoringSSL's pre-handshake version, cached for the connection's lifetime.
		"connection.tls_version": "status=0 TLSv1.2",
	})
	pending.SetTLS(&TLSInfo{Version: "TLSv1.3"}, "")
	e.log.reset()
	pending.DownstreamData([]byte("y"), false)
	check("after a handshake that followed an early read", map[string]string{"connection.tls_version": "status=0 TLSv1.2"})

	e.log.reset()
	done := &TLSInfo{Version: "TLSv1.3", PeerCertPresented: true, SubjectPeer: "CN=CT1,O=Hospital",
		URISANsPeer: []string{"spiffe://h/CT1"}, SHA256PeerDigest: "ab12"}
	c := e.p.NewConn(ConnInfo{ID: 2, TLS: &TLSInfo{}}, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 10}, &recTransport{})
	c.SetTLS(done, "pacs.example")
	done.SubjectPeer = "CN=changed-after-the-call" // SetTLS copied the session
	c.DownstreamData([]byte("x"), false)
	check("after SetTLS", map[string]string{
		"connection.mtls":                           "status=0 \x01",
		"connection.tls_version":                    "status=0 TLSv1.3",
		"connection.subject_peer_certificate":       "status=0 CN=CT1,O=Hospital",
		"connection.uri_san_peer_certificate":       "status=0 spiffe://h/CT1",
		"connection.sha256_peer_certificate_digest": "status=0 ab12",
		"connection.requested_server_name":          "status=0 pacs.example",
	})
}

// Envoy context.cc Context::setProperty: the value is stored as filter state "wasm.<path>" and reads
// back with get_property of the same path.
func TestContext_SetProperty_StoredAsWasmFilterState(t *testing.T) {
	e := newTestPlugin(t, `{"set_prop_on_data":"dicom.decision"}`, nil)
	c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 10}, &recTransport{})
	c.DownstreamData([]byte("x"), false)
	require.Equal(t, `err=<nil> get="decided" gerr=<nil>`, e.log.probe(t, "set_property"), "set_property")
	require.Equal(t, "decided", c.FilterState()["wasm.dicom.decision"], "FilterState = %v", c.FilterState())
}

// cpp-host wasm.h metric ids (type in low 2 bits, step 4, fresh id per define) and Envoy
// context.cc increment/record/getMetric statuses; the Prometheus output strips the wasmcustom
// namespace and has no envoy_ prefix (dots ⇒ underscores).
func TestMetrics_DefineIncrementRecordGetAndExposition(t *testing.T) {
	m := NewMetrics()
	e := newTestPlugin(t, `{"probe":"metrics","count_metric":"tf.conns"}`, func(c *PluginConfig) { c.Metrics = m; c.Workers = 2 })
	for i := 0; i < 2; i++ { // one connection per worker VM: stats are shared
		c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 10}, &recTransport{})
		c.DownstreamData([]byte("x"), false)
	}
	ids := e.log.matching("PROBE metric_ids ")
	// tf.conns was defined first on each VM (counter id 4), then the probe's defines.
	want := "PROBE metric_ids counter=8 counter2=12 gauge=5 histogram=6 bad_type=2"
	require.Equal(t, []string{want, want}, ids, "metric_ids lines, one per VM")
	e.log.probes(t, map[string]string{
		"metric_inc": "status=0", "metric_inc2": "status=0", "metric_inc_zero": "status=2",
		"metric_inc_neg": "status=2", "metric_gauge_dec": "status=0", "metric_hist_record": "status=0",
		"metric_hist_inc": "status=2", "metric_get": "status=0 value=10", "metric_get_hist": "status=2",
		"metric_get_unknown": "status=1",
	})
	// Every wrong value is collected, so one run shows all of them; a missing series is wrong.
	var wrong []string
	if v, ok := m.Get("tf.requests"); !ok || v != 10 {
		wrong = append(wrong, fmt.Sprintf("Get(tf.requests) = %d, %v; want 10 (2+3 per VM, shared)", v, ok))
	}
	if v, ok := m.Get("tf.active"); !ok || int64(v) != -8 {
		wrong = append(wrong, fmt.Sprintf("Get(tf.active) = %d, %v; want -8", int64(v), ok))
	}
	if v, ok := m.Get("tf.conns"); !ok || v != 2 {
		wrong = append(wrong, fmt.Sprintf("Get(tf.conns) = %d, %v; want 2", v, ok))
	}
	var buf bytes.Buffer
	require.NoError(t, m.WritePrometheus(&buf))
	out := buf.String()
	for _, want := range []string{
		"# TYPE tf_requests counter\ntf_requests 10\n",
		"# TYPE tf_active gauge\ntf_active -8\n",
		"# TYPE tf_size histogram\n",
		"tf_size_bucket{le=\"5\"} 0\ntf_size_bucket{le=\"10\"} 2\n",
		"tf_size_count 2\n",
		"tf_size_sum 14\n",
		"wasm_host_connections_total{plugin=\"ns.testfilter\"} 2\n",
	} {
		if !strings.Contains(out, want) {
			wrong = append(wrong, fmt.Sprintf("exposition lacks %q", want))
		}
	}
	if strings.Contains(out, "envoy_") || strings.Contains(out, "wasmcustom") {
		wrong = append(wrong, "exposition has a prefix it should not (envoy_ or wasmcustom)")
	}
	// Host counters exist per plugin from NewPlugin on: one that never counted is exported at 0 with
	// its HELP (a missing series would read as "never happened", and a dashboard could not tell).
	for _, never := range []string{"wasm_host_vm_failures_total", "wasm_host_vm_reloads_total",
		"wasm_host_connections_fail_open_total", "wasm_host_connections_fail_closed_total"} {
		if !strings.Contains(out, never+"{plugin=\"ns.testfilter\"} 0\n") || !strings.Contains(out, "# HELP "+never+" ") {
			wrong = append(wrong, fmt.Sprintf("exposition lacks %s at 0 with its HELP", never))
		}
		if v, ok := m.Get(never); !ok || v != 0 {
			wrong = append(wrong, fmt.Sprintf("Get(%s) = %d, %v; want 0, true", never, v, ok))
		}
	}
	require.Empty(t, wrong, "%s\nexposition:\n%s", strings.Join(wrong, "\n"), out)
	// Guest families get the HELP the embedding program sets.
	m.SetHelp("tf_size", "Sizes seen by the test filter.")
	var hb strings.Builder
	require.NoError(t, m.WritePrometheus(&hb))
	require.Contains(t, hb.String(), "# HELP tf_size Sizes seen by the test filter.\n# TYPE tf_size histogram\n", "exposition lacks the HELP set for tf_size")
	v, ok := m.Get("wasm_host_connections_total")
	require.True(t, ok, "Get(wasm_host_connections_total): no such series")
	require.Equal(t, uint64(2), v, "Get(wasm_host_connections_total)")
}

// cpp-host exports.cc: log level > critical ⇒ BAD_ARGUMENT; continue_stream(UPSTREAM) ⇒
// UNIMPLEMENTED, > UPSTREAM ⇒ BAD_ARGUMENT, HTTP stream types ⇒ OK no-op (Envoy Context::continueStream,
// closeStream); fd_write 1/2 ⇒ info/error lines without the trailing
// newline; WASI environ from Env; shared data CAS; header maps absent on a network filter.
func TestExports_MiscStatuses(t *testing.T) {
	e := newTestPlugin(t, `{"probe":"misc"}`, func(c *PluginConfig) { c.Env = map[string]string{"TF_NAME": "dicom"} })
	c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 10}, &recTransport{})
	c.DownstreamData([]byte("x"), false)
	e.log.probes(t, map[string]string{
		"log_level_6":         "status=2",
		"continue_upstream":   "status=12",
		"continue_bad":        "status=2",
		"env":                 "TF_NAME=dicom",
		"shared_get_missing":  "err=error status returned by host: not found len=0",
		"shared_set":          `err=<nil> get="v1" err2=<nil>`,
		"shared_cas_mismatch": "err=error status returned by host: cas mismatch",
		"header_get":          "status=2",
		"now":                 fmt.Sprintf("unix=%d", e.clk.Now().Unix()), // WASI clock_time_get(realtime) from Clock
	})
	s := c.State()
	require.False(t, s.Closed, "close_stream(HTTP_RESPONSE) closed the connection: %+v", s)
	var sawOut, sawErr bool
	e.log.mu.Lock()
	for _, l := range e.log.lines {
		if l.msg == "stdout line" && l.level == LogInfo {
			sawOut = true
		}
		if l.msg == "stderr line" && l.level == LogError {
			sawErr = true
		}
	}
	e.log.mu.Unlock()
	require.True(t, sawOut && sawErr, "fd_write lines: stdout=%v stderr=%v\n%s", sawOut, sawErr, e.log.dump())
	require.NotZero(t, e.p.HostCalls(), "HostCalls")
	require.NotZero(t, e.p.GuestMemoryBytes(), "GuestMemoryBytes")
}
