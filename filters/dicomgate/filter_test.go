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
	if err != nil {
		t.Fatal(err)
	}
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
		if err := r.Configure([]byte(c.cfg), filtertable.Listener{}); err != nil {
			t.Fatal(err)
		}
		if got := r.host.GetTickPeriod(); got != c.want {
			t.Errorf("%s: tick period %d ms; want %d", c.cfg, got, c.want)
		}
	}
}

// A panic inside a callback must not trap the VM (which would fail every
// connection of the worker): it is recovered, counted as internal and the
// connection is closed (fail closed).
func TestPanicInCallbackFailsClosed(t *testing.T) {
	caps := captures(t)
	rq := filtertable.FirstPDU(caps["store_default"])
	r := newNativeRunner(t)
	if err := r.Configure([]byte(`{"rules": [{"name": "rw", "action": "allow", "rewriteCalledAETitle": "PACS"}]}`), filtertable.Listener{}); err != nil {
		t.Fatal(err)
	}
	abi.Emulated.ReplaceDownstreamPrefix = func(uint32, int, []byte) error { panic("boom") }
	c, err := r.NewConn(filtertable.ConnProps{Source: "10.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	c.Data(rq, false)
	o := c.Observe()
	if !o.Closed || o.UpstreamConnect || len(o.Forwarded) != 0 {
		t.Fatalf("after a panic: %+v; want closed, nothing forwarded", o)
	}
	if v, _ := r.Metric(`dicomgate_denied_total{reason="internal"}`); v != 1 {
		t.Errorf("denied internal = %d; want 1", v)
	}
	if !containsLine(r.Logs(filtertable.LevelError), "boom") {
		t.Errorf("no error log names the panic: %q", r.Logs(filtertable.LevelError))
	}
	// Later callbacks on the closed connection stay paused.
	c.Data([]byte{1, 2, 3}, false)
	if o := c.Observe(); len(o.Forwarded) != 0 {
		t.Fatalf("bytes forwarded after close: %d", len(o.Forwarded))
	}
}

// A host error while rewriting fails closed too.
func TestRewriteHostErrorFailsClosed(t *testing.T) {
	rq := filtertable.FirstPDU(captures(t)["store_default"])
	r := newNativeRunner(t)
	if err := r.Configure([]byte(`{"rules": [{"name": "rw", "action": "allow", "rewriteCalledAETitle": "PACS"}]}`), filtertable.Listener{}); err != nil {
		t.Fatal(err)
	}
	abi.Emulated.ReplaceDownstreamPrefix = func(uint32, int, []byte) error { return abi.StatusError("proxy_set_buffer_bytes", 2) }
	c, _ := r.NewConn(filtertable.ConnProps{Source: "10.0.0.1:1"})
	c.Data(rq, false)
	if o := c.Observe(); !o.Closed || len(o.Forwarded) != 0 {
		t.Fatalf("%+v; want closed", o)
	}
	if !containsLine(r.Logs(filtertable.LevelError), "BAD_ARGUMENT") {
		t.Errorf("error log does not name the status: %q", r.Logs(filtertable.LevelError))
	}
}

// The audit line carries every documented field.
func TestAuditLineFields(t *testing.T) {
	rq := filtertable.FirstPDU(captures(t)["echo_default"])
	r := newNativeRunner(t)
	if err := r.Configure([]byte(`{"defaultAction": "allow"}`), filtertable.Listener{}); err != nil {
		t.Fatal(err)
	}
	c, _ := r.NewConn(filtertable.ConnProps{Source: "[2001:db8::1]:4242", MTLS: true, URISAN: "spiffe://x/ns/a/sa/b", Subject: "CN=b", SHA256: "00ff"})
	r.Advance(1500 * time.Microsecond) // latency is measured from the first byte, not from accept
	c.Data(rq[:10], false)
	r.clock = r.clock.Add(250 * time.Microsecond)
	c.Data(rq[10:], false)
	lines := filtertable.AuditLines(r.Logs(filtertable.LevelInfo))
	if len(lines) != 1 {
		t.Fatalf("audit lines %q", lines)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "conn", "source", "calling_ae", "called_ae", "peer_uri_san", "peer_subject", "peer_sha256",
		"presentation_contexts", "sop_classes", "decision", "rule", "cluster", "reason", "latency_us", "dry_run"} {
		if _, ok := m[k]; !ok {
			t.Errorf("audit field %q missing: %s", k, lines[0])
		}
	}
	if m["latency_us"] != 250.0 {
		t.Errorf("latency_us = %v; want 250", m["latency_us"])
	}
	if m["source"] != "[2001:db8::1]:4242" || m["conn"] != 1.0 || m["peer_sha256"] != "00ff" {
		t.Errorf("source/conn/peer_sha256 wrong: %s", lines[0])
	}
	if ts, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil || !ts.Equal(r.clock) {
		t.Errorf("time %v (%v); want %v", m["time"], err, r.clock)
	}
}

// The configuration's diagnostics are logged one per line at error level.
func TestBadConfigLogsEveryDiagnostic(t *testing.T) {
	r := newNativeRunner(t)
	err := r.Configure([]byte(`{"defaultAction": "maybe", "rules": [{"name": "x", "action": "route"}], "inspectTimeoutMs": -1}`), filtertable.Listener{})
	if err == nil {
		t.Fatal("configuration accepted")
	}
	errs := r.Logs(filtertable.LevelError)
	for _, sub := range []string{"defaultAction", "rules[0]", "inspectTimeoutMs", "configuration rejected"} {
		if !containsLine(errs, sub) {
			t.Errorf("no error line mentions %q: %q", sub, errs)
		}
	}
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
	if err := r.Configure([]byte(`{"defaultAction": "deny", "rules": [{"name": "echo", "match": {"callingAETitles": ["ECHOSCU"]}, "action": "allow"}]}`), filtertable.Listener{}); err != nil {
		b.Fatal(err)
	}
	props := filtertable.ConnProps{Source: "10.1.2.3:40000"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := r.NewConn(props)
		if err != nil {
			b.Fatal(err)
		}
		nc := c.(*nativeConn)
		nc.Data(rq, false)
		nc.Data(rest, true)
		if !nc.connected || nc.closed {
			b.Fatal("association not allowed")
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
	if err := r.Configure([]byte(`{"upstreamConnect": "immediate"}`), filtertable.Listener{}); err != nil {
		t.Fatal(err)
	}
	c, _ := r.NewConn(filtertable.ConnProps{Source: "10.0.0.1:1"})
	nc := c.(*nativeConn)
	nc.Data([]byte{1, 0, 0}, false)
	r.host.CloseDownstreamConnection(nc.id) // proxytest: PeerTypeLocal
	r.host.CompleteConnection(nc.id)
	if v, _ := r.Metric(`dicomgate_denied_total{reason="eof"}`); v != 0 {
		t.Errorf("eof = %d; want 0", v)
	}
	lines := filtertable.AuditLines(r.Logs(filtertable.LevelInfo))
	if len(lines) != 1 || !strings.Contains(lines[0], `"decision":"none"`) {
		t.Errorf("audit lines %q; want one with decision none", lines)
	}
}
