// Command testfilter is a purpose-built proxy-wasm network filter for the wasm/host conformance tests.
// Its behaviour is driven by its plugin configuration (JSON, see config) and, for what runs before any
// configuration exists (init), by environment variables from the VM config. It reports what it sees
// as log lines ("EVT …", "PROBE …") that the tests assert on. Probes use raw //go:wasmimport
// declarations so that the tests see exact proxy_status_t values.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o testfilter.wasm .
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// config drives the filter.
type config struct {
	Reject          bool   `json:"reject"`           // OnPluginStart returns false
	NewConn         string `json:"new_conn"`         // "continue" (default) | "pause"
	ClusterOnNew    string `json:"cluster_on_new"`   // set envoy.tcp_proxy.cluster in OnNewConnection
	OnData          string `json:"on_data"`          // "continue" (default) | "pause"
	PauseUntil      int    `json:"pause_until"`      // pause while the buffer holds fewer bytes
	ClusterOnData   string `json:"cluster_on_data"`  // set envoy.tcp_proxy.cluster in OnDownstreamData
	ContinueInData  bool   `json:"continue_in_data"` // call continue_stream(DOWNSTREAM) in OnDownstreamData
	CloseOnData     string `json:"close_on_data"`    // "downstream" | "upstream"
	PanicOnData     bool   `json:"panic_on_data"`    // panic in OnDownstreamData
	PanicOnNew      bool   `json:"panic_on_new"`     // panic in OnNewConnection
	SetPropOnData   string `json:"set_prop_on_data"` // set_property(["<name>"], "decided") in OnDownstreamData
	TickMs          uint32 `json:"tick_ms"`          // tick period set in OnPluginStart
	TickAction      string `json:"tick_action"`      // "continue" | "close" | "foreign" | "read" per open connection
	Probe           string `json:"probe"`            // "buffer" | "props" | "foreign" | "metrics" | "misc" (run in OnDownstreamData)
	UpstreamPrepend string `json:"upstream_prepend"` // prepend to UPSTREAM_DATA in OnUpstreamData
	PauseUpstream   bool   `json:"pause_upstream"`   // return Pause from OnUpstreamData
	CountMetric     string `json:"count_metric"`     // counter incremented per OnDownstreamData
	DeadlineMs      int64  `json:"deadline_ms"`      // with tick_ms: close undecided connections this old at a tick
	ProbeOnNew      string `json:"probe_on_new"`     // "props": run the property probe in OnNewConnection
	PanicOnMatch    string `json:"panic_on_match"`   // panic in OnDownstreamData when the buffer contains this
	LogDataMax      int    `json:"log_data_max"`     // > 0: log data longer than this as sha256:<16 hex digits>
}

func init() {
	if os.Getenv("TF_INIT_HOSTCALL") == "1" {
		// Restricted during _initialize (cpp-host WasmBase::startVm): must trap.
		_ = proxywasm.SetTickPeriodMilliSeconds(1000)
	}
	proxywasm.SetVMContext(&vmContext{})
}

func main() {}

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) OnVMStart(vmConfigurationSize int) types.OnVMStartStatus {
	b, err := proxywasm.GetVMConfiguration()
	proxywasm.LogInfof("EVT vm_start size=%d data=%q err=%v", vmConfigurationSize, b, err)
	return true
}

func (*vmContext) NewPluginContext(id uint32) types.PluginContext {
	proxywasm.LogInfof("EVT plugin_context id=%d", id)
	return &pluginContext{id: id, conns: map[uint32]bool{}, started: map[uint32]time.Time{}, decided: map[uint32]bool{}}
}

type pluginContext struct {
	types.DefaultPluginContext
	id      uint32
	cfg     config
	conns   map[uint32]bool
	counter proxywasm.MetricCounter
	// started and decided hold, per open connection, when OnNewConnection ran and whether
	// OnDownstreamData let the data through (deadline_ms closes only undecided connections).
	started map[uint32]time.Time
	decided map[uint32]bool
}

