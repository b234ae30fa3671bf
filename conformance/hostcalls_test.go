package conformance

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The probe's host-call checks (wasm/testdata/testfilter probeBuffer, probeForeign, probeMetrics, probeMisc),
// run in on_downstream_data of one connection: status codes and values of buffer reads and writes (inside and
// outside callbacks, out of range, prepend/append/replace), set_envoy_filter_state with known/unknown keys and
// bad arguments, metric ids and updates, log levels, continue/close arguments, WASI stdout/stderr, environment,
// shared data and its CAS.
var hostcallShapes = []*shape{
	newShape(shape{name: "probe-buffer", earlyData: 64 << 10, filter: `{"probe":"buffer"}`}),
	newShape(shape{name: "probe-foreign", earlyData: 64 << 10, filter: `{"probe":"foreign","new_conn":"pause"}`}),
	newShape(shape{name: "probe-metrics", earlyData: 64 << 10, filter: `{"probe":"metrics"}`}),
	newShape(shape{name: "probe-misc", earlyData: 64 << 10, filter: `{"probe":"misc"}`}),
}

// probeNow is the probe's wall-clock reading; it differs between the runs.
var probeNow = regexp.MustCompile(`^PROBE now unix=\d+$`)

func TestHostCallsInsideCallbacks(t *testing.T) {
	for _, sh := range hostcallShapes {
		t.Run(sh.name, func(t *testing.T) {
			envoy, hst := compare(t, sh, reply{}, func(r *run) {
				c := r.dial(dialOpts{})
				c.write([]byte("hello"))
				time.Sleep(200 * time.Millisecond)
				c.closeWrite()
			})
			for _, o := range []*observation{&envoy, &hst} {
				for i, e := range o.Events {
					if probeNow.MatchString(e) {
						o.Events[i] = "PROBE now unix=N"
					}
				}
			}
			requireSame(t, envoy, hst)
		})
	}
}

var (
	// upstreamShape prepends to what the backend sends (on_upstream_data) and sets a property.
	upstreamShape = newShape(shape{name: "probe-upstream", earlyData: 64 << 10,
		filter: `{"upstream_prepend":"<<","set_prop_on_data":"dicom.decision"}`})
	// pauseUpstreamShape pauses every on_upstream_data: nothing the backend sends reaches the client.
	pauseUpstreamShape = newShape(shape{name: "probe-pause-upstream", earlyData: 64 << 10, filter: `{"pause_upstream":true}`})
)

// on_upstream_data: a prepend reaches the client before the backend's bytes, and again on the empty
// end-of-stream callback ("<<AC<<"); set_property reads back; a paused upstream direction holds the backend's
// bytes (re-delivered whole with the end of stream, then dropped: the client gets nothing).
func TestUpstreamDataAndSetProperty(t *testing.T) {
	for _, sh := range []*shape{upstreamShape, pauseUpstreamShape} {
		t.Run(sh.name, func(t *testing.T) {
			envoy, hst := compare(t, sh, reply{after: 5, data: []byte("AC")}, func(r *run) {
				c := r.dial(dialOpts{})
				c.write([]byte("hello"))
				time.Sleep(300 * time.Millisecond)
				c.closeWrite()
			})
			requireSame(t, envoy, hst)
		})
	}
}

// The VM start-up lines of a VM of its own (plugin context, proxy_on_vm_start with no VM configuration,
// proxy_on_configure with the configuration size), each distinct line once: Envoy starts several VMs for a
// listener (main thread, worker, configuration canary), the host one per worker.
func TestVMStartLines(t *testing.T) {
	s := getSuite(t)
	sh := trapOpenShape
	distinct := func(l *lines) []string {
		seen := map[string]bool{}
		var out []string
		for _, x := range l.since(0) {
			if vmLifecycle.MatchString(x) && !seen[x] {
				seen[x] = true
				out = append(out, x)
			}
		}
		return out
	}
	envoy := distinct(s.envoy.logs(sh))
	require.NotEmpty(t, envoy, "no VM start lines from Envoy")
	require.Equal(t, envoy, distinct(s.host.logs(sh)))
}

