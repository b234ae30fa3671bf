//go:build !wasip1

package main

import (
	"os"
	"testing"

	"github.com/dicomgate/dicomgate/internal/filtertable"
)

// runWasmAssociations runs n allowed echo associations (new connection, RQ,
// rest of the stream with FIN, client close) through the wasm runner.
func runWasmAssociations(tb testing.TB, r *wasmRunner, n int, rq, rest []byte) {
	props := filtertable.ConnProps{Source: "10.1.2.3:40000"}
	for i := 0; i < n; i++ {
		c, err := r.NewConn(props)
		if err != nil {
			tb.Fatal(err)
		}
		t := c.(*wasmTransport)
		t.Data(rq, false)
		t.Data(rest, true)
		if !t.connected || t.closed {
			tb.Fatalf("association %d not allowed: %+v", i, t.Observe())
		}
		t.conn.DownstreamClosed(true)
	}
}

const echoPolicy = `{"defaultAction": "deny", "rules": [{"name": "echo", "match": {"callingAETitles": ["ECHOSCU"]}, "action": "allow"}]}`

// BenchmarkFilterAssociationWasm is BenchmarkFilterAssociation on the
// compiled module in wasm/host; it also reports the guest→host calls per
// association.
func BenchmarkFilterAssociationWasm(b *testing.B) {
	echo := captures(b)["echo_default"]
	rq := filtertable.FirstPDU(echo)
	r := newWasmRunner(b)
	if err := r.Configure([]byte(echoPolicy), filtertable.Listener{}); err != nil {
		b.Fatal(err)
	}
	calls0 := r.plugin.HostCalls()
	b.ReportAllocs()
	b.ResetTimer()
	runWasmAssociations(b, r, b.N, rq, echo[len(rq):])
	b.StopTimer()
	b.ReportMetric(float64(r.plugin.HostCalls()-calls0)/float64(b.N), "hostcalls/op")
}

// TestWasmGuestMemoryFlat checks that the guest's linear memory stops
// growing (Go's GC runs because the filter yields every 64 callbacks). The
// default run is short; DICOMGATE_SOAK=1 runs ≥ 1M guest callbacks.
func TestWasmGuestMemoryFlat(t *testing.T) {
	echo := captures(t)["echo_default"]
	rq := filtertable.FirstPDU(echo)
	r := newWasmRunner(t)
	if err := r.Configure([]byte(echoPolicy), filtertable.Listener{}); err != nil {
		t.Fatal(err)
	}
	n := 20000
	if os.Getenv("DICOMGATE_SOAK") != "" {
		n = 150000 // ~7 guest callbacks per association
	}
	runWasmAssociations(t, r, n/10, rq, echo[len(rq):])
	warm := r.plugin.GuestMemoryBytes()
	runWasmAssociations(t, r, n-n/10, rq, echo[len(rq):])
	end := r.plugin.GuestMemoryBytes()
	t.Logf("guest memory after %d associations: %d bytes; after %d: %d bytes", n/10, warm, n, end)
	if end > warm+8<<20 {
		t.Fatalf("guest memory grew from %d to %d bytes over %d associations", warm, end, n-n/10)
	}
	if v, _ := r.Metric("dicomgate_associations_total"); v != uint64(n) {
		t.Fatalf("associations_total = %d; want %d", v, n)
	}
}

// After the decision the filter makes no host call at all (§0.1: decided ⇒
// Continue at once), and the decision itself needs a bounded number: one
// buffer read, three property reads, four set_property, one log line and
// two counter increments for an allowed echo.
func TestWasmHostCalls(t *testing.T) {
	echo := captures(t)["echo_default"]
	rq := filtertable.FirstPDU(echo)
	r := newWasmRunner(t)
	if err := r.Configure([]byte(echoPolicy), filtertable.Listener{}); err != nil {
		t.Fatal(err)
	}
	c, err := r.NewConn(filtertable.ConnProps{Source: "10.1.2.3:40000"})
	if err != nil {
		t.Fatal(err)
	}
	tr := c.(*wasmTransport)
	before := r.plugin.HostCalls()
	tr.Data(rq[:3], false)
	tr.Data(rq[3:10], false)
	if got := r.plugin.HostCalls() - before; got > 2 {
		t.Errorf("%d host calls while the header is incomplete; want at most one buffer read per callback", got)
	}
	before = r.plugin.HostCalls()
	tr.Data(rq[10:100], false)
	if got := r.plugin.HostCalls() - before; got != 0 {
		t.Errorf("%d host calls while a known PDU is incomplete; want 0", got)
	}
	before = r.plugin.HostCalls()
	tr.Data(rq[100:], false)
	decision := r.plugin.HostCalls() - before
	if decision > 11 {
		t.Errorf("deciding took %d host calls; want at most 11", decision)
	}
	before = r.plugin.HostCalls()
	rest := echo[len(rq):]
	for i := 0; i < 100; i++ {
		tr.Data(rest, false)
	}
	if got := r.plugin.HostCalls() - before; got != 0 {
		t.Errorf("%d host calls for 100 reads after the decision; want 0", got)
	}
	if o := tr.Observe(); o.Closed || len(o.Forwarded) != len(rq)+100*len(rest) {
		t.Fatalf("after the decision: closed=%v forwarded=%d", o.Closed, len(o.Forwarded))
	}
}
