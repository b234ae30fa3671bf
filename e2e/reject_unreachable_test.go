package e2e

import (
	"errors"
	"io"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRejectorUnreachableCloses — issue 13: a deny with "respond": "reject" whose rejector is down (rejectCluster
// points at a closed port). Through `dicomgate serve` and real Envoy: the client's connection is closed with no byte
// (no A-ASSOCIATE-RJ can be sent, and no hang: the read ends before its deadline), the default cluster sees nothing,
// the audit line says the deny went to the rejector, and the operator sees the failed connect for cluster
// "rejector" (serve: upstream_connect_failures_total{cluster="rejector"}, close reason upstream_connect_failed and a
// log line naming the cluster; Envoy: cluster.rejector.upstream_cx_connect_fail).
func TestRejectorUnreachableCloses(t *testing.T) {
	requireArtifacts(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := ln.Addr().String()
	require.NoError(t, ln.Close())
	opts := gatewayOpts{
		policy: policyDoc{DefaultAction: "deny", Mode: "enforce", InspectTimeoutMs: inspectTimeoutMs, UpstreamConnect: "after-decision",
			DefaultRespond: "reject", RejectCluster: clusterRejector, RejectKey: e2eRejectKey, Rules: []policyRule{}},
		clusters:       map[string]string{clusterSink: theSink(t).addr(), clusterRejector: down},
		defaultCluster: clusterSink,
	}
	for _, lane := range []struct {
		name        string
		start       func(string, gatewayOpts) (*gateway, error)
		connectFail metricRef
	}{
		{"dicomgate serve", startGateway, metricRef{"dicomgate_gateway_upstream_connect_failures_total", []string{"cluster", clusterRejector}}},
		{"envoy", startEnvoy, metricRef{"cluster_upstream_cx_connect_fail", []string{"envoy_cluster_name", clusterRejector}}},
	} {
		t.Run(lane.name, func(t *testing.T) {
			if lane.name == "envoy" {
				if envoySkipped() {
					t.Skip("real-Envoy lane NOT run: DICOMGATE_NO_ENVOY=1")
				}
				_, err := envoyBin()
				require.NoError(t, err)
			}
			g, err := lane.start("rejector-down-"+map[bool]string{true: "envoy", false: "serve"}[lane.name == "envoy"], opts)
			require.NoError(t, err)
			t.Cleanup(func() { _ = g.proc.stop() })
			dumpOnFailure(t, g.proc)
			p := newProbe(t, g)

			c, err := net.Dial("tcp", g.addr())
			require.NoError(t, err)
			defer c.Close()
			require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)))
			_, err = c.Write(rejectRQ(t)) // calling ECHOSCU: no rule, the default deny with respond reject
			require.NoError(t, err)
			out, err := io.ReadAll(c) // no half-close: only the gateway can end this read
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "the connection hung instead of being closed: %v", err)
			require.Empty(t, out, "nothing can answer without the rejector")

			rec := p.wantAudit(t, "ECHOSCU")
			wantAuditFields(t, rec, "deny", "default", clusterRejector, "policy")
			require.Equal(t, "reject", rec.field("respond"))
			p.wantDelta(t, 1, lane.connectFail.name, lane.connectFail.labels...)
			// Nothing reached the default cluster (the only other one): no connection, no attempt.
			require.Zero(t, theSink(t).count.Load()-p.sinkBefore, "the default cluster's sink accepted a connection")
			m := g.metrics(t)
			require.Zero(t, p.upstreamAttempts(m, clusterSink)-p.upstreamAttempts(p.before, clusterSink), "upstream attempts to the sink:\n%s", m.diff(p.before))
			if lane.name == "dicomgate serve" {
				p.wantDelta(t, 1, "dicomgate_gateway_downstream_closes_total", "reason", "upstream_connect_failed")
				line := regexp.MustCompile(`gateway: conn \d+: closing client: upstream_connect_failed: cluster rejector endpoint ` + regexp.QuoteMeta(down) + `: `)
				require.True(t, eventually(func() bool { return line.MatchString(g.proc.outputSince(p.mark)) }),
					"no log line naming the rejector cluster:\n%s", tail(g.proc.outputSince(p.mark), 30))
			}
		})
	}
}