func (p *pluginContext) OnPluginStart(size int) types.OnPluginStartStatus {
	b, err := proxywasm.GetPluginConfiguration()
	if err != nil && size > 0 {
		proxywasm.LogErrorf("EVT configure read error: %v", err)
		return false
	}
	var c config
	if len(b) > 0 {
		if err := json.Unmarshal(b, &c); err != nil {
			proxywasm.LogErrorf("EVT configure bad json: %v", err)
			return false
		}
	}
	proxywasm.LogInfof("EVT configure root=%d size=%d", p.id, size)
	if c.Reject {
		proxywasm.LogError("EVT configure rejected: reject=true")
		return false
	}
	// Each plugin (root context) keeps its own configuration: several plugins may share one VM (Envoy: same
	// vm_id and code, different root_id), each with its own connections.
	p.cfg = c
	cfg := &p.cfg
	if cfg.TickMs > 0 {
		if err := proxywasm.SetTickPeriodMilliSeconds(cfg.TickMs); err != nil {
			proxywasm.LogErrorf("set tick: %v", err)
		}
	}
	if cfg.CountMetric != "" {
		p.counter = proxywasm.DefineCounterMetric(cfg.CountMetric)
	}
	return true
}

func (p *pluginContext) OnTick() {
	cfg := &p.cfg
	proxywasm.LogInfof("EVT tick root=%d conns=%d", p.id, len(p.conns))
	for id := range p.conns {
		if cfg.DeadlineMs > 0 {
			// The inspect-deadline pattern of a DICOM filter: undecided connections older than the
			// deadline are closed; the probe only logs that it did (ages vary run to run).
			if p.decided[id] || time.Since(p.started[id]) < time.Duration(cfg.DeadlineMs)*time.Millisecond {
				continue
			}
			if st := rawSetEffectiveContext(id); st != 0 {
				proxywasm.LogInfof("PROBE tick_effective id=%d status=%d", id, st)
				continue
			}
			p.decided[id] = true
			proxywasm.LogInfof("EVT deadline id=%d close_status=%d", id, rawCloseStream(2))
			continue
		}
		if st := rawSetEffectiveContext(id); st != 0 {
			proxywasm.LogInfof("PROBE tick_effective id=%d status=%d", id, st)
			continue
		}
		switch cfg.TickAction {
		case "continue":
			proxywasm.LogInfof("PROBE tick_continue id=%d status=%d", id, rawContinueStream(2))
		case "close":
			proxywasm.LogInfof("PROBE tick_close id=%d status=%d", id, rawCloseStream(2))
		case "foreign":
			st := rawForeign("set_envoy_filter_state", filterStateArgs("envoy.tcp_proxy.cluster", "tick-cluster"))
			proxywasm.LogInfof("PROBE tick_foreign id=%d status=%d", id, st)
		case "read":
			b, st := rawGetBuffer(2, 0, 1<<20)
			proxywasm.LogInfof("PROBE tick_read id=%d status=%d data=%q", id, st, b)
		}
	}
	if st := rawSetEffectiveContext(999999); st != 2 {
		proxywasm.LogErrorf("PROBE tick_effective_unknown status=%d", st)
	} else {
		proxywasm.LogInfof("PROBE tick_effective_unknown status=%d", st)
	}
}

func (p *pluginContext) OnQueueReady(id uint32) {
	data, err := proxywasm.DequeueSharedQueue(id)
	_, err2 := proxywasm.DequeueSharedQueue(id)
	proxywasm.LogInfof("EVT queue_ready root=%d data=%q err=%v next=%v", p.id, data, err, err2)
}

func (p *pluginContext) NewTcpContext(id uint32) types.TcpContext {
	p.conns[id] = true
	p.started[id] = time.Now()
	return &tcpContext{id: id, plugin: p}
}

type tcpContext struct {
	types.DefaultTcpContext
	id      uint32
	plugin  *pluginContext
	decided bool
}

func (t *tcpContext) OnNewConnection() types.Action {
	cfg := &t.plugin.cfg
	proxywasm.LogInfof("EVT new_connection id=%d", t.id)
	if cfg.PanicOnNew {
		panic("testfilter: panic_on_new")
	}
	if cfg.ProbeOnNew == "props" {
		probeProps()
	}
	if cfg.ClusterOnNew != "" {
		st := rawForeign("set_envoy_filter_state", filterStateArgs("envoy.tcp_proxy.cluster", cfg.ClusterOnNew))
		proxywasm.LogInfof("PROBE cluster_on_new status=%d", st)
	}
	if cfg.NewConn == "pause" {
		return types.ActionPause
	}
	return types.ActionContinue
}

