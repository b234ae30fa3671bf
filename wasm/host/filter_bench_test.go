package host_test

// Benchmarks and the memory soak of the real filter (build/dicomgate.wasm) in this host. The
// module is loaded as bytes: wasm/ never imports filters/. It is built from ../../filters/dicomgate
// with the `make wasm` command into a temporary directory once per test binary, or read from
// $DICOMGATE_WASM when set (e.g. DICOMGATE_WASM=build/dicomgate.wasm to measure a given build).

import (
	"context"
	"encoding/binary"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/internal/wasmbuild"
	"github.com/dicomgate/dicomgate/wasm/host"
	"github.com/stretchr/testify/require"
)

// dicomgateWasm is the compiled filter ($DICOMGATE_WASM or a `make wasm` build).
func dicomgateWasm() ([]byte, error) {
	b, _, err := wasmbuild.Dicomgate()
	return b, err
}

// routePolicy routes the echo capture's called AE "ANY-SCP" to cluster pacs-a; everything else is
// denied.
const routePolicy = `{"defaultAction": "deny", "rules": [
  {"name": "any-scp", "match": {"calledAETitles": ["ANY-SCP"]}, "action": "route", "cluster": "pacs-a"}]}`

// routedCluster is the cluster routePolicy picks.
const routedCluster = "pacs-a"

// echoCapture returns the echo_default client stream split into its first PDU (the
// A-ASSOCIATE-RQ) and the rest.
func echoCapture(tb testing.TB) (rq, rest []byte) {
	tb.Helper()
	b, err := os.ReadFile("../../sdk/pdu/testdata/echo_default.c2s.bin")
	require.NoError(tb, err)
	require.True(tb, len(b) >= 6 && b[0] == 0x01, "echo_default.c2s.bin does not start with an A-ASSOCIATE-RQ")
	n := 6 + int(binary.BigEndian.Uint32(b[2:6]))
	require.LessOrEqual(tb, n, len(b), "echo_default.c2s.bin: first PDU of %d bytes is truncated at %d", n, len(b))
	return b[:n], b[n:]
}

// benchClock is a fixed fake clock (no time.Now in the measured path).
type benchClock struct{ now time.Time }

func (c *benchClock) Now() time.Time { return c.now }

func (c *benchClock) Monotonic() time.Duration {
	return time.Second + time.Duration(c.now.UnixNano()%1e9)
}

// countLogger counts log lines and keeps a copy of the last one (the audit line of the last
// association) in a reused buffer. It is a host.LogViewer, like a production logger that writes
// each line out at once: guest lines arrive without a per-line copy by the host.
type countLogger struct {
	mu    sync.Mutex
	n     int
	last  []byte
	worst host.LogLevel
}

func (l *countLogger) Log(level host.LogLevel, _ string, msg string) {
	l.mu.Lock()
	l.n++
	l.last = append(l.last[:0], msg...)
	if level > l.worst {
		l.worst = level
	}
	l.mu.Unlock()
}

func (l *countLogger) LogView(level host.LogLevel, _ string, msg []byte) {
	l.mu.Lock()
	l.n++
	l.last = append(l.last[:0], msg...)
	if level > l.worst {
		l.worst = level
	}
	l.mu.Unlock()
}

// loadFilter loads the filter with policy on one worker.
func loadFilter(tb testing.TB, policy string) (*host.Plugin, *countLogger) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds the dicomgate module; skipped in -short mode")
	}
	wasm, err := dicomgateWasm()
	require.NoError(tb, err)
	logs := &countLogger{}
	p, err := newEngine(tb).NewPlugin(context.Background(), wasm, host.PluginConfig{
		Name: "istio-ingress.dicomgate", RootID: "dicomgate", Configuration: []byte(policy), Workers: 1,
		Clock: &benchClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, Logger: logs,
	})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = p.Close(context.Background()) })
	return p, logs
}

// newEngine returns an Engine for one test or benchmark, closed when it ends (the compilation
// cache is shared: the filter is compiled once per machine).
func newEngine(tb testing.TB) *host.Engine {
	tb.Helper()
	e, err := host.NewEngine(context.Background(), host.EngineConfig{CompilationCache: wasmbuild.CompilationCache()})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

// syncTransport plays the sockets without any: the upstream connects at once (inside
// ConnectUpstream), forwarded bytes are only counted.
type syncTransport struct {
	c         *host.Conn
	cluster   string
	forwarded int
	closed    bool
}

func (t *syncTransport) Bind(c *host.Conn) { t.c = c }
func (t *syncTransport) ConnectUpstream(cluster string) {
	t.cluster = cluster
	t.c.UpstreamConnected()
}
func (t *syncTransport) WriteUpstream(b []byte, _ bool) { t.forwarded += len(b) }
func (t *syncTransport) WriteDownstream([]byte, bool)   {}
func (t *syncTransport) CloseDownstream(string)         { t.closed = true }
func (t *syncTransport) CloseUpstream()                 {}
func (t *syncTransport) SetDownstreamReadDisabled(bool) {}
func (t *syncTransport) reset()                         { *t = syncTransport{} }
func (t *syncTransport) routed(total int) bool {
	return t.cluster == routedCluster && !t.closed && t.forwarded == total
}
func (t *syncTransport) describe() string {
	return "cluster=" + strconv.Quote(t.cluster) + " closed=" + strconv.FormatBool(t.closed) + " forwarded=" + strconv.Itoa(t.forwarded)
}
func connInfo(id uint64) host.ConnInfo {
	return host.ConnInfo{ID: id, Source: benchSource, Destination: benchDest}
}

var benchSource, benchDest = netip.MustParseAddrPort("10.1.2.3:40000"), netip.MustParseAddrPort("10.0.0.1:11112")

// earlyData is tcp_proxy with max_early_data_bytes (receive_before_connect), required for route.
var earlyData = host.TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1 << 20}

