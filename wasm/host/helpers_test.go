package host

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/internal/wasmbuild"
	"github.com/stretchr/testify/require"
)

// --- test filter build (once per build-tag set per test run) ---------------------------------------

// testFilter returns wasm/testdata/testfilter built with the given build tags (internal/wasmbuild.TestFilter:
// stock Go, wasip1 c-shared, once per tag set per test binary).
func testFilter(t testing.TB, tags string) []byte {
	t.Helper()
	b, err := wasmbuild.TestFilter(tags)
	require.NoError(t, err)
	return b
}

// --- logger ----------------------------------------------------------------------------------------

type logLine struct {
	level LogLevel
	msg   string
}

type captureLogger struct {
	mu    sync.Mutex
	lines []logLine
}

func (l *captureLogger) Log(level LogLevel, _ string, msg string) {
	l.mu.Lock()
	l.lines = append(l.lines, logLine{level, msg})
	l.mu.Unlock()
}

// matching returns the messages that start with prefix.
func (l *captureLogger) matching(prefix string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, x := range l.lines {
		if strings.HasPrefix(x.msg, prefix) {
			out = append(out, x.msg)
		}
	}
	return out
}

// probe returns the single "PROBE <name> ..." line's remainder, failing if absent.
func (l *captureLogger) probe(t *testing.T, name string) string {
	t.Helper()
	lines := l.matching("PROBE " + name + " ")
	require.NotEmpty(t, lines, "no PROBE %s line; log:\n%s", name, l.dump())
	return strings.TrimPrefix(lines[len(lines)-1], "PROBE "+name+" ")
}

// metric returns the value of the metric series name of e's plugin; a missing series fails the
// test (it never reads as zero).
func (e *env) metric(t *testing.T, name string) uint64 {
	t.Helper()
	v, ok := e.p.Metrics().Get(name)
	require.True(t, ok, "no metric series %s", name)
	return v
}

// probes requires the last "PROBE <name> ..." line of each name in want to read as want says; the
// differences of all names are shown at once.
func (l *captureLogger) probes(t *testing.T, want map[string]string) {
	t.Helper()
	got := make(map[string]string, len(want))
	for name := range want {
		got[name] = l.probe(t, name)
	}
	require.Equal(t, want, got, "PROBE lines (name: remainder)")
}

func (l *captureLogger) events() []string {
	var out []string
	for _, m := range l.matching("EVT ") {
		out = append(out, strings.TrimPrefix(m, "EVT "))
	}
	return out
}

func (l *captureLogger) reset() {
	l.mu.Lock()
	l.lines = nil
	l.mu.Unlock()
}

func (l *captureLogger) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, x := range l.lines {
		fmt.Fprintf(&b, "  [%s] %s\n", x.level, x.msg)
	}
	return b.String()
}

// --- clock ---------------------------------------------------------------------------------------

type fakeClock = ManualClock

func newFakeClock() *fakeClock { return NewManualClock(time.Unix(1_700_000_000, 0)) }

// --- transport -----------------------------------------------------------------------------------

// recTransport records every instruction. If autoConnect, ConnectUpstream answers synchronously
// (re-entrantly) with UpstreamConnected for known clusters and UpstreamConnectFailed otherwise.
type recTransport struct {
	mu          sync.Mutex
	ops         []string
	up, down    []byte
	conn        *Conn
	autoConnect bool
	clusters    map[string]bool
}

func (r *recTransport) add(op string) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

func (r *recTransport) ConnectUpstream(cluster string) {
	r.add("connect " + cluster)
	if r.autoConnect {
		if r.clusters == nil || r.clusters[cluster] {
			r.conn.UpstreamConnected()
		} else {
			r.conn.UpstreamConnectFailed("NoClusterFound: " + cluster)
		}
	}
}

func (r *recTransport) WriteUpstream(b []byte, end bool) {
	r.mu.Lock()
	r.up = append(r.up, b...)
	r.mu.Unlock()
	r.add(fmt.Sprintf("up %q end=%t", b, end))
}

func (r *recTransport) WriteDownstream(b []byte, end bool) {
	r.mu.Lock()
	r.down = append(r.down, b...)
	r.mu.Unlock()
	r.add(fmt.Sprintf("down %q end=%t", b, end))
}

func (r *recTransport) Bind(c *Conn) {
	r.mu.Lock()
	r.conn = c
	r.mu.Unlock()
}

func (r *recTransport) CloseDownstream(reason string) { r.add("close_downstream " + reason) }
func (r *recTransport) CloseUpstream()                { r.add("close_upstream") }
func (r *recTransport) SetDownstreamReadDisabled(d bool) {
	r.add(fmt.Sprintf("read_disabled=%t", d))
}

func (r *recTransport) opsList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ops...)
}

func (r *recTransport) upstream() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.up)
}

// --- plugin ----------------------------------------------------------------------------------------

type env struct {
	p   *Plugin
	log *captureLogger
	clk *fakeClock
}

// testEngine returns an Engine of its own for one test (shared data included), closed when the
// test ends. The compilation cache is shared: the test filter is compiled once per machine.
func testEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := NewEngine(context.Background(), EngineConfig{CompilationCache: wasmbuild.CompilationCache()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

// newTestPlugin loads the test filter with the given JSON configuration.
func newTestPlugin(t *testing.T, conf string, mod func(*PluginConfig)) *env {
	t.Helper()
	e := &env{log: &captureLogger{}, clk: newFakeClock()}
	cfg := PluginConfig{
		Name: "ns.testfilter", RootID: "testfilter", Configuration: []byte(conf), Workers: 1,
		Clock: e.clk, Logger: e.log,
	}
	if mod != nil {
		mod(&cfg)
	}
	tags := ""
	if cfg.Env["TF_TAGS"] != "" {
		tags = cfg.Env["TF_TAGS"]
	}
	p, err := testEngine(t).NewPlugin(context.Background(), testFilter(t, tags), cfg)
	require.NoError(t, err, "NewPlugin; log:\n%s", e.log.dump())
	e.p = p
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return e
}

func (e *env) conn(t *testing.T, proxy TCPProxyConfig, tr *recTransport) *Conn {
	t.Helper()
	info := ConnInfo{ID: 42}
	return e.p.NewConn(info, proxy, tr)
}

var _ = runtime.GOMAXPROCS

// tickContinuously calls Tick from its own goroutine, advancing the clock 1 ms each time, until
// the returned stop is called; stop waits for the goroutine to end.
func (e *env) tickContinuously() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
				e.p.Tick(e.clk.Advance(time.Millisecond))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