func (t *tcpContext) OnDownstreamData(size int, end bool) types.Action {
	cfg := &t.plugin.cfg
	data, _ := proxywasm.GetDownstreamData(0, size)
	proxywasm.LogInfof("EVT downstream_data id=%d size=%d end=%t data=%s", t.id, size, end, logData(data, cfg.LogDataMax))
	if t.plugin.counter != 0 {
		t.plugin.counter.Increment(1)
	}
	if cfg.PanicOnData {
		panic("testfilter: panic_on_data")
	}
	if cfg.PanicOnMatch != "" && strings.Contains(string(data), cfg.PanicOnMatch) {
		panic("testfilter: panic_on_match")
	}
	switch cfg.Probe {
	case "buffer":
		probeBuffer()
	case "props":
		probeProps()
	case "foreign":
		probeForeign()
	case "metrics":
		probeMetrics()
	case "misc":
		probeMisc()
	case "queue":
		probeQueue()
	}
	if t.decided {
		return types.ActionContinue
	}
	if cfg.PauseUntil > 0 && size < cfg.PauseUntil {
		return types.ActionPause
	}
	if cfg.SetPropOnData != "" {
		err := proxywasm.SetProperty([]string{cfg.SetPropOnData}, []byte("decided"))
		v, gerr := proxywasm.GetProperty([]string{cfg.SetPropOnData})
		proxywasm.LogInfof("PROBE set_property err=%v get=%q gerr=%v", err, v, gerr)
	}
	if cfg.ClusterOnData != "" {
		st := rawForeign("set_envoy_filter_state", filterStateArgs("envoy.tcp_proxy.cluster", cfg.ClusterOnData))
		proxywasm.LogInfof("PROBE cluster_on_data status=%d", st)
	}
	if cfg.CloseOnData == "downstream" {
		proxywasm.LogInfof("PROBE close status=%d", rawCloseStream(2))
		return types.ActionPause
	}
	if cfg.CloseOnData == "upstream" {
		proxywasm.LogInfof("PROBE close status=%d", rawCloseStream(3))
		return types.ActionPause
	}
	if cfg.ContinueInData {
		proxywasm.LogInfof("PROBE continue_in_data status=%d", rawContinueStream(2))
		t.decided = true
		return types.ActionPause
	}
	if cfg.OnData == "pause" {
		return types.ActionPause
	}
	t.decided = true
	t.plugin.decided[t.id] = true
	return types.ActionContinue
}

// logData is how OnDownstreamData/OnUpstreamData log a buffer: quoted, or as a digest when longer
// than log_data_max.
func logData(b []byte, max int) string {
	if max > 0 && len(b) > max {
		sum := sha256.Sum256(b)
		return "sha256:" + hex.EncodeToString(sum[:8])
	}
	return fmt.Sprintf("%q", b)
}

func (t *tcpContext) OnUpstreamData(size int, end bool) types.Action {
	cfg := &t.plugin.cfg
	data, _ := proxywasm.GetUpstreamData(0, size)
	proxywasm.LogInfof("EVT upstream_data id=%d size=%d end=%t data=%s", t.id, size, end, logData(data, cfg.LogDataMax))
	if cfg.UpstreamPrepend != "" {
		if err := proxywasm.PrependUpstreamData([]byte(cfg.UpstreamPrepend)); err != nil {
			proxywasm.LogErrorf("prepend upstream: %v", err)
		}
	}
	if cfg.PauseUpstream {
		return types.ActionPause
	}
	return types.ActionContinue
}

func (t *tcpContext) OnDownstreamClose(peer types.PeerType) {
	proxywasm.LogInfof("EVT downstream_close id=%d peer=%d", t.id, peer)
}

func (t *tcpContext) OnUpstreamClose(peer types.PeerType) {
	proxywasm.LogInfof("EVT upstream_close id=%d peer=%d", t.id, peer)
}

func (t *tcpContext) OnStreamDone() {
	delete(t.plugin.conns, t.id)
	delete(t.plugin.started, t.id)
	delete(t.plugin.decided, t.id)
	proxywasm.LogInfof("EVT stream_done id=%d", t.id)
}

