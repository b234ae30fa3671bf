//go:build !wasip1

package main

import (
	"encoding/json"
	"io"
	"log"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/filters/dicomgate/internal/abi"
	"github.com/dicomgate/dicomgate/internal/filtertable"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	// proxytest echoes every host call with log.Printf; keep test output readable.
	if os.Getenv("DICOMGATE_TEST_VERBOSE") == "" {
		log.SetOutput(io.Discard)
	}
	os.Exit(m.Run())
}

func captures(t testing.TB) filtertable.Captures {
	t.Helper()
	c, err := filtertable.LoadCaptures()
	require.NoError(t, err)
	return c
}

// The deadline check runs every min(inspectTimeoutMs/4, 500 ms), at least
// every 50 ms (proxy_set_tick_period_milliseconds).
func TestTickPeriodFollowsInspectTimeout(t *testing.T) {
	r := newNativeRunner(t)
	for _, c := range []struct {
		cfg  string
		want uint32
	}{
		{`{}`, 500},
		{`{"inspectTimeoutMs": 1000}`, 250},
		{`{"inspectTimeoutMs": 100}`, 50},
	} {
		t.Run(c.cfg, func(t *testing.T) {
			require.NoError(t, r.Configure([]byte(c.cfg), filtertable.Listener{}))
			require.Equal(t, c.want, r.host.GetTickPeriod(), "%s: tick period (ms)", c.cfg)
		})
	}
}

// A panic inside a callback must not trap the VM (which would fail every
// connection of the worker): it is recovered, counted as internal and the
// connection is closed (fail closed).
func TestPanicInCallbackFailsClosed(t *testing.T) {
	caps := captures(t)
	rq := filtertable.FirstPDU(caps["store_default"])
	r := newNativeRunner(t)
	require.NoError(t, r.Configure([]byte(`{"rules": [{"name": "rw", "action": "allow", "rewriteCalledAETitle": "PACS"}]}`), filtertable.Listener{}))
	abi.Emulated.ReplaceDownstreamPrefix = func(uint32, int, []byte) error { panic("boom") }
	c, err := r.NewConn(filtertable.ConnProps{Source: "10.0.0.1:1"})
	require.NoError(t, err)
	c.Data(rq, false)
	o := c.Observe()
	require.True(t, o.Closed && !o.UpstreamConnect && len(o.Forwarded) == 0, "after a panic: %+v; want closed, nothing forwarded", o)
	v, ok := r.Metric(`dicomgate_denied_total{reason="internal"}`)
	require.True(t, ok, `dicomgate_denied_total{reason="internal"} is not defined`)
	require.Equal(t, uint64(1), v, "denied internal")
	require.True(t, containsLine(r.Logs(filtertable.LevelError), "boom"), "no error log names the panic: %q", r.Logs(filtertable.LevelError))
	// Later callbacks on the closed connection stay paused.
	c.Data([]byte{1, 2, 3}, false)
	require.Empty(t, c.Observe().Forwarded, "bytes forwarded after close")
}

// A host error while rewriting fails closed too.
func TestRewriteHostErrorFailsClosed(t *testing.T) {
	rq := filtertable.FirstPDU(captures(t)["store_default"])
	r := newNativeRunner(t)
	require.NoError(t, r.Configure([]byte(`{"rules": [{"name": "rw", "action": "allow", "rewriteCalledAETitle": "PACS"}]}`), filtertable.Listener{}))
	abi.Emulated.ReplaceDownstreamPrefix = func(uint32, int, []byte) error { return abi.StatusError("proxy_set_buffer_bytes", 2) }
	c, err := r.NewConn(filtertable.ConnProps{Source: "10.0.0.1:1"})
	require.NoError(t, err)
	c.Data(rq, false)
	o := c.Observe()
	require.True(t, o.Closed && len(o.Forwarded) == 0, "%+v; want closed", o)
	require.True(t, containsLine(r.Logs(filtertable.LevelError), "BAD_ARGUMENT"), "error log does not name the status: %q", r.Logs(filtertable.LevelError))
}

