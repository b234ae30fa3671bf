package e2e

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/sdk/rejectwire"
	"github.com/stretchr/testify/require"
)

// The reject scenario's names: the rejector cluster, its key (what `openssl rand -base64 32` prints) and the calling
// AE titles the reject policy answers.
const (
	clusterRejector = "rejector"
	e2eRejectKey    = "c2VjcmV0LWtleS1mb3ItdGhlLWUyZS1yZWplY3Rvci0x"
	rjCallingAE     = "RJ_CALLING"
	rjBusyAE        = "RJ_BUSY"
	rjNoReasonAE    = "RJ_NOREASON"
	rjCloseAE       = "RJ_CLOSE"
	rjUnknownCalled = "NO_SUCH_AE"
)

// rejectorPeer is a running `dicomgate reject`.
type rejectorPeer struct {
	proc       *proc
	port       int
	metricsURL string
}

var (
	rejectorSh  shared[*rejectorPeer]
	gwRejectSh  shared[*gateway]
	e2eRejectRQ []byte
)

// theRejector starts `dicomgate reject` (the binary under test) with the e2e key, on first use.
func theRejector(t testing.TB) *rejectorPeer {
	t.Helper()
	requireArtifacts(t)
	return rejectorSh.get(t, func() (*rejectorPeer, error) {
		dir := filepath.Join(workDir, "rejector")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		keyFile := filepath.Join(dir, "reject.key")
		if err := os.WriteFile(keyFile, []byte(e2eRejectKey+"\n"), 0o600); err != nil {
			return nil, err
		}
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		mport, err := freePort()
		if err != nil {
			return nil, err
		}
		args := []string{"reject", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--key-file", keyFile,
			"--metrics", fmt.Sprintf("127.0.0.1:%d", mport), "--drain-timeout", "2s"}
		p, err := startProc("rejector", nil, gatewayBin, args...)
		if err != nil {
			return nil, err
		}
		if _, err := p.waitOutput("dicomgate: rejector listening on", 30*time.Second); err != nil {
			_ = p.stop()
			return nil, fmt.Errorf("rejector (%s): %w", commandLine(gatewayBin, args), err)
		}
		return &rejectorPeer{proc: p, port: port, metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)}, nil
	})
}

// rejectClusters are the usual clusters plus the rejector.
func rejectClusters(t testing.TB) map[string]string {
	t.Helper()
	c := clusters(t)
	c[clusterRejector] = fmt.Sprintf("127.0.0.1:%d", theRejector(t).port)
	return c
}

// rejectGateway is the mutual-TLS `dicomgate serve` with the reject policy; only the reject scenario uses it, so the
// other scenarios keep e2ePolicy and its closes.
func rejectGateway(t testing.TB) *gateway {
	t.Helper()
	requireArtifacts(t)
	c := rejectClusters(t)
	return gwRejectSh.get(t, func() (*gateway, error) {
		return startGateway("gateway-reject", gatewayOpts{tls: true, clientCA: true, policy: e2eRejectPolicy(), clusters: c, defaultCluster: clusterSink})
	})
}

// e2eRejectPolicy answers denies with an A-ASSOCIATE-RJ through the rejector. Rules, first match wins:
//
//	modality-a   MODALITY1 -> PACS_A                       -> orthanc as ORTHANC (PACS_A is a known called AE)
//	rj-calling   RJ_CALLING  deny, reject calling-ae-not-recognized (1/1/3)
//	rj-busy      RJ_BUSY     deny, reject temporary-congestion (2/3/1, transient)
//	rj-noreason  RJ_NOREASON deny, reject no-reason-given (1/1/1)
//	rj-close     RJ_CLOSE    deny, respond close
//	(default)    deny, reject with the computed reason: called-ae-not-recognized (1/1/7) for a called AE no rule accepts
func e2eRejectPolicy() policyDoc {
	deny := func(name, calling, reason, respond string) policyRule {
		return policyRule{Name: name, Match: policyMatch{CallingAETitles: []string{calling}}, Action: "deny", RejectReason: reason, Respond: respond}
	}
	return policyDoc{
		DefaultAction: "deny", Mode: "enforce", InspectTimeoutMs: inspectTimeoutMs, UpstreamConnect: "after-decision",
		DefaultRespond: "reject", RejectCluster: clusterRejector, RejectKey: e2eRejectKey,
		Rules: []policyRule{
			{Name: "modality-a", Match: policyMatch{CallingAETitles: []string{allowedModalityAE}, CalledAETitles: []string{routeToOrthancAE}},
				Action: "route", Cluster: clusterOrthanc, RewriteCalledAETitle: orthancAE},
			deny("rj-calling", rjCallingAE, "calling-ae-not-recognized", "reject"),
			deny("rj-busy", rjBusyAE, "temporary-congestion", "reject"),
			deny("rj-noreason", rjNoReasonAE, "no-reason-given", "reject"),
			deny("rj-close", rjCloseAE, "", "close"),
		},
	}
}

