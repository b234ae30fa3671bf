package conformance

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// bigRQLen is the size of the "A-ASSOCIATE-RQ" of the early-data-limit case: larger than that shape's
// max_early_data_bytes (4 KiB) and than one 16 KiB TLS record / read.
const bigRQLen = 40000

var (
	// bigShape routes like routeShape but waits for bigRQLen bytes, with only 4 KiB of early data.
	bigShape = newShape(shape{name: "big-rq", earlyData: 4096, filter: `{"new_conn":"pause","pause_until":` +
		strconv.Itoa(bigRQLen) + `,"cluster_on_data":"b","log_data_max":64,"tick_ms":100,"deadline_ms":3000}`})
	// bufferLimitShape waits for more than Envoy's default per_connection_buffer_limit_bytes (1 MiB).
	bufferLimitShape = newShape(shape{name: "over-buffer-limit", earlyData: 64 << 10, filter: `{"new_conn":"pause",` +
		`"pause_until":2000000,"cluster_on_data":"b","log_data_max":64,"tick_ms":100,"deadline_ms":4000}`})
)

var dataEvent = regexp.MustCompile(`^EVT downstream_data id=(\S+) size=(\d+) end=false `)

// partialReads checks, on one side's events, that every on_downstream_data before the decision delivered the
// whole buffer so far (a multiple of step, growing; Envoy re-runs the filter chain over the whole read buffer,
// filter_manager_impl.cc FilterManagerImpl::onRead), and returns the events with those deliveries removed, so
// that both sides compare equal whatever the kernel and the TLS layer coalesced into one read.
func partialReads(t *testing.T, label string, events []string, total, step int) []string {
	t.Helper()
	var out []string
	last := 0
	for _, e := range events {
		if m := dataEvent.FindStringSubmatch(e); m != nil {
			n, _ := strconv.Atoi(m[2])
			if n < total {
				require.Greater(t, n, last, "%s: on_downstream_data sizes must grow (whole buffer re-dispatched): %s", label, e)
				require.Zero(t, n%step, "%s: a partial delivery is not a whole number of writes: %s", label, e)
				last = n
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// routeTLSShape is routeShape behind mutual TLS.
var routeTLSShape = newShape(shape{name: "route-mtls", tls: mutualTLS, earlyData: 64 << 10, filter: routeFilter})

// An RQ split into many small writes (TCP_NODELAY, 15 ms apart; over TLS one record each): the paused filter is
// re-run over the whole buffer on every read until it has the RQ, then routes; the backend gets the RQ once.
func TestSplitRQManySmallWrites(t *testing.T) {
	req := rq(t, "echo_default.c2s.bin")
	const chunk = 10
	sc := func(r *run) {
		c := r.dial(dialOpts{})
		for i := 0; i < len(req); i += chunk {
			c.write(req[i:min(i+chunk, len(req))])
			time.Sleep(15 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		c.closeWrite()
	}
	for _, sh := range []*shape{routeShape, routeTLSShape} {
		t.Run(sh.name, func(t *testing.T) {
			envoy, hst := compare(t, sh, reply{after: len(req), data: []byte("AC")}, sc)
			require.Greater(t, countPrefix(envoy.Events, "EVT downstream_data"), 3, "Envoy delivered the split RQ in too few reads to show re-dispatch")
			// The last write is shorter than chunk: the full size is not a multiple of it, and is kept in the events.
			envoy.Events = partialReads(t, "envoy", envoy.Events, len(req), chunk)
			hst.Events = partialReads(t, "host", hst.Events, len(req), chunk)
			requireSame(t, envoy, hst)
			require.Equal(t, []string{digest(req) + " +eof"}, envoy.Backends["b"])
		})
	}
}

// An RQ larger than max_early_data_bytes in one write: the paused filter keeps the bytes in the connection's
// read buffer (tcp_proxy's early-data limit only counts what reaches tcp_proxy), so the whole RQ is decided
// at once, then tcp_proxy takes all of it past its limit and flushes it on connect.
func TestRQLargerThanEarlyDataLimit(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), bigRQLen/16)
	sc := func(r *run) {
		c := r.dial(dialOpts{})
		c.write(big)
		time.Sleep(300 * time.Millisecond)
		c.closeWrite()
	}
	envoy, hst := compare(t, bigShape, reply{after: len(big), data: []byte("AC")}, sc)
	envoy.Events = partialReads(t, "envoy", envoy.Events, len(big), 1)
	hst.Events = partialReads(t, "host", hst.Events, len(big), 1)
	requireSame(t, envoy, hst)
	require.Equal(t, []string{digest(big) + " +eof"}, envoy.Backends["b"])
	require.Equal(t, []string{`"AC" eof`}, envoy.Clients)
}

// An RQ larger than the connection's read buffer limit (per_connection_buffer_limit_bytes, 1 MiB): reads stop
// at the high watermark while the filter keeps pausing, so the filter never gets the whole RQ; its deadline
// closes the connection. What the filter saw last must be at least the limit on both sides.
func TestRQLargerThanReadBufferLimit(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 2000000/16)
	sc := func(r *run) {
		c := r.dial(dialOpts{})
		go c.write(big) // blocks once the proxy stops reading
	}
	envoy, hst := compare(t, bufferLimitShape, reply{}, sc)
	for _, o := range []struct {
		label string
		obs   observation
	}{{"envoy", envoy}, {"host", hst}} {
		last := 0
		for _, e := range o.obs.Events {
			if m := dataEvent.FindStringSubmatch(e); m != nil {
				last, _ = strconv.Atoi(m[2])
			}
		}
		require.GreaterOrEqual(t, last, 1<<20, "%s: the filter's last buffer should reach the 1 MiB limit:\n%s", o.label, dump(o.obs))
		require.Less(t, last, len(big), "%s: reads must stop before the whole 2 MB arrived:\n%s", o.label, dump(o.obs))
		require.Empty(t, o.obs.Backends, "%s: nothing may reach a backend", o.label)
		require.Equal(t, "EVT deadline id=c1 close_status=0", lastMatching(o.obs.Events, "EVT deadline"), o.label)
	}
	// Sizes differ with read timing; the callbacks after the reads must not.
	envoy.Events = dropData(envoy.Events)
	hst.Events = dropData(hst.Events)
	envoy.Clients, hst.Clients = endOnly(envoy.Clients), endOnly(hst.Clients)
	requireSame(t, envoy, hst)
}

func lastMatching(events []string, prefix string) string {
	out := ""
	for _, e := range events {
		if strings.HasPrefix(e, prefix) {
			out = e
		}
	}
	return out
}

func dropData(events []string) []string {
	var out []string
	for _, e := range events {
		if !dataEvent.MatchString(e) {
			out = append(out, e)
		}
	}
	return out
}

// endOnly keeps how each client connection ended (not what it received).
func endOnly(clients []string) []string {
	var out []string
	for _, c := range clients {
		out = append(out, c[strings.LastIndex(c, " ")+1:])
	}
	return out
}