// --- probes ------------------------------------------------------------------------------------

func probeBuffer() {
	b, st := rawGetBuffer(2, 0, 1<<20)
	n := len(b)
	proxywasm.LogInfof("PROBE buf_get status=%d len=%d", st, n)
	_, st = rawGetBuffer(2, int32(n+10), 5)
	proxywasm.LogInfof("PROBE buf_get_past_end status=%d", st)
	_, st = rawGetBuffer(2, 1, 0x7fffffff)
	proxywasm.LogInfof("PROBE buf_get_overflow status=%d", st)
	if n >= 2 {
		proxywasm.LogInfof("PROBE buf_set_mid status=%d", rawSetBuffer(2, 1, 0, []byte("X")))
	}
	proxywasm.LogInfof("PROBE buf_prepend status=%d", rawSetBuffer(2, 0, 0, []byte("<")))
	proxywasm.LogInfof("PROBE buf_append status=%d", rawSetBuffer(2, 0x7fffffff, 0, []byte(">")))
	proxywasm.LogInfof("PROBE buf_replace_first status=%d", rawSetBuffer(2, 0, 1, []byte("[")))
	b, _ = rawGetBuffer(2, 0, 1<<20)
	proxywasm.LogInfof("PROBE buf_after data=%q", b)
	_, st = rawGetBuffer(3, 0, 10)
	proxywasm.LogInfof("PROBE buf_upstream_outside status=%d", st)
	proxywasm.LogInfof("PROBE buf_set_upstream_outside status=%d", rawSetBuffer(3, 0, 0, []byte("x")))
	_, st = rawGetBuffer(7, 0, 10)
	proxywasm.LogInfof("PROBE buf_plugin_config_outside status=%d", st)
	vmc, st := rawGetBuffer(6, 0, 100)
	proxywasm.LogInfof("PROBE buf_vm_config status=%d data=%q", st, vmc)
	_, st = rawGetBuffer(0, 0, 10)
	proxywasm.LogInfof("PROBE buf_http_body status=%d", st)
	_, st = rawGetBuffer(9, 0, 10)
	proxywasm.LogInfof("PROBE buf_bad_type status=%d", st)
}

var propPaths = [][]string{
	{"source", "address"}, {"source", "port"}, {"destination", "address"}, {"destination", "port"},
	{"connection", "id"}, {"connection_id"}, {"connection", "mtls"}, {"connection", "tls_version"},
	{"connection", "subject_peer_certificate"}, {"connection", "uri_san_peer_certificate"},
	{"connection", "dns_san_peer_certificate"}, {"connection", "sha256_peer_certificate_digest"},
	{"connection", "requested_server_name"}, {"connection", "subject_local_certificate"},
	{"connection", "uri_san_local_certificate"}, {"connection", "dns_san_local_certificate"}, {"plugin_name"}, {"plugin_root_id"}, {"plugin_vm_id"},
	{"upstream", "address"}, {"xds", "node", "id"}, {"no", "such"},
}

func probeProps() {
	for _, p := range propPaths {
		v, st := rawGetProperty(strings.Join(p, "\x00"))
		proxywasm.LogInfof("PROBE prop %s status=%d hex=%s", strings.Join(p, "."), st, hex.EncodeToString(v))
	}
}

func probeForeign() {
	proxywasm.LogInfof("PROBE foreign_known status=%d", rawForeign("set_envoy_filter_state", filterStateArgs("envoy.tcp_proxy.cluster", "c1")))
	proxywasm.LogInfof("PROBE foreign_unknown_key status=%d", rawForeign("set_envoy_filter_state", filterStateArgs("my.custom.key", "v")))
	proxywasm.LogInfof("PROBE foreign_bad_proto status=%d", rawForeign("set_envoy_filter_state", []byte{0x0a, 0x50, 'x'}))
	proxywasm.LogInfof("PROBE foreign_bad_value status=%d", rawForeign("set_envoy_filter_state", filterStateArgs("envoy.network.ip", "not-an-ip")))
	proxywasm.LogInfof("PROBE foreign_unknown_fn status=%d", rawForeign("no_such_function", nil))
}