// TestRejectAnswersWithRJ runs scenarioRejectAnswersWithRJ through `dicomgate serve`.
func TestRejectAnswersWithRJ(t *testing.T) { scenarioRejectAnswersWithRJ(t, localLane) }

// scenarioRejectAnswersWithRJ — issue 13: a deny with "respond": "reject" reaches echoscu as a real A-ASSOCIATE-RJ
// with the policy's result, source and reason (dcmtk prints "Association Rejected" and decodes them); the rejector
// is the only upstream contacted (exactly once), Orthanc and the sink see nothing; a "close" deny still closes; a
// forged preamble sent straight to the rejector gets no answer and is counted.
func scenarioRejectAnswersWithRJ(t *testing.T, l *lane) {
	g, o, rj := l.reject(t), theOrthanc(t), theRejector(t)
	dumpOnFailure(t, g.proc, o.proc, rj.proc)
	om := o.proc.mark()

	for _, tc := range []struct {
		calling, called, rule, reason string
		rsr                           [3]string // result, source, reason labels of dicomgate_reject_sent_total
		dcmtk                         []string  // lines echoscu prints
	}{
		{rjCallingAE, routeToOrthancAE, "rj-calling", "calling-ae-not-recognized", [3]string{"1", "1", "3"},
			[]string{"Association Rejected:", "Result: Rejected Permanent, Source: Service User", "Reason: Calling AE Title Not Recognized"}},
		{rjBusyAE, routeToOrthancAE, "rj-busy", "temporary-congestion", [3]string{"2", "3", "1"},
			[]string{"Association Rejected:", "Result: Rejected Transient, Source: Service Provider (Presentation Related)", "Reason: Temporary Congestion"}},
		{rjNoReasonAE, routeToOrthancAE, "rj-noreason", "no-reason-given", [3]string{"1", "1", "1"},
			[]string{"Association Rejected:", "Result: Rejected Permanent, Source: Service User", "Reason: No Reason"}},
		{"SOMEONE", rjUnknownCalled, "default", "called-ae-not-recognized", [3]string{"1", "1", "7"},
			[]string{"Association Rejected:", "Result: Rejected Permanent, Source: Service User", "Reason: Called AE Title Not Recognized"}},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			p := newProbe(t, g)
			before := scrapeOrFail(t, rj.metricsURL)
			r := echoVia(g, &certs.NoSAN, tc.calling, tc.called)
			wantFailed(t, r, "echoscu +tls as "+tc.calling+" -> "+tc.called)
			var lacking []string
			for _, line := range tc.dcmtk {
				if !strings.Contains(r.out, line) {
					lacking = append(lacking, line)
				}
			}
			require.Empty(t, lacking, "echoscu output lacks these lines:\n%s", r)
			require.NotContains(t, r.out, "Peer aborted Association", "echoscu saw a dropped connection, not an A-ASSOCIATE-RJ:\n%s", r)
			rec := p.wantAudit(t, tc.calling)
			wantAuditFields(t, rec, "deny", tc.rule, clusterRejector, "policy")
			require.Equal(t, "reject", rec.field("respond"), "audit respond\nrecord: %s", rec)
			require.Equal(t, tc.reason, rec.field("reject_reason"), "audit reject_reason\nrecord: %s", rec)
			p.wantDelta(t, 1, "dicomgate_associations_total")
			p.wantDelta(t, 1, "dicomgate_denied_total", "reason", "policy")
			p.wantDelta(t, 1, "dicomgate_rejected_total")
			// The audit line and the metric name the default action alike.
			p.wantDelta(t, 1, "dicomgate_decisions_total", "action", "deny", "rule", tc.rule)
			wantRejectorUpstream(t, p, 1)
			wantRejectorDelta(t, rj, before, 1, "dicomgate_reject_sent_total", "result", tc.rsr[0], "source", tc.rsr[1], "reason", tc.rsr[2])
		})
	}
	require.False(t, o.sawCallingAE(rjCallingAE, om) || o.sawCallingAE(rjBusyAE, om) || o.sawCallingAE(rjNoReasonAE, om) || o.sawCallingAE("SOMEONE", om),
		"Orthanc saw a rejected association")

	t.Run("respond_close_still_closes", func(t *testing.T) {
		p := newProbe(t, g)
		before := scrapeOrFail(t, rj.metricsURL)
		r := echoVia(g, &certs.NoSAN, rjCloseAE, routeToOrthancAE)
		wantFailed(t, r, "echoscu +tls as "+rjCloseAE)
		require.NotContains(t, r.out, "Association Rejected", "a respond-close deny produced an A-ASSOCIATE-RJ:\n%s", r)
		rec := p.wantAudit(t, rjCloseAE)
		wantAuditFields(t, rec, "deny", "rj-close", "", "policy")
		require.Equal(t, "close", rec.field("respond"), "audit respond\nrecord: %s", rec)
		p.wantNoUpstreamAttempt(t)
		p.wantDelta(t, 1, "dicomgate_denied_total", "reason", "policy")
		p.wantDelta(t, 0, "dicomgate_rejected_total")
		wantRejectorUpstream(t, p, 0)
		wantRejectorDelta(t, rj, before, 0, "dicomgate_reject_connections_total")
	})

	t.Run("allowed_association_unchanged", func(t *testing.T) {
		p := newProbe(t, g)
		r := echoVia(g, &certs.NoSAN, allowedModalityAE, routeToOrthancAE)
		wantOK(t, r, "echoscu +tls as MODALITY1 -> PACS_A")
		p.wantUpstream(t, clusterOrthanc, 1)
		wantRejectorUpstream(t, p, 0)
	})

	t.Run("forged_preamble_refused", func(t *testing.T) {
		before := scrapeOrFail(t, rj.metricsURL)
		k, err := rejectwire.NewKey("Zm9yZ2VkLWtleS1ub3Qta25vd24tdG8tdGhlLXJlamVjdG9y")
		require.NoError(t, err)
		var pre [rejectwire.Size]byte
		k.Sign(&pre, rejectwire.Preamble{Result: 1, Source: 1, Reason: 3, ConnID: 1, Time: time.Now().UnixNano()})
		out := rawExchange(t, fmt.Sprintf("127.0.0.1:%d", rj.port), append(pre[:], rejectRQ(t)...))
		require.Empty(t, out, "the rejector answered a forged preamble")
		wantRejectorDelta(t, rj, before, 1, "dicomgate_reject_refused_total", "cause", "forged")
		wantRejectorDelta(t, rj, before, 0, "dicomgate_reject_sent_total", "result", "1", "source", "1", "reason", "3")
		// A plain A-ASSOCIATE-RQ (no preamble at all) is refused too.
		require.Empty(t, rawExchange(t, fmt.Sprintf("127.0.0.1:%d", rj.port), rejectRQ(t)))
		wantRejectorDelta(t, rj, before, 1, "dicomgate_reject_refused_total", "cause", "not_from_filter")
	})
}

