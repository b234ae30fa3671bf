package gateway

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/internal/wasmbuild"
	"github.com/dicomgate/dicomgate/wasm/host"
)

// filterModule returns the compiled dicomgate filter ($DICOMGATE_WASM or a
// fresh `make wasm` build; the gateway loads .wasm bytes, it never imports the
// filter package).
func filterModule(t testing.TB) []byte {
	t.Helper()
	b, _, err := wasmbuild.Dicomgate()
	require.NoError(t, err)
	return b
}

// testEngine returns an Engine for one test or benchmark (the compilation cache is shared: the
// filter is compiled once per machine), closed when it ends.
func testEngine(tb testing.TB) *host.Engine {
	tb.Helper()
	e, err := host.NewEngine(context.Background(), host.EngineConfig{CompilationCache: wasmbuild.CompilationCache()})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

type lineLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLogger) Log(level host.LogLevel, plugin, msg string) {
	l.mu.Lock()
	l.lines = append(l.lines, level.String()+" "+msg)
	l.mu.Unlock()
}

func (l *lineLogger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func realPlugin(t *testing.T, policy string) (*host.Plugin, *lineLogger) {
	t.Helper()
	log := &lineLogger{}
	p, err := testEngine(t).NewPlugin(context.Background(), filterModule(t), host.PluginConfig{
		Name: "dicomgate", RootID: "dicomgate", Configuration: []byte(policy), Workers: 1, Logger: log,
	})
	require.NoError(t, err, "filter log:\n%s", log)
	p.Start(context.Background())
	t.Cleanup(func() { p.Close(context.Background()) })
	return p, log
}

func withCalled(stream []byte, called string) []byte {
	out := bytes.Clone(stream)
	copy(out[10:26], []byte(called+strings.Repeat(" ", 16-len(called))))
	return out
}

// The real filter in the real host behind the gateway, with early data: the
// A-ASSOCIATE-RQ is routed by called AE title and by the client
// certificate's subject (connection.subject_peer_certificate in Envoy's
// RFC 2253 form), a denied association reaches no backend, and the filter's
// metrics are exported.
func TestRealFilterRoutesOnRQAndPeerSubject(t *testing.T) {
	replyA, replyB := []byte("A"), []byte("B")
	a, b := newBackend(t, replyA), newBackend(t, replyB)
	plugin, log := realPlugin(t, `{
	  "defaultAction": "deny",
	  "upstreamConnect": "after-decision",
	  "rules": [
	    {"name": "ct1-to-a", "match": {"calledAETitles": ["PACS_A"], "peerSubjects": ["CN=CT1,O=Hospital"]}, "action": "route", "cluster": "pacs-a"},
	    {"name": "any-to-b", "match": {"calledAETitles": ["PACS_B"]}, "action": "route", "cluster": "pacs-b"},
	    {"name": "other-only", "match": {"calledAETitles": ["PACS_C"], "peerSubjects": ["CN=CT2,O=Hospital"]}, "action": "route", "cluster": "pacs-a"}
	  ]}`)
	e := startGateway(t, Config{
		Clusters:          []*Cluster{{Name: "pacs-a", Endpoints: []string{a.addr()}}, {Name: "pacs-b", Endpoints: []string{b.addr()}}},
		MaxEarlyDataBytes: 1 << 20,
	}, true, true, func(*recorder) NewFilterFunc { return PluginFilters(plugin) })

	echo := capture(t, "echo_default.c2s.bin")
	for _, tc := range []struct {
		called  string
		want    []byte
		backend *backend
	}{{"PACS_A", replyA, a}, {"PACS_B", replyB, b}} {
		req := withCalled(echo, tc.called)
		got, err := exchange(t, e.dial(t, true), req)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "filter log:\n%s", log)
		_, recv, eof := tc.backend.snapshot()
		require.Equal(t, req, recv[len(recv)-1])
		require.True(t, eof[len(eof)-1])
	}
	na, _, _ := a.snapshot()
	nb, _, _ := b.snapshot()
	got, _ := exchange(t, e.dial(t, true), withCalled(echo, "PACS_C")) // subject does not match
	require.Empty(t, got)
	got, _ = exchange(t, e.dial(t, true), withCalled(echo, "NOBODY"))
	require.Empty(t, got)
	time.Sleep(50 * time.Millisecond)
	na2, _, _ := a.snapshot()
	nb2, _, _ := b.snapshot()
	require.Equal(t, [2]int{na, nb}, [2]int{na2, nb2}, "denied associations must not reach any backend")

	require.Contains(t, log.String(), `"peer_subject":"CN=CT1,O=Hospital"`)
	var page strings.Builder
	require.NoError(t, plugin.Metrics().WritePrometheus(&page))
	require.Contains(t, page.String(), "dicomgate_denied_total")
	waitFor(t, "drain", func() bool { return e.g.ActiveConnections() == 0 })
	require.EqualValues(t, 4, e.g.Metrics().ConnectionsTotal.Load())
}

// Istio's default (no early data): tcp_proxy connects the default cluster at
// once and keeps client reads disabled until it is up; the filter (upstreamConnect
// "immediate") then allows or denies. A denied client's bytes never reach the
// upstream, which only sees a TCP connect (docs/internals.md, "Envoy's L4 chain and the two connect modes").
func TestRealFilterWithoutEarlyData(t *testing.T) {
	reply := []byte("pong")
	up := newBackend(t, reply)
	plugin, log := realPlugin(t, `{
	  "defaultAction": "deny",
	  "upstreamConnect": "immediate",
	  "rules": [{"name": "echo", "match": {"calledAETitles": ["ANY-SCP"]}, "action": "allow"}]}`)
	e := startGateway(t, Config{
		Clusters:       []*Cluster{{Name: "default", Endpoints: []string{up.addr()}}},
		DefaultCluster: "default",
	}, false, false, func(*recorder) NewFilterFunc { return PluginFilters(plugin) })

	req := capture(t, "echo_default.c2s.bin")
	got, err := exchange(t, e.dial(t, false), req)
	require.NoError(t, err)
	require.Equal(t, reply, got, "filter log:\n%s", log)

	got, _ = exchange(t, e.dial(t, false), withCalled(req, "NOBODY"))
	require.Empty(t, got)
	waitFor(t, "drain", func() bool { return e.g.ActiveConnections() == 0 })
	waitFor(t, "backend sees the denied connection close", func() bool {
		n, recv, _ := up.snapshot()
		return n == 2 && len(recv) == 2 && recv[1] != nil
	})
	_, recv, _ := up.snapshot()
	require.Equal(t, req, recv[0])
	require.Empty(t, recv[1], "a denied client's bytes must never reach the upstream")
}
