//go:build !wasip1

package main

// The wasm association benchmark, the passthrough benchmark and the guest
// memory soak of the compiled filter live in wasm/host (filter_bench_test.go),
// next to the host they measure.

import (
	"testing"

	"github.com/dicomgate/dicomgate/internal/filtertable"
)

const echoPolicy = `{"defaultAction": "deny", "rules": [{"name": "echo", "match": {"callingAETitles": ["ECHOSCU"]}, "action": "allow"}]}`

// After the decision the filter makes no host call at all (§0.1: decided ⇒
// Continue at once), and the decision itself needs a bounded number: one
// buffer read, three property reads, four set_property, one log line and
// one counter increment for an allowed echo (the association itself is
// counted on its first byte).
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
	// The first byte also counts the association (one counter increment).
	if got := r.plugin.HostCalls() - before; got > 3 {
		t.Errorf("%d host calls while the header is incomplete; want at most one buffer read per callback and the association count", got)
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
