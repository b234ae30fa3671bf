package e2e

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	sinkSh    shared[*sink]
	gwTLSSh   shared[*gateway]
	gwPlainSh shared[*gateway]
	gwDrySh   shared[*gateway]
)

// theSink is the counting backend every gateway uses as its default cluster. Every scenario routes explicitly, so
// a connection reaching it means the gateway connected upstream before (or without) a decision.
func theSink(t testing.TB) *sink {
	t.Helper()
	return sinkSh.get(t, startSink)
}

func clusters(t testing.TB) map[string]string {
	t.Helper()
	o, s, k := theOrthanc(t), theStoreSCP(t), theSink(t)
	return map[string]string{
		clusterOrthanc:  fmt.Sprintf("127.0.0.1:%d", o.dicomPort),
		clusterStoreSCP: fmt.Sprintf("127.0.0.1:%d", s.port),
		clusterSink:     k.addr(),
	}
}

// mtlsGateway is the production-shaped gateway: TLS with a required client certificate from the test CA (like an
// Istio Gateway server with tls.mode MUTUAL; `--client-ca` means RequireAndVerifyClientCert), policy enforced,
// default cluster the sink.
func mtlsGateway(t testing.TB) *gateway {
	t.Helper()
	requireArtifacts(t)
	c := clusters(t)
	return gwTLSSh.get(t, func() (*gateway, error) {
		return startGateway("gateway-mtls", gatewayOpts{tls: true, clientCA: true, policy: e2ePolicy("enforce"), clusters: c, defaultCluster: clusterSink})
	})
}

// plainGateway serves plain DICOM (no TLS) with the same policy; it proves the TLS-on-plain-port detection and
// that an association without any client certificate cannot satisfy a peerURISANs rule.
func plainGateway(t testing.TB) *gateway {
	t.Helper()
	requireArtifacts(t)
	c := clusters(t)
	return gwPlainSh.get(t, func() (*gateway, error) {
		return startGateway("gateway-plain", gatewayOpts{policy: e2ePolicy("enforce"), clusters: c, defaultCluster: clusterSink})
	})
}

// dryRunGateway runs the same policy in dry-run mode; its default cluster is Orthanc, so an association the policy
// would deny still reaches Orthanc when it calls ORTHANC.
func dryRunGateway(t testing.TB) *gateway {
	t.Helper()
	requireArtifacts(t)
	c := clusters(t)
	return gwDrySh.get(t, func() (*gateway, error) {
		return startGateway("gateway-dryrun", gatewayOpts{tls: true, clientCA: true, policy: e2ePolicy("dry-run"), clusters: c, defaultCluster: clusterOrthanc})
	})
}

// lane is one way of running the gateway under test. The same scenarios run on every lane: the local
// `dicomgate serve` (always) and a real Envoy (when ENVOY_BIN is set, see envoy_test.go).
type lane struct {
	name string
	// mtls, plain and dryRun return the lane's gateways (started on first use): mutual TLS + enforce, plain +
	// enforce, mutual TLS + dry-run; see mtlsGateway, plainGateway and dryRunGateway.
	mtls, plain, dryRun func(t testing.TB) *gateway
	// reject returns the lane's gateway with the reject policy (e2eRejectPolicy) and the rejector cluster.
	reject func(t testing.TB) *gateway
	// tlsHandshakeFailures are the host's metrics that, summed, count failed TLS handshakes on the listener.
	tlsHandshakeFailures []string
}

// localLane runs the scenarios through `dicomgate serve`.
var localLane = &lane{
	name: "dicomgate serve", mtls: mtlsGateway, plain: plainGateway, dryRun: dryRunGateway, reject: rejectGateway,
	tlsHandshakeFailures: []string{"dicomgate_gateway_tls_handshake_failures_total"},
}

// scenarios are every gateway scenario, by name, for running them on another lane.
var scenarios = []struct {
	name string
	run  func(t *testing.T, l *lane)
}{
	{"EchoAllowedAndUnknownCaller", scenarioEchoAllowedAndUnknownCaller},
	{"StoreRoutedByCalledAE", scenarioStoreRoutedByCalledAE},
	{"CalledAERewrite", scenarioCalledAERewrite},
	{"MutualTLSAEBinding", scenarioMutualTLSAEBinding},
	{"HostileClients", scenarioHostileClients},
	{"DryRun", scenarioDryRun},
	{"FindQueryOnlyRule", scenarioFindQueryOnlyRule},
	{"OrthancAsSCU", scenarioOrthancAsSCU},
	{"RejectAnswersWithRJ", scenarioRejectAnswersWithRJ},
}