// rejectRQ is the first A-ASSOCIATE-RQ of a dcmtk capture.
func rejectRQ(t testing.TB) []byte {
	t.Helper()
	if e2eRejectRQ == nil {
		b, err := os.ReadFile(filepath.Join(repoRoot, "sdk", "pdu", "testdata", "echo_default.c2s.bin"))
		require.NoError(t, err)
		e2eRejectRQ = b[:6+binary.BigEndian.Uint32(b[2:6])]
	}
	return e2eRejectRQ
}

// rawExchange sends b over TCP and returns what came back until the peer closed (a reset after a refusal with
// unread bytes counts as a close).
func rawExchange(t testing.TB, addr string, b []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(20*time.Second)))
	_, err = c.Write(b)
	require.NoError(t, err)
	out, _ := io.ReadAll(c)
	return out
}

func scrapeOrFail(t testing.TB, url string) metricSet {
	t.Helper()
	m, err := scrape(url)
	require.NoError(t, err)
	return m
}

// wantRejectorUpstream asserts the gateway's upstream connection attempts to the rejector cluster since the probe.
func wantRejectorUpstream(t testing.TB, p *probe, want float64) {
	t.Helper()
	var got float64
	ok := eventually(func() bool {
		m, err := scrape(p.g.metricsURL)
		if err != nil {
			return false
		}
		got = p.upstreamAttempts(m, clusterRejector) - p.upstreamAttempts(p.before, clusterRejector)
		return got == want
	})
	require.True(t, ok, "%s: %g upstream connection attempt(s) to %q since the step began, want %g", p.g.label, got, clusterRejector, want)
}

// wantRejectorDelta asserts that a rejector metric grew by exactly want since before; a series missing before the
// step counts as 0 only for dicomgate_reject_sent_total (it appears with its first RJ).
func wantRejectorDelta(t testing.TB, rj *rejectorPeer, before metricSet, want float64, name string, labels ...string) {
	t.Helper()
	b, found := before.get(name, labels...)
	require.True(t, found || name == "dicomgate_reject_sent_total", "rejector: no series %s%v before the step (a missing series is not zero)", name, labels)
	var got float64
	ok := eventually(func() bool {
		m, err := scrape(rj.metricsURL)
		if err != nil {
			return false
		}
		after, found := m.get(name, labels...)
		if !found && want != 0 {
			return false
		}
		got = after - b
		return got == want
	})
	require.True(t, ok, "rejector: %s%v grew by %g, want %g", name, labels, got, want)
}
