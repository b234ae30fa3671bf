//go:build !wasip1

package wasmtest

// The wasm association benchmark, the passthrough benchmark and the guest
// memory soak of the compiled filter live in wasm/host (filter_bench_test.go),
// next to the host they measure.

import (
	"fmt"
	"testing"

	"github.com/dicomgate/dicomgate/internal/filtertable"
	"github.com/stretchr/testify/require"
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
	require.NoError(t, r.Configure([]byte(echoPolicy), filtertable.Listener{}))
	c, err := r.NewConn(filtertable.ConnProps{Source: "10.1.2.3:40000"})
	require.NoError(t, err)
	tr := c.(*wasmTransport)
	// Each stage's excess is collected, so that one run shows every stage
	// that made too many calls.
	var excess []string
	before := r.plugin.HostCalls()
	tr.Data(rq[:3], false)
	tr.Data(rq[3:10], false)
	// The first byte also counts the association (one counter increment).
	if got := r.plugin.HostCalls() - before; got > 3 {
		excess = append(excess, fmt.Sprintf("%d host calls while the header is incomplete; want at most one buffer read per callback and the association count", got))
	}
	before = r.plugin.HostCalls()
	tr.Data(rq[10:100], false)
	if got := r.plugin.HostCalls() - before; got != 0 {
		excess = append(excess, fmt.Sprintf("%d host calls while a known PDU is incomplete; want 0", got))
	}
	before = r.plugin.HostCalls()
	tr.Data(rq[100:], false)
	decision := r.plugin.HostCalls() - before
	if decision > 11 {
		excess = append(excess, fmt.Sprintf("deciding took %d host calls; want at most 11", decision))
	}
	before = r.plugin.HostCalls()
	rest := echo[len(rq):]
	for i := 0; i < 100; i++ {
		tr.Data(rest, false)
	}
	if got := r.plugin.HostCalls() - before; got != 0 {
		excess = append(excess, fmt.Sprintf("%d host calls for 100 reads after the decision; want 0", got))
	}
	require.Empty(t, excess, "host calls")
	o := tr.Observe()
	require.False(t, o.Closed, "after the decision: closed=%v forwarded=%d", o.Closed, len(o.Forwarded))
	require.Equal(t, len(rq)+100*len(rest), len(o.Forwarded), "after the decision: bytes forwarded")
}

// The decision reads only the properties it needs: source.address,
// connection.id and the peer certificate digest always (a non-empty digest
// is connection.mtls), the URI SAN and subject only with a client
// certificate (the audit line logs them), the DNS SAN only when a rule
// matches on it. Exact counts: one more host call on this path is a
// regression of the per-association cost inside Envoy (bench/RESULTS.md §7).
func TestWasmDecisionHostCalls(t *testing.T) {
	rq := filtertable.FirstPDU(captures(t)["echo_default"])
	const uriPolicy = `{"rules": [{"name": "ct", "match": {"peerURISANs": ["spiffe://h/ct1"]}, "action": "allow"}]}`
	const dnsPolicy = `{"rules": [{"name": "ct", "match": {"peerDNSSANs": ["ct1.h"]}, "action": "allow"}]}`
	mtls := filtertable.ConnProps{Source: "10.1.2.3:40000", MTLS: true, URISAN: "spiffe://h/ct1", DNSSAN: "ct1.h", Subject: "CN=CT1", SHA256: "ab12"}
	plain := filtertable.ConnProps{Source: "10.1.2.3:40000"}
	// Common to every decision (env.proxy_* calls, which Plugin.HostCalls
	// counts; the WASI clock read is not counted): the buffer read,
	// source.address, connection.id, the digest, four set_property
	// (dicom.*), the decision counter and the audit line.
	const common = 10
	for _, tc := range []struct {
		name   string
		policy string
		props  filtertable.ConnProps
		want   int
	}{
		{"no client certificate", echoPolicy, plain, common},
		{"client certificate, URI SAN rule", uriPolicy, mtls, common + 2},
		{"client certificate, DNS SAN rule", dnsPolicy, mtls, common + 3},
		{"client certificate, AE title rule", echoPolicy, mtls, common + 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newWasmRunner(t)
			require.NoError(t, r.Configure([]byte(tc.policy), filtertable.Listener{}))
			c, err := r.NewConn(tc.props)
			require.NoError(t, err)
			tr := c.(*wasmTransport)
			tr.Data(rq[:10], false) // the first byte counts the association
			before := r.plugin.HostCalls()
			tr.Data(rq[10:], false)
			require.Equal(t, tc.want, int(r.plugin.HostCalls()-before), "host calls of the decision")
			require.False(t, tr.Observe().Closed)
		})
	}
}