// tlsArgs are dcmtk's TLS options for a client presenting kp (nil: anonymous TLS, no client certificate).
func tlsArgs(kp *keyPair) []string {
	if kp == nil {
		return []string{"+tla", "+cf", certs.CAFile}
	}
	return []string{"+tls", kp.Key, kp.Cert, "+cf", certs.CAFile}
}

// clientTLSArgs are the TLS options for a dcmtk client of g (none for a plain gateway).
func clientTLSArgs(g *gateway, kp *keyPair) []string {
	if !g.tls {
		return nil
	}
	return tlsArgs(kp)
}

// echoVia runs echoscu through g.
func echoVia(g *gateway, kp *keyPair, calling, called string) toolResult {
	args := append([]string{"-v", "-aet", calling, "-aec", called}, clientTLSArgs(g, kp)...)
	args = append(args, "127.0.0.1", strconv.Itoa(g.port))
	return runTool(30*time.Second, "echoscu", args...)
}

// storeVia runs storescu through g with the files.
func storeVia(g *gateway, kp *keyPair, calling, called string, files []sentFile) toolResult {
	return runTool(90*time.Second, "storescu", storeArgs(clientTLSArgs(g, kp), calling, called, g.port, files)...)
}

// probe captures a gateway's metrics, output position and the sink count before a step, so the step's effects can
// be asserted exactly (scenarios sharing a gateway run sequentially).
type probe struct {
	g          *gateway
	before     metricSet
	mark       int
	sinkBefore int64
}

func newProbe(t testing.TB, g *gateway) *probe {
	t.Helper()
	return &probe{g: g, before: g.metrics(t), mark: g.proc.mark(), sinkBefore: theSink(t).count.Load()}
}

// eventually polls cond (every 25 ms, up to 10 s, generous for a loaded CI machine): the gateway updates counters
// and prints audit lines as the connection is decided or closed, which may be a moment after the client process
// has exited.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// wantDelta asserts that metric name (with labels) grew by exactly want since the probe.
func (p *probe) wantDelta(t testing.TB, want float64, name string, labels ...string) {
	t.Helper()
	var last metricSet
	var got float64
	_, found := p.before.get(name, labels...)
	require.True(t, found, "%s: no series %s%v when the step began (a missing series is not zero)\nmetric names: %s",
		p.g.label, name, labels, p.before.names())
	ok := eventually(func() bool {
		m, err := scrape(p.g.metricsURL)
		if err != nil {
			return false
		}
		last = m
		after, found := m.get(name, labels...)
		if !found {
			return false
		}
		before, _ := p.before.get(name, labels...)
		got = after - before
		return got == want
	})
	require.True(t, ok, "%s: %s%v grew by %g, want %g\nmetrics changed since the step began:\n%s\nmetric names: %s",
		p.g.label, name, labels, got, want, last.diff(p.before), last.names())
}

// wantTLSFailures asserts that the lane's TLS handshake failure metrics (summed) grew by exactly want.
func (p *probe) wantTLSFailures(t testing.TB, l *lane, want float64) {
	t.Helper()
	var last metricSet
	var got float64
	var missing []string
	sum := func(m metricSet) float64 {
		var s float64
		missing = missing[:0]
		for _, n := range l.tlsHandshakeFailures {
			v, found := m.get(n)
			if !found {
				missing = append(missing, n)
			}
			s += v
		}
		return s
	}
	sum(p.before)
	require.Empty(t, missing, "%s: no series when the step began (a missing series is not zero)\nmetric names: %s", p.g.label, p.before.names())
	ok := eventually(func() bool {
		m, err := scrape(p.g.metricsURL)
		if err != nil {
			return false
		}
		last = m
		got = sum(m) - sum(p.before)
		return got == want && len(missing) == 0
	})
	require.True(t, ok, "%s: TLS handshake failures (%s) grew by %g, want %g\nmetrics changed since the step began:\n%s",
		p.g.label, strings.Join(l.tlsHandshakeFailures, " + "), got, want, last.diff(p.before))
}

// upstreamAttempts sums the gateway's upstream connection attempts to cluster in m; a series that is not exported
// is returned as NaN, so that every comparison with it fails (a missing series is not zero).
func (p *probe) upstreamAttempts(m metricSet, cluster string) float64 {
	var n float64
	for _, r := range p.g.upstreamAttempts(cluster) {
		v, found := m.get(r.name, r.labels...)
		if !found {
			return math.NaN()
		}
		n += v
	}
	return n
}

