package conformance

import (
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/wasm/host"
)

var (
	// The probe continues every connection to the default cluster a and panics (the Go runtime traps the VM)
	// when a buffer contains "PANIC". Each shape has its own VM: after the trap it stays failed.
	trapFilter      = `{"panic_on_match":"PANIC"}`
	trapClosedShape = newShape(shape{name: "trap-fail-closed", ownVM: true, earlyData: 64 << 10, failure: host.FailClosed, filter: trapFilter})
	trapOpenShape   = newShape(shape{name: "trap-fail-open", ownVM: true, earlyData: 64 << 10, failure: host.FailOpen, filter: trapFilter})
)

// trapScript: c1 passes "hello" and stays open; c2 makes the VM trap; c1 then sends more; c3 is a new
// connection on the failed VM. Every client half-closes at the end. The pauses order the events that race
// on both sides (an upstream connect against the trap, a close at accept against the client's write).
func trapScript(r *run) {
	r.vmFails = true
	c1 := r.dial(dialOpts{})
	c1.write([]byte("hello"))
	time.Sleep(300 * time.Millisecond)
	c2 := r.dial(dialOpts{})
	time.Sleep(300 * time.Millisecond) // tcp_proxy's upstream connection is up before the trap
	c2.write([]byte("PANIC"))
	time.Sleep(500 * time.Millisecond)
	c1.write([]byte(" world"))
	time.Sleep(300 * time.Millisecond)
	c3 := r.dial(dialOpts{})
	time.Sleep(300 * time.Millisecond) // FAIL_CLOSED closes at accept: before the client writes
	c3.write([]byte("after"))
	time.Sleep(500 * time.Millisecond)
	for _, c := range []*client{c1, c2, c3} {
		c.closeWrite()
	}
}

// The filter trapping under FAIL_CLOSED and FAIL_OPEN: the trapping connection, an in-flight connection of
// the same VM, and a new connection after the trap. Run once per test binary (the VM stays failed).
func TestTrapFailurePolicies(t *testing.T) {
	for _, sh := range []*shape{trapClosedShape, trapOpenShape} {
		t.Run(sh.failure.String(), func(t *testing.T) {
			envoy, hst := compare(t, sh, reply{}, trapScript)
			requireSame(t, envoy, hst)
		})
	}
}

// trapReloadShape: FAIL_RELOAD with Envoy's default reload backoff (1 s base interval).
var trapReloadShape = newShape(shape{name: "trap-fail-reload", ownVM: true, earlyData: 64 << 10, failure: host.FailReload, filter: trapFilter})

// FAIL_RELOAD: the trapping connection is closed; a connection right after the trap (within the backoff) is
// closed at accept; one after the backoff gets a fresh VM and passes through the filter again.
func TestTrapFailReload(t *testing.T) {
	envoy, hst := compare(t, trapReloadShape, reply{}, func(r *run) {
		r.vmFails = true
		c1 := r.dial(dialOpts{})
		time.Sleep(300 * time.Millisecond)
		c1.write([]byte("PANIC"))
		time.Sleep(300 * time.Millisecond)
		c2 := r.dial(dialOpts{})
		time.Sleep(300 * time.Millisecond)
		c2.write([]byte("early"))
		time.Sleep(2 * time.Second) // past the jittered backoff (at most 1.5 s)
		c3 := r.dial(dialOpts{})
		c3.write([]byte("later"))
		time.Sleep(300 * time.Millisecond)
		for _, c := range []*client{c1, c2, c3} {
			c.closeWrite()
		}
	})
	requireSame(t, envoy, hst)
}
