//go:build !wasip1

package wasmtest

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/internal/filtertable"
	"github.com/dicomgate/dicomgate/internal/wasmbuild"
	"github.com/dicomgate/dicomgate/wasm/host"
	"github.com/stretchr/testify/require"
)

// wasmModule is the compiled filter ($DICOMGATE_WASM or a `make wasm` build).
func wasmModule() ([]byte, error) {
	b, _, err := wasmbuild.Dicomgate()
	return b, err
}

// captures are the real DICOM captures of sdk/pdu/testdata, by name.
func captures(t testing.TB) filtertable.Captures {
	t.Helper()
	c, err := filtertable.LoadCaptures()
	require.NoError(t, err)
	return c
}

// wasmRunner drives build/dicomgate.wasm through wasm/host, the
// Envoy-faithful proxy-wasm host (filter manager + tcp_proxy with
// max_early_data_bytes), with a fake clock.
type wasmRunner struct {
	tb       testing.TB
	wasm     []byte
	engine   *host.Engine
	plugin   *host.Plugin
	clock    *host.ManualClock
	logs     *levelLogger
	nextID   uint64
	listener filtertable.Listener
}

var _ filtertable.Runner = (*wasmRunner)(nil)

type levelLogger struct {
	mu    sync.Mutex
	lines map[filtertable.Level][]string
}

func (l *levelLogger) Log(level host.LogLevel, _ string, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lv := filtertable.Level(level.String())
	if level == host.LogCritical {
		lv = filtertable.LevelError
	}
	l.lines[lv] = append(l.lines[lv], msg)
}

func newWasmRunner(tb testing.TB) *wasmRunner {
	if testing.Short() {
		tb.Skip("builds the wasm module; skipped in -short mode")
	}
	wasm, err := wasmModule()
	require.NoError(tb, err, "the compiled filter")
	engine, err := host.NewEngine(context.Background(), host.EngineConfig{CompilationCache: wasmbuild.CompilationCache()})
	require.NoError(tb, err)
	r := &wasmRunner{tb: tb, wasm: wasm, engine: engine}
	tb.Cleanup(func() { r.close(); _ = engine.Close(context.Background()) })
	return r
}

func (r *wasmRunner) close() {
	if r.plugin != nil {
		_ = r.plugin.Close(context.Background())
		r.plugin = nil
	}
}

func (r *wasmRunner) Configure(config []byte, l filtertable.Listener) error {
	r.listener = l
	r.close()
	r.clock = host.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	r.logs = &levelLogger{lines: map[filtertable.Level][]string{}}
	p, err := r.engine.NewPlugin(context.Background(), r.wasm, host.PluginConfig{
		Name: "istio-ingress.dicomgate", RootID: "dicomgate", Configuration: config,
		Workers: 1, Clock: r.clock, Logger: r.logs,
	})
	if err != nil {
		return err
	}
	r.plugin = p
	return nil
}

func (r *wasmRunner) NewConn(props filtertable.ConnProps) (filtertable.Conn, error) {
	r.nextID++
	info := host.ConnInfo{ID: r.nextID, Destination: netip.MustParseAddrPort("10.0.0.1:11112")}
	if props.Source != "" {
		ap, err := netip.ParseAddrPort(props.Source)
		if err != nil {
			return nil, err
		}
		info.Source = ap
	}
	if props.MTLS || props.URISAN != "" || props.DNSSAN != "" || props.Subject != "" || props.SHA256 != "" {
		tls := &host.TLSInfo{Version: "TLSv1.3", PeerCertPresented: props.MTLS, SubjectPeer: props.Subject, SHA256PeerDigest: props.SHA256}
		if props.URISAN != "" {
			tls.URISANsPeer = []string{props.URISAN}
		}
		if props.DNSSAN != "" {
			tls.DNSSANsPeer = []string{props.DNSSAN}
		}
		info.TLS = tls
	}
	proxy := host.TCPProxyConfig{Cluster: filtertable.DefaultCluster, MaxEarlyDataBytes: 2 << 20}
	if r.listener.NoEarlyData {
		proxy.MaxEarlyDataBytes = 0
	}
	t := &wasmTransport{}
	t.conn = r.plugin.NewConn(info, proxy, t)
	return t, nil
}

func (r *wasmRunner) Advance(d time.Duration) { r.plugin.Tick(r.clock.Advance(d)) }

func (r *wasmRunner) Metric(series string) (uint64, bool) {
	return r.plugin.Metrics().Get(filtertable.EncodeSeries(series))
}

func (r *wasmRunner) Logs(level filtertable.Level) []string {
	r.logs.mu.Lock()
	defer r.logs.mu.Unlock()
	return append([]string(nil), r.logs.lines[level]...)
}

// wasmTransport plays the sockets: the upstream connects at once.
type wasmTransport struct {
	conn      *host.Conn
	mu        sync.Mutex
	connected bool
	cluster   string
	closed    bool
	gone      bool
	forwarded []byte
}

// ClientClose: the client closed the connection (Envoy RemoteClose).
func (t *wasmTransport) ClientClose() {
	t.mu.Lock()
	gone := t.gone
	t.gone = true
	t.mu.Unlock()
	if !gone {
		t.conn.DownstreamClosed(true)
	}
}

func (t *wasmTransport) Bind(c *host.Conn) { t.conn = c }

func (t *wasmTransport) ConnectUpstream(cluster string) {
	t.mu.Lock()
	t.connected, t.cluster = true, cluster
	t.mu.Unlock()
	t.conn.UpstreamConnected()
}

func (t *wasmTransport) WriteUpstream(b []byte, _ bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forwarded = append(t.forwarded, b...)
}

func (t *wasmTransport) WriteDownstream([]byte, bool) {}

func (t *wasmTransport) CloseDownstream(string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
}

func (t *wasmTransport) CloseUpstream()                 {}
func (t *wasmTransport) SetDownstreamReadDisabled(bool) {}

func (t *wasmTransport) Data(chunk []byte, eos bool) {
	t.mu.Lock()
	closed := t.closed || t.gone
	t.mu.Unlock()
	if !closed {
		t.conn.DownstreamData(chunk, eos)
	}
}

func (t *wasmTransport) Observe() filtertable.Observed {
	fs := t.conn.FilterState()
	t.mu.Lock()
	defer t.mu.Unlock()
	o := filtertable.Observed{Closed: t.closed, UpstreamConnect: t.connected, Forwarded: append([]byte(nil), t.forwarded...),
		Properties: map[string]string{}}
	if t.connected {
		o.Cluster = t.cluster
	}
	for _, k := range []string{"dicom.calling_ae", "dicom.called_ae", "dicom.decision", "dicom.rule"} {
		if v, ok := fs["wasm."+k]; ok {
			o.Properties[k] = v
		}
	}
	return o
}

// TestFilterTableWasm runs the shared behaviour table against the compiled
// module in the Envoy-faithful host.
func TestFilterTableWasm(t *testing.T) {
	filtertable.Run(t, newWasmRunner(t))
}