// The audit line carries every documented field.
func TestAuditLineFields(t *testing.T) {
	rq := filtertable.FirstPDU(captures(t)["echo_default"])
	r := newNativeRunner(t)
	require.NoError(t, r.Configure([]byte(`{"defaultAction": "allow"}`), filtertable.Listener{}))
	c, err := r.NewConn(filtertable.ConnProps{Source: "[2001:db8::1]:4242", MTLS: true, URISAN: "spiffe://x/ns/a/sa/b", Subject: "CN=b", SHA256: "00ff"})
	require.NoError(t, err)
	r.Advance(1500 * time.Microsecond) // latency is measured from the first byte, not from accept
	c.Data(rq[:10], false)
	r.clock = r.clock.Add(250 * time.Microsecond)
	c.Data(rq[10:], false)
	lines := filtertable.AuditLines(r.Logs(filtertable.LevelInfo))
	require.Len(t, lines, 1, "audit lines %q", lines)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &m), "audit line %s", lines[0])
	var missing []string
	for _, k := range []string{"time", "conn", "source", "calling_ae", "called_ae", "peer_uri_san", "peer_subject", "peer_sha256",
		"presentation_contexts", "sop_classes", "decision", "rule", "cluster", "reason", "latency_us", "dry_run"} {
		if _, ok := m[k]; !ok {
			missing = append(missing, k)
		}
	}
	require.Empty(t, missing, "audit fields missing: %s", lines[0])
	require.Equal(t, 250.0, m["latency_us"], "latency_us")
	require.Equal(t, "[2001:db8::1]:4242", m["source"], "source: %s", lines[0])
	require.Equal(t, 1.0, m["conn"], "conn: %s", lines[0])
	require.Equal(t, "00ff", m["peer_sha256"], "peer_sha256: %s", lines[0])
	tm, ok := m["time"].(string)
	require.True(t, ok, "time %v is not a string: %s", m["time"], lines[0])
	ts, err := time.Parse(time.RFC3339Nano, tm)
	require.NoError(t, err, "time %v", m["time"])
	require.True(t, ts.Equal(r.clock), "time %v; want %v", m["time"], r.clock)
}

// The configuration's diagnostics are logged one per line at error level.
func TestBadConfigLogsEveryDiagnostic(t *testing.T) {
	r := newNativeRunner(t)
	err := r.Configure([]byte(`{"defaultAction": "maybe", "rules": [{"name": "x", "action": "route"}], "inspectTimeoutMs": -1}`), filtertable.Listener{})
	require.Error(t, err, "configuration accepted")
	errs := r.Logs(filtertable.LevelError)
	var unmentioned []string
	for _, sub := range []string{"defaultAction", "rules[0]", "inspectTimeoutMs", "configuration rejected"} {
		if !containsLine(errs, sub) {
			unmentioned = append(unmentioned, sub)
		}
	}
	require.Empty(t, unmentioned, "no error line mentions these: %q", errs)
}

func containsLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// BenchmarkFilterAssociation is the full lifecycle of one allowed
// association on echo_default under proxytest: new connection, the RQ in one
// read, decision, re-delivery after tcp_proxy connects, the rest of the
// stream, close.
func BenchmarkFilterAssociation(b *testing.B) {
	echo := captures(b)["echo_default"]
	rq := filtertable.FirstPDU(echo)
	rest := echo[len(rq):]
	r := newNativeRunner(b)
	require.NoError(b, r.Configure([]byte(`{"defaultAction": "deny", "rules": [{"name": "echo", "match": {"callingAETitles": ["ECHOSCU"]}, "action": "allow"}]}`), filtertable.Listener{}))
	props := filtertable.ConnProps{Source: "10.1.2.3:40000"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := r.NewConn(props)
		if err != nil { // require only on failure: every require call runs b.Helper, which the loop would time
			require.NoError(b, err)
		}
		nc := c.(*nativeConn)
		nc.Data(rq, false)
		nc.Data(rest, true)
		if !nc.connected || nc.closed {
			require.FailNow(b, "association not allowed")
		}
		r.host.CloseDownstreamConnection(nc.id)
		r.host.CompleteConnection(nc.id)
		delete(r.conns, nc.id)
		delete(r.tcps, nc.id)
	}
}

// Envoy closing the connection itself before a decision (LOCAL close the
// filter did not request) is logged, not counted as a client eof.
func TestLocalCloseBeforeDecisionIsNotEOF(t *testing.T) {
	r := newNativeRunner(t)
	require.NoError(t, r.Configure([]byte(`{"upstreamConnect": "immediate"}`), filtertable.Listener{}))
	c, err := r.NewConn(filtertable.ConnProps{Source: "10.0.0.1:1"})
	require.NoError(t, err)
	nc := c.(*nativeConn)
	nc.Data([]byte{1, 0, 0}, false)
	r.host.CloseDownstreamConnection(nc.id) // proxytest: PeerTypeLocal
	r.host.CompleteConnection(nc.id)
	v, ok := r.Metric(`dicomgate_denied_total{reason="eof"}`)
	require.True(t, ok, `dicomgate_denied_total{reason="eof"} is not defined`)
	require.Zero(t, v, "eof")
	lines := filtertable.AuditLines(r.Logs(filtertable.LevelInfo))
	require.Len(t, lines, 1, "audit lines %q; want one with decision none", lines)
	require.Contains(t, lines[0], `"decision":"none"`, "audit lines %q; want one with decision none", lines)
}