// associate runs one routed association: new connection (context create, on_new_connection ⇒
// Pause), the RQ in one read (decision, set_envoy_filter_state, Continue ⇒ tcp_proxy routes and
// connects), extra post-decision reads of the rest of the stream, and the client's close (close,
// done, log, delete); then it releases the Conn, as a gateway does once its connection is over.
func associate(p *host.Plugin, t *syncTransport, id uint64, rq, rest []byte, extraReads int) {
	t.reset()
	c := p.NewConn(connInfo(id), earlyData, t)
	c.DownstreamData(rq, false)
	for i := 0; i < extraReads; i++ {
		c.DownstreamData(rest, false)
	}
	c.DownstreamClosed(true)
	t.c = nil // the transport no longer refers to the connection
	c.Release()
}

// BenchmarkWasmAssociation: one full routed association of the echo capture through the compiled
// filter (conn create → new connection → RQ data → decision → route → rest of the stream → close,
// done, log, delete), no sockets. Reports host calls per association (budget ≤ 12) and the VM's
// linear memory.
func BenchmarkWasmAssociation(b *testing.B) {
	p, logs := loadFilter(b, routePolicy)
	rq, rest := echoCapture(b)
	t := &syncTransport{}
	associate(p, t, 1, rq, rest, 1)
	require.True(b, t.routed(len(rq)+len(rest)), "association not routed to %s: %s; last log: %s", routedCluster, t.describe(), logs.last)
	calls := p.HostCalls()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		associate(p, t, uint64(i+2), rq, rest, 1)
	}
	b.StopTimer()
	require.True(b, t.routed(len(rq)+len(rest)), "last association not routed: %s", t.describe())
	b.ReportMetric(float64(p.HostCalls()-calls)/float64(b.N), "hostcalls/op")
	b.ReportMetric(float64(p.GuestMemoryBytes()), "vm-bytes")
}

// TestWasmAssociationAllocatesNothing pins the host side of BenchmarkWasmAssociation at zero
// allocations: with Conn.Release and a LogViewer, a routed association (filter state, properties,
// audit log line, metrics, Transport calls) allocates nothing in the host.
func TestWasmAssociationAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop released Conns")
	}
	p, logs := loadFilter(t, routePolicy)
	rq, rest := echoCapture(t)
	tr := &syncTransport{}
	id := uint64(0)
	run := func() {
		id++
		associate(p, tr, id, rq, rest, 1)
	}
	for i := 0; i < 50; i++ { // warm up: intern table, caches, pool
		run()
	}
	require.Zero(t, testing.AllocsPerRun(200, run), "allocations per association")
	require.True(t, tr.routed(len(rq)+len(rest)), "association not routed: %s; last log: %s", tr.describe(), logs.last)
}

// BenchmarkWasmPassthrough: one 16 KiB downstream read after the decision. The filter must return
// Continue at once without touching the buffer: ≤ 1 host call per callback (the filter makes 0).
func BenchmarkWasmPassthrough(b *testing.B) {
	p, logs := loadFilter(b, routePolicy)
	rq, _ := echoCapture(b)
	t := &syncTransport{}
	c := p.NewConn(connInfo(1), earlyData, t)
	c.DownstreamData(rq, false)
	require.True(b, t.cluster == routedCluster && !t.closed, "association not routed: %s; last log: %s", t.describe(), logs.last)
	chunk := make([]byte, passthroughSize)
	calls := p.HostCalls()
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.DownstreamData(chunk, false)
	}
	b.StopTimer()
	require.Equal(b, len(rq)+b.N*len(chunk), t.forwarded, "bytes forwarded")
	require.False(b, t.closed, "connection closed during the passthrough")
	b.ReportMetric(float64(p.HostCalls()-calls)/float64(b.N), "hostcalls/op")
	c.DownstreamClosed(true)
}

// manyRulesPolicy is a policy of n rules; the last one routes ANY-SCP.
func manyRulesPolicy(n int) string {
	var sb strings.Builder
	sb.WriteString(`{"defaultAction": "deny", "rules": [`)
	for i := 0; i < n-1; i++ {
		sb.WriteString(`{"name": "r` + strconv.Itoa(i) + `", "match": {"calledAETitles": ["AE` + strconv.Itoa(i) +
			`"], "callingAETitles": ["CALLER` + strconv.Itoa(i) + `"], "sourceCIDRs": ["10.` + strconv.Itoa(i%250) +
			`.0.0/16"]}, "action": "allow"},`)
	}
	sb.WriteString(`{"name": "any-scp", "match": {"calledAETitles": ["ANY-SCP"]}, "action": "route", "cluster": "pacs-a"}]}`)
	return sb.String()
}

