package conformance

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rq returns the A-ASSOCIATE-RQ of a bundled capture (sdk/pdu/testdata), the first PDU of the stream.
func rq(t *testing.T, capture string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "sdk", "pdu", "testdata", capture))
	require.NoError(t, err)
	require.Equal(t, byte(0x01), b[0], "%s does not start with an A-ASSOCIATE-RQ", capture)
	return b[:6+binary.BigEndian.Uint32(b[2:6])]
}

// echoRQLen is the length of echo_default.c2s.bin's A-ASSOCIATE-RQ (the probe pauses until it has it).
const echoRQLen = 205 + 6

var (
	// routeFilter pauses on_new_connection (so tcp_proxy's onNewConnection, which picks the route, waits) and
	// on_downstream_data until the whole RQ is buffered, then routes to cluster b (filter state
	// envoy.tcp_proxy.cluster) and continues.
	// Undecided connections are closed 1.5 s after on_new_connection (ticks every 100 ms), the inspect
	// deadline pattern of the real filter.
	routeFilter = `{"new_conn":"pause","pause_until":` + strconv.Itoa(echoRQLen) + `,"cluster_on_data":"b","tick_ms":100,"deadline_ms":1500}`
	// routeShape: with tcp_proxy early data, so the filter can read before the upstream connects.
	routeShape = newShape(shape{name: "route", earlyData: 64 << 10, filter: routeFilter})
	// routeNoEarlyShape: the same filter without early data (Envoy's and Istio's default).
	routeNoEarlyShape = newShape(shape{name: "route-no-early-data", filter: routeFilter})
	// continueShape: a filter that continues at once (tcp_proxy connects the default cluster a at accept).
	continueShape = newShape(shape{name: "continue", earlyData: 64 << 10, filter: `{"cluster_on_data":"b"}`})
)

// Routing with early data: the RQ in one write; the filter sees it whole, routes to b, tcp_proxy connects b and
// flushes the RQ; the backend's answer reaches the client; the client's half-close travels to the backend.
func TestRoutingWithEarlyData(t *testing.T) {
	req := rq(t, "echo_default.c2s.bin")
	require.Len(t, req, echoRQLen)
	envoy, hst := compare(t, routeShape, reply{after: len(req), data: []byte("AC")}, func(r *run) {
		c := r.dial(dialOpts{})
		c.write(req)
		time.Sleep(200 * time.Millisecond)
		c.closeWrite()
	})
	requireSame(t, envoy, hst)
	require.Equal(t, []string{`"AC" eof`}, envoy.Clients)
}

// Without early data tcp_proxy disables downstream reads when it is constructed, before the filter's
// on_new_connection: the paused filter never gets the RQ and the connection stalls until the filter's own
// deadline closes it (what the README says of a missing max_early_data_bytes).
func TestRoutingWithoutEarlyData(t *testing.T) {
	req := rq(t, "echo_default.c2s.bin")
	envoy, hst := compare(t, routeNoEarlyShape, reply{after: len(req), data: []byte("AC")}, func(r *run) {
		c := r.dial(dialOpts{})
		c.write(req)
	})
	requireSame(t, envoy, hst)
}

// A filter that continues from on_new_connection lets tcp_proxy pick its route at accept: setting the cluster
// later (in on_downstream_data) succeeds but no longer matters; the upstream is the default cluster a.
func TestRouteDecidedAtAcceptWhenNewConnectionContinues(t *testing.T) {
	req := rq(t, "echo_default.c2s.bin")
	envoy, hst := compare(t, continueShape, reply{after: len(req), data: []byte("AC")}, func(r *run) {
		c := r.dial(dialOpts{})
		c.write(req)
		time.Sleep(200 * time.Millisecond)
		c.closeWrite()
	})
	requireSame(t, envoy, hst)
	require.Contains(t, envoy.Backends, "a")
}