// wantUpstream asserts that the gateway made exactly want upstream connection attempts to cluster since the probe,
// and none to the other clusters.
func (p *probe) wantUpstream(t testing.TB, cluster string, want float64) {
	t.Helper()
	var last metricSet
	got := map[string]float64{}
	ok := eventually(func() bool {
		m, err := scrape(p.g.metricsURL)
		if err != nil {
			return false
		}
		last = m
		all := true
		for _, c := range []string{clusterOrthanc, clusterStoreSCP, clusterSink} {
			w := 0.0
			if c == cluster {
				w = want
			}
			got[c] = p.upstreamAttempts(m, c) - p.upstreamAttempts(p.before, c)
			all = all && got[c] == w
		}
		return all
	})
	require.True(t, ok, "%s: upstream connection attempts since the step began: %v; want %g to %q and none elsewhere\nmetrics changed:\n%s",
		p.g.label, got, want, cluster, last.diff(p.before))
}

// wantNoUpstreamAttempt asserts that the gateway attempted no upstream connection since the probe: its per-cluster
// metrics did not move and the sink (every gateway's default cluster) accepted nothing.
func (p *probe) wantNoUpstreamAttempt(t testing.TB) {
	t.Helper()
	time.Sleep(50 * time.Millisecond) // let a (wrong) upstream connect land before counting
	var attempts []string
	if n := theSink(t).count.Load() - p.sinkBefore; n != 0 {
		attempts = append(attempts, fmt.Sprintf("the default-cluster sink accepted %d connection(s): the gateway connected upstream without a routing decision", n))
	}
	m := p.g.metrics(t)
	for _, c := range []string{clusterOrthanc, clusterStoreSCP, clusterSink} {
		if n := p.upstreamAttempts(m, c) - p.upstreamAttempts(p.before, c); n != 0 {
			attempts = append(attempts, fmt.Sprintf("%g upstream connection attempt(s) to cluster %q, want none", n, c))
		}
	}
	require.Empty(t, strings.Join(attempts, "\n"), "%s: upstream connection attempts since the step began\nmetrics changed:\n%s", p.g.label, m.diff(p.before))
}

// wantAudit waits for exactly one audit record from callingAE since the probe and returns it.
func (p *probe) wantAudit(t testing.TB, callingAE string) auditRecord {
	t.Helper()
	var recs []auditRecord
	eventually(func() bool {
		recs = auditFor(p.g.auditSince(p.mark), callingAE)
		return len(recs) >= 1
	})
	require.Len(t, recs, 1, "%s: want exactly one audit line for calling AE %q; gateway output since the step:\n%s",
		p.g.label, callingAE, tail(p.g.proc.outputSince(p.mark), 30))
	return recs[0]
}

// wantAuditFields checks decision, rule, cluster and reason of an audit record ("" = must be empty or absent).
func wantAuditFields(t testing.TB, r auditRecord, decision, rule, cluster, reason string) {
	t.Helper()
	norm := func(s string) string {
		if s == auditFieldNotPresent {
			return ""
		}
		return s
	}
	got := []string{norm(r.decision()), norm(r.rule()), norm(r.cluster()), norm(r.reason())}
	want := []string{decision, rule, cluster, reason}
	require.Equal(t, strings.Join(want, "|"), strings.Join(got, "|"), "audit decision|rule|cluster|reason\nrecord: %s", r)
}

// dumpOnFailure prints the tail of each peer's own output when the test has failed (registered at the start of
// every scenario).
func dumpOnFailure(t testing.TB, ps ...*proc) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range ps {
				p.dump(t)
			}
		}
	})
}

// wantOK asserts a dcmtk client succeeded, printing its command line and output otherwise (the peers' output is
// printed by dumpOnFailure).
func wantOK(t testing.TB, r toolResult, what string) {
	t.Helper()
	require.True(t, r.exitCode == 0 && r.err == nil, "%s: expected success:\n%s", what, r)
}

// wantFailed asserts a dcmtk client failed (non-zero exit, not a timeout kill).
func wantFailed(t testing.TB, r toolResult, what string) {
	t.Helper()
	require.NotZero(t, r.exitCode, "%s: expected the association to fail, but the client succeeded:\n%s", what, r)
	require.Positive(t, r.exitCode, "%s: client hung (killed at its deadline) instead of failing promptly:\n%s", what, r)
}
