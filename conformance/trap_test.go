package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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

// FAIL_RELOAD: the backoff counts from the VM's last (re)load, not from the trap. With a VM loaded long ago,
// the first connection after a trap reloads it at once and passes through the filter; after a trap of that
// fresh VM, a connection within the backoff (1 s base) is closed at accept, and one after it reloads again.
func TestTrapFailReload(t *testing.T) {
	envoy, hst := compare(t, trapReloadShape, reply{}, func(r *run) {
		r.vmFails = true
		time.Sleep(2 * time.Second) // both VMs loaded more than the backoff ago
		var cs []*client
		step := func(data string, settle time.Duration) {
			c := r.dial(dialOpts{})
			time.Sleep(150 * time.Millisecond)
			c.write([]byte(data))
			time.Sleep(settle)
			cs = append(cs, c)
		}
		step("PANIC", 150*time.Millisecond) // traps the VM loaded at start-up
		step("first", 150*time.Millisecond) // reloads at once: passes
		step("PANIC", 150*time.Millisecond) // traps the fresh VM
		step("early", 2*time.Second)        // within the backoff: closed at accept
		step("later", 300*time.Millisecond) // after it: reloads, passes
		for _, c := range cs {
			c.closeWrite()
		}
	})
	requireSame(t, envoy, hst)
	require.Equal(t, []string{`"" +eof`, `"first" +eof`, `"" +eof`, `"later" +eof`}, envoy.Backends["a"])
}