// maxVMBytes is the budget of one VM's linear memory with a 1,000-rule policy.
const maxVMBytes = 8 << 20

// TestWasmVMMemory1000Rules: one VM configured with a 1,000-rule policy (each rule with called,
// calling and source conditions; the last one routes) stays within 8 MiB of linear memory, also
// after routing associations through it.
func TestWasmVMMemory1000Rules(t *testing.T) {
	p, logs := loadFilter(t, manyRulesPolicy(1000))
	configured := p.GuestMemoryBytes()
	rq, rest := echoCapture(t)
	tr := &syncTransport{}
	for i := 0; i < 200; i++ {
		associate(p, tr, uint64(i+1), rq, rest, 1)
		require.True(t, tr.routed(len(rq)+len(rest)), "association %d not routed by the 1000th rule: %s; last log: %s", i, tr.describe(), logs.last)
	}
	after := p.GuestMemoryBytes()
	t.Logf("VM linear memory with a 1,000-rule policy: %d bytes configured, %d bytes after 200 associations", configured, after)
	require.LessOrEqual(t, after, uint64(maxVMBytes), "VM linear memory is %d bytes (%.1f MiB) with a 1,000-rule policy; budget %d MiB", after, float64(after)/(1<<20), maxVMBytes>>20)
}

// TestWasmSoakGuestMemoryFlat drives more than 1,000,000 downstream data callbacks through one VM
// (routed associations, each followed by post-decision reads) and asserts that the guest's linear
// memory stops growing after a warm-up. Each association leaves garbage in the guest (the RQ and
// property values the host allocates there, SDK context state), so memory only stays flat if the
// guest's GC keeps up and nothing leaks. Checked by throwaway experiments (2026-11-25, go1.26.8):
// keeping every passed connection in the filter's pending map grows memory from 6.3 to 13.1 MB and
// fails this test. Removing the filter's periodic runtime.Gosched does NOT make memory grow, even
// with 1 KiB of extra garbage per callback: Go 1.26 completes GC cycles through mutator assists
// without the background workers running, so the unbounded growth described in docs/internals.md ("Guest memory and yields") does not
// reproduce with this toolchain; the yield stays as cheap insurance.
//
// Tolerance: one Wasm page (64 KiB). The guest is deterministic (no ticks here, GC driven by
// allocation only), and the shipped filter's memory is exactly flat after the warm-up (3,407,872
// bytes at 10,100 and at 101,000 associations, 2026-12-06, go1.26). A leak of 8 bytes per
// association keeps 90,900 × 8 = 727,200 more bytes live after the warm-up — 11× the tolerance;
// measured with a throwaway build of the filter that appends 8 bytes to a global slice in
// OnNewConnection: 4,456,448 → 8,388,608 bytes, which this test fails (the former +4 MiB tolerance
// let it pass).
func TestWasmSoakGuestMemoryFlat(t *testing.T) {
	p, logs := loadFilter(t, routePolicy)
	rq, rest := echoCapture(t)
	const (
		extraReads   = 9                               // post-decision reads per association
		associations = 1_000_000/(1+extraReads) + 1000 // ⇒ > 1,000,000 data callbacks
		warmup       = associations / 10
	)
	tr := &syncTransport{}
	run := func(from, to int) {
		for i := from; i < to; i++ {
			associate(p, tr, uint64(i+1), rq, rest, extraReads)
			require.True(t, tr.routed(len(rq)+extraReads*len(rest)), "association %d not routed: %s; last log: %s", i, tr.describe(), logs.last)
		}
	}
	run(0, warmup)
	warm := p.GuestMemoryBytes()
	run(warmup, associations)
	end := p.GuestMemoryBytes()
	t.Logf("guest memory after %d associations (%d data callbacks): %d bytes; after %d (%d data callbacks): %d bytes",
		warmup, warmup*(1+extraReads), warm, associations, associations*(1+extraReads), end)
	const tolerance = 64 << 10 // one Wasm page; see the function comment
	leaked := 8 * (associations - warmup)
	require.GreaterOrEqual(t, leaked, 8*tolerance, "the soak is too short to catch an 8-byte-per-association leak: %d bytes vs a tolerance of %d", leaked, tolerance)
	require.LessOrEqual(t, end, warm+tolerance, "guest memory grew from %d to %d bytes over %d associations (%d data callbacks)",
		warm, end, associations-warmup, (associations-warmup)*(1+extraReads))
	v, ok := p.Metrics().Get("dicomgate_associations_total")
	require.True(t, ok, "dicomgate_associations_total not defined")
	require.Equal(t, uint64(associations), v, "dicomgate_associations_total")
	require.LessOrEqual(t, logs.worst, host.LogInfo, "a log line above info during the soak; last: %s", logs.last)
}

var passthroughSize = 16 << 10