var (
	// tickContinueShape pauses the connection and its data; every tick continues each open connection
	// (proxy_set_effective_context + continue_stream(DOWNSTREAM)).
	tickContinueShape = newShape(shape{name: "tick-continue", earlyData: 64 << 10,
		filter: `{"new_conn":"pause","on_data":"pause","tick_ms":100,"tick_action":"continue"}`})
	// tickForeignShape sets envoy.tcp_proxy.cluster to tick-cluster from every tick for each open connection;
	// the connection stays paused until the client has sent 10 bytes, so tcp_proxy picks its route after
	// the tick did.
	tickForeignShape = newShape(shape{name: "tick-foreign", earlyData: 64 << 10,
		filter: `{"new_conn":"pause","pause_until":10,"tick_ms":100,"tick_action":"foreign"}`})
)

var tickProbe = regexp.MustCompile(`^PROBE tick_\w+ `)

// tickLines removes the per-tick probe lines (their number depends on timing) and returns them, each distinct
// line once.
func tickLines(o *observation) []string {
	seen := map[string]bool{}
	var kept, distinct []string
	for _, e := range o.Events {
		if !tickProbe.MatchString(e) {
			kept = append(kept, e)
			continue
		}
		if !seen[e] {
			seen[e] = true
			distinct = append(distinct, e)
		}
	}
	o.Events = kept
	return distinct
}

// Host calls from on_tick on behalf of a connection (proxy_set_effective_context first): continue_stream
// resumes a paused connection (tcp_proxy then connects and flushes what the filter held);
// set_envoy_filter_state acts on the effective connection — the route tcp_proxy picks later is the tick's.
func TestCallsFromTick(t *testing.T) {
	for _, sh := range []*shape{tickContinueShape, tickForeignShape} {
		t.Run(sh.name, func(t *testing.T) {
			envoy, hst := compare(t, sh, reply{after: 5, data: []byte("AC")}, func(r *run) {
				c := r.dial(dialOpts{})
				c.write([]byte("hello"))
				time.Sleep(400 * time.Millisecond)
				c.write([]byte("world"))
				time.Sleep(200 * time.Millisecond)
				c.closeWrite()
			})
			et, ht := tickLines(&envoy), tickLines(&hst)
			require.NotEmpty(t, et, "no tick probe line from Envoy")
			require.Equal(t, et, ht, "per-tick probe lines")
			requireSame(t, envoy, hst)
		})
	}
}

var (
	closeDownstreamShape = newShape(shape{name: "close-downstream", earlyData: 64 << 10, filter: `{"new_conn":"pause","close_on_data":"downstream"}`})
	closeUpstreamShape   = newShape(shape{name: "close-upstream", earlyData: 64 << 10, filter: `{"new_conn":"pause","close_on_data":"upstream"}`})
	// closeAfterConnectShape continues at accept (tcp_proxy connects a) and closes on the first data.
	closeAfterConnectShape = newShape(shape{name: "close-after-connect", earlyData: 64 << 10, filter: `{"close_on_data":"upstream"}`})
)

// close_stream(DOWNSTREAM) and close_stream(UPSTREAM) from on_downstream_data: both close the client's
// connection (peer 1, local), before and after tcp_proxy connected its upstream; no byte reaches a backend.
func TestCloseStream(t *testing.T) {
	for _, sh := range []*shape{closeDownstreamShape, closeUpstreamShape, closeAfterConnectShape} {
		t.Run(sh.name, func(t *testing.T) {
			envoy, hst := compare(t, sh, reply{}, func(r *run) {
				c := r.dial(dialOpts{})
				time.Sleep(150 * time.Millisecond)
				c.write([]byte("hello"))
			})
			requireSame(t, envoy, hst)
		})
	}
}
