package conformance

import (
	"regexp"
	"testing"
	"time"
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