func probeMetrics() {
	a := rawDefineMetric(0, "tf.requests")
	b := rawDefineMetric(0, "tf.requests")
	g := rawDefineMetric(1, "tf.active")
	h := rawDefineMetric(2, "tf.size")
	proxywasm.LogInfof("PROBE metric_ids counter=%d counter2=%d gauge=%d histogram=%d bad_type=%d", a.id, b.id, g.id, h.id, rawDefineMetric(3, "x").status)
	proxywasm.LogInfof("PROBE metric_inc status=%d", rawIncrementMetric(a.id, 2))
	proxywasm.LogInfof("PROBE metric_inc2 status=%d", rawIncrementMetric(b.id, 3))
	proxywasm.LogInfof("PROBE metric_inc_zero status=%d", rawIncrementMetric(a.id, 0))
	proxywasm.LogInfof("PROBE metric_inc_neg status=%d", rawIncrementMetric(a.id, -1))
	proxywasm.LogInfof("PROBE metric_gauge_dec status=%d", rawIncrementMetric(g.id, -4))
	proxywasm.LogInfof("PROBE metric_hist_record status=%d", rawRecordMetric(h.id, 7))
	proxywasm.LogInfof("PROBE metric_hist_inc status=%d", rawIncrementMetric(h.id, 1))
	v, st := rawGetMetric(a.id)
	proxywasm.LogInfof("PROBE metric_get status=%d value=%d", st, v)
	_, st = rawGetMetric(h.id)
	proxywasm.LogInfof("PROBE metric_get_hist status=%d", st)
	_, st = rawGetMetric(4000)
	proxywasm.LogInfof("PROBE metric_get_unknown status=%d", st)
}

func probeMisc() {
	proxywasm.LogInfof("PROBE log_level_6 status=%d", rawLog(6, "x"))
	proxywasm.LogInfof("PROBE continue_upstream status=%d", rawContinueStream(3))
	proxywasm.LogInfof("PROBE continue_bad status=%d", rawContinueStream(4))
	proxywasm.LogInfof("PROBE continue_http status=%d", rawContinueStream(0))
	proxywasm.LogInfof("PROBE close_http status=%d", rawCloseStream(1))
	proxywasm.LogInfof("PROBE close_bad status=%d", rawCloseStream(4))
	fmt.Fprintln(os.Stdout, "stdout line")
	fmt.Fprint(os.Stderr, "stderr line\n")
	proxywasm.LogInfof("PROBE env TF_NAME=%s", os.Getenv("TF_NAME"))
	v, _, err := proxywasm.GetSharedData("tf.k")
	proxywasm.LogInfof("PROBE shared_get_missing err=%v len=%d", err, len(v))
	err = proxywasm.SetSharedData("tf.k", []byte("v1"), 0)
	v, cas, err2 := proxywasm.GetSharedData("tf.k")
	proxywasm.LogInfof("PROBE shared_set err=%v get=%q err2=%v", err, v, err2)
	err = proxywasm.SetSharedData("tf.k", []byte("v2"), cas+1000)
	proxywasm.LogInfof("PROBE shared_cas_mismatch err=%v", err)
	proxywasm.LogInfof("PROBE header_get status=%d", rawGetHeader())
	proxywasm.LogInfof("PROBE now unix=%d", time.Now().Unix())
}

func probeQueue() {
	id, err := proxywasm.RegisterSharedQueue("tfq")
	rid, rerr := proxywasm.ResolveSharedQueue("", "tfq")
	_, nerr := proxywasm.ResolveSharedQueue("", "nope")
	proxywasm.LogInfof("PROBE queue_register same=%t err=%v rerr=%v missing=%v", id == rid, err, rerr, nerr)
	proxywasm.LogInfof("PROBE queue_enqueue err=%v", proxywasm.EnqueueSharedQueue(id, []byte("hello")))
}

// filterStateArgs encodes SetEnvoyFilterStateArguments{path, value}.
func filterStateArgs(path, value string) []byte {
	var b []byte
	b = append(b, 0x0a)
	b = appendVarint(b, uint64(len(path)))
	b = append(b, path...)
	b = append(b, 0x12)
	b = appendVarint(b, uint64(len(value)))
	return append(b, value...)
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
