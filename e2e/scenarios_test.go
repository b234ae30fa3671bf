package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// TestEchoAllowedAndUnknownCaller runs scenarioEchoAllowedAndUnknownCaller through `dicomgate serve`.
func TestEchoAllowedAndUnknownCaller(t *testing.T) { scenarioEchoAllowedAndUnknownCaller(t, localLane) }

// TestStoreRoutedByCalledAE runs scenarioStoreRoutedByCalledAE through `dicomgate serve`.
func TestStoreRoutedByCalledAE(t *testing.T) { scenarioStoreRoutedByCalledAE(t, localLane) }

// TestCalledAERewrite runs scenarioCalledAERewrite through `dicomgate serve`.
func TestCalledAERewrite(t *testing.T) { scenarioCalledAERewrite(t, localLane) }

// TestMutualTLSAEBinding runs scenarioMutualTLSAEBinding through `dicomgate serve`.
func TestMutualTLSAEBinding(t *testing.T) { scenarioMutualTLSAEBinding(t, localLane) }

// TestDryRun runs scenarioDryRun through `dicomgate serve`.
func TestDryRun(t *testing.T) { scenarioDryRun(t, localLane) }

// TestFindQueryOnlyRule runs scenarioFindQueryOnlyRule through `dicomgate serve`.
func TestFindQueryOnlyRule(t *testing.T) { scenarioFindQueryOnlyRule(t, localLane) }

// TestOrthancAsSCU runs scenarioOrthancAsSCU through `dicomgate serve`.
func TestOrthancAsSCU(t *testing.T) { scenarioOrthancAsSCU(t, localLane) }

// TestHostileClients runs scenarioHostileClients through `dicomgate serve`.
func TestHostileClients(t *testing.T) { scenarioHostileClients(t, localLane) }

// The scenarios share one Orthanc, one storescp and one gateway per mode, and run sequentially (no t.Parallel) so
// each step can assert exact metric deltas and audit lines.

// scenarioEchoAllowedAndUnknownCaller — scenario 1: an allowed calling AE echoes through the mTLS gateway to Orthanc;
// an unknown calling AE is cut off by the gateway before any upstream connection (Orthanc never sees it), counted
// as a policy denial.
func scenarioEchoAllowedAndUnknownCaller(t *testing.T, l *lane) {
	g, o := l.mtls(t), theOrthanc(t)
	dumpOnFailure(t, g.proc, o.proc)
	om := o.proc.mark() // Orthanc log position: only associations from this scenario count

	p := newProbe(t, g)
	r := echoVia(g, &certs.NoSAN, allowedModalityAE, routeToOrthancAE)
	wantOK(t, r, "echoscu +tls as MODALITY1 -> PACS_A")
	require.True(t, o.sawCallingAE(allowedModalityAE, om), "Orthanc's log shows no association from %s", allowedModalityAE)
	wantAuditFields(t, p.wantAudit(t, allowedModalityAE), "route", "modality-a", clusterOrthanc, "")
	p.wantDelta(t, 1, "dicomgate_associations_total")
	p.wantDelta(t, 1, "dicomgate_decisions_total", "action", "route", "rule", "modality-a")
	p.wantDelta(t, 0, "dicomgate_denied_total")
	p.wantUpstream(t, clusterOrthanc, 1)

	p = newProbe(t, g)
	r = echoVia(g, &certs.NoSAN, intruderAE, routeToOrthancAE)
	wantFailed(t, r, "echoscu +tls as INTRUDER -> PACS_A")
	require.False(t, o.sawCallingAE(intruderAE, om), "Orthanc saw an association from %s, which the gateway must have denied", intruderAE)
	wantAuditFields(t, p.wantAudit(t, intruderAE), "deny", "default", "", "policy")
	p.wantDelta(t, 1, "dicomgate_associations_total")
	p.wantDelta(t, 1, "dicomgate_denied_total", "reason", "policy")
	p.wantDelta(t, 1, "dicomgate_decisions_total", "action", "deny", "rule", "default")
	p.wantNoUpstreamAttempt(t)
}

// scenarioStoreRoutedByCalledAE — scenarios 2 and 3: the same calling AE reaches Orthanc when it calls PACS_A (called
// AE rewritten to ORTHANC) and storescp when it calls PACS_B; every Part 10 file lands only where it was routed,
// and the stored datasets (pixel data included) equal the files sent.
func scenarioStoreRoutedByCalledAE(t *testing.T, l *lane) {
	g, o, s, files := l.mtls(t), theOrthanc(t), theStoreSCP(t), storableFiles(t)
	dumpOnFailure(t, g.proc, o.proc, s.proc)
	clear := func() {
		for _, f := range files {
			require.NoError(t, o.deleteSOPUID(f.SOPInstanceUID))
			s.removeReceived(f.SOPInstanceUID)
		}
	}

	clear()
	p := newProbe(t, g)
	r := storeVia(g, &certs.NoSAN, allowedModalityAE, routeToStoreSCPAE, files)
	wantOK(t, r, "storescu +tls as MODALITY1 -> PACS_B")
	assertStoredInStoreSCP(t, s, files)
	var leaked []string
	for _, f := range files {
		if id, err := o.instanceBySOPUID(f.SOPInstanceUID); err != nil || id != "" {
			leaked = append(leaked, fmt.Sprintf("%s (instance %q, err %v)", filepath.Base(f.Path), id, err))
		}
	}
	require.Empty(t, strings.Join(leaked, "\n"), "files routed to PACS_B (storescp) also landed in Orthanc")
	require.NotEmpty(t, grepLines(s.proc.out.String(), "Called Application Name:", routeToStoreSCPAE),
		"storescp's log shows no association called %s (modality-b does not rewrite the called AE)", routeToStoreSCPAE)
	wantAuditFields(t, p.wantAudit(t, allowedModalityAE), "route", "modality-b", clusterStoreSCP, "")
	p.wantDelta(t, 1, "dicomgate_decisions_total", "action", "route", "rule", "modality-b")
	p.wantUpstream(t, clusterStoreSCP, 1)

	// Without -R storescu proposes every storage SOP class it knows (well over 100 presentation contexts): an
	// A-ASSOCIATE-RQ of tens of KiB, spread over several TLS records and reads, which the filter must reassemble.
	clear()
	p = newProbe(t, g)
	args := append([]string{"-v", "-aet", allowedModalityAE, "-aec", routeToStoreSCPAE}, clientTLSArgs(g, &certs.NoSAN)...)
	var plain []sentFile // an uncompressed file: without -xs storescu proposes uncompressed transfer syntaxes only
	for _, f := range files {
		if f.TransferSyntax == "1.2.840.10008.1.2.1" {
			plain = append(plain, f)
			break
		}
	}
	require.NotEmpty(t, plain, "no explicit VR little endian file in testdata/dcm")
	args = append(append(args, "127.0.0.1", strconv.Itoa(g.port)), plain[0].Path)
	r = runTool(60*time.Second, "storescu", args...)
	wantOK(t, r, "storescu +tls proposing all storage SOP classes as MODALITY1 -> PACS_B")
	assertStoredInStoreSCP(t, s, plain)
	rec := p.wantAudit(t, allowedModalityAE)
	wantAuditFields(t, rec, "route", "modality-b", clusterStoreSCP, "")
	n, _ := strconv.Atoi(rec.field("presentation_contexts", "presentationContexts"))
	require.GreaterOrEqual(t, n, 100, "audit presentation_contexts = %q, want > 100 (storescu without -R); record %s", rec.field("presentation_contexts"), rec)
	p.wantUpstream(t, clusterStoreSCP, 1)

	clear()
	p = newProbe(t, g)
	r = storeVia(g, &certs.NoSAN, allowedModalityAE, routeToOrthancAE, files)
	wantOK(t, r, "storescu +tls as MODALITY1 -> PACS_A")
	assertStoredInOrthanc(t, o, files)
	leaked = nil
	for _, f := range files {
		if s.receivedFile(f.SOPInstanceUID) != "" {
			leaked = append(leaked, filepath.Base(f.Path))
		}
	}
	require.Empty(t, leaked, "files routed to PACS_A (Orthanc) also landed in storescp")
	wantAuditFields(t, p.wantAudit(t, allowedModalityAE), "route", "modality-a", clusterOrthanc, "")
	p.wantDelta(t, 1, "dicomgate_decisions_total", "action", "route", "rule", "modality-a")
	p.wantUpstream(t, clusterOrthanc, 1)
}

// scenarioCalledAERewrite — scenario 4: Orthanc (AE ORTHANC, DicomCheckCalledAet true) refuses PUBLIC_PACS when called
// directly (TestHarnessPeersDirect), but accepts the association through the gateway, which rewrites the called AE.
func scenarioCalledAERewrite(t *testing.T, l *lane) {
	g, o, files := l.mtls(t), theOrthanc(t), storableFiles(t)
	dumpOnFailure(t, g.proc, o.proc)
	direct := runTool(30*time.Second, "echoscu", "-aet", allowedModalityAE, "-aec", publicCalledAE, "127.0.0.1", strconv.Itoa(o.dicomPort))
	wantFailed(t, direct, "echoscu straight to Orthanc calling PUBLIC_PACS (control)")

	f := files[0]
	require.NoError(t, o.deleteSOPUID(f.SOPInstanceUID))
	p := newProbe(t, g)
	r := storeVia(g, &certs.NoSAN, allowedModalityAE, publicCalledAE, files[:1])
	wantOK(t, r, "storescu +tls as MODALITY1 -> PUBLIC_PACS")
	assertStoredInOrthanc(t, o, files[:1])
	rec := p.wantAudit(t, allowedModalityAE)
	wantAuditFields(t, rec, "route", "public-pacs", clusterOrthanc, "")
	require.Equal(t, publicCalledAE, rec.called(), "audit called AE: want the AE the client called")
	require.Equal(t, orthancAE, rec.field("rewrite_called_ae", "rewriteCalledAE"), "audit rewrite_called_ae; record %s", rec)
	p.wantDelta(t, 1, "dicomgate_decisions_total", "action", "route", "rule", "public-pacs")
	p.wantUpstream(t, clusterOrthanc, 1)
}

// scenarioMutualTLSAEBinding — scenario 5. Design: the production-shaped gateway requires a client certificate
// (--client-ca, RequireAndVerifyClientCert, Istio MUTUAL); the policy binds calling AE CT1 to the certificate with
// URI SAN spiffe://hospital/modality/ct1 and MR1 to .../mr1. Proven here:
//   - CT1's certificate succeeds as CT1 and is denied (policy) as MR1; MR1's certificate succeeds as MR1 and is
//     denied as CT1; a CA-signed certificate without SAN is denied as CT1;
//   - no client certificate at all is refused by the mTLS listener's handshake (no filter decision, counted as a
//     gateway TLS handshake failure);
//   - on the plain listener (no TLS, hence no peer certificate) CT1 is denied by the policy: the binding cannot be
//     met without a verified certificate.
func scenarioMutualTLSAEBinding(t *testing.T, l *lane) {
	g, o := l.mtls(t), theOrthanc(t)
	dumpOnFailure(t, g.proc, o.proc)
	om := o.proc.mark() // Orthanc log position: only associations from this scenario count

	// Denials first, so "Orthanc never saw MR1/CT1" is meaningful.
	denied := []struct {
		what    string
		kp      *keyPair
		calling string
	}{
		{"CT1's certificate as MR1", &certs.CT1, mr1AE},
		{"MR1's certificate as CT1", &certs.MR1, ct1AE},
		{"certificate without SAN as CT1", &certs.NoSAN, ct1AE},
	}
	for _, d := range denied {
		p := newProbe(t, g)
		r := echoVia(g, d.kp, d.calling, routeToOrthancAE)
		wantFailed(t, r, d.what)
		rec := p.wantAudit(t, d.calling)
		wantAuditFields(t, rec, "deny", "default", "", "policy")
		p.wantDelta(t, 1, "dicomgate_denied_total", "reason", "policy")
		p.wantNoUpstreamAttempt(t)
	}
	for _, ae := range []string{ct1AE, mr1AE} {
		require.False(t, o.sawCallingAE(ae, om), "Orthanc saw an association from %s while every %s attempt so far should have been denied", ae, ae)
	}

	p := newProbe(t, g)
	r := echoVia(g, nil, ct1AE, routeToOrthancAE)
	wantFailed(t, r, "no client certificate (+tla) as CT1 against the mTLS listener")
	p.wantTLSFailures(t, l, 1)
	p.wantDelta(t, 0, "dicomgate_associations_total")
	p.wantNoUpstreamAttempt(t)

	pg := l.plain(t)
	dumpOnFailure(t, pg.proc)
	pp := newProbe(t, pg)
	r = echoVia(pg, nil, ct1AE, routeToOrthancAE)
	wantFailed(t, r, "CT1 over the plain listener (no certificate)")
	wantAuditFields(t, pp.wantAudit(t, ct1AE), "deny", "default", "", "policy")
	pp.wantDelta(t, 1, "dicomgate_denied_total", "reason", "policy")
	pp.wantNoUpstreamAttempt(t)
	require.False(t, o.sawCallingAE(ct1AE, om), "Orthanc saw CT1 although every CT1 attempt so far should have been denied")

	for _, ok := range []struct {
		kp      *keyPair
		calling string
		rule    string
		san     string
	}{{&certs.CT1, ct1AE, "ct1-bound", ct1SPIFFE}, {&certs.MR1, mr1AE, "mr1-bound", mr1SPIFFE}} {
		p := newProbe(t, g)
		r := echoVia(g, ok.kp, ok.calling, routeToOrthancAE)
		wantOK(t, r, ok.calling+" with its own certificate")
		rec := p.wantAudit(t, ok.calling)
		wantAuditFields(t, rec, "route", ok.rule, clusterOrthanc, "")
		require.Equal(t, ok.san, rec.field("peer_uri_san", "peerURISAN"), "audit peer_uri_san")
		p.wantDelta(t, 1, "dicomgate_decisions_total", "action", "route", "rule", ok.rule)
		p.wantUpstream(t, clusterOrthanc, 1)
		require.True(t, o.sawCallingAE(ok.calling, om), "Orthanc's log shows no association from %s", ok.calling)
	}
}

// scenarioDryRun — scenario 7: in dry-run mode a caller the policy denies still gets through (to the default cluster,
// Orthanc), and the would-deny counter grows.
func scenarioDryRun(t *testing.T, l *lane) {
	g, o := l.dryRun(t), theOrthanc(t)
	dumpOnFailure(t, g.proc, o.proc)
	om := o.proc.mark() // Orthanc log position: only associations from this scenario count
	p := newProbe(t, g)
	r := echoVia(g, &certs.NoSAN, dryRunIntruderAE, orthancAE)
	wantOK(t, r, "echoscu as a denied caller through the dry-run gateway")
	require.True(t, o.sawCallingAE(dryRunIntruderAE, om), "Orthanc's log shows no association from %s", dryRunIntruderAE)
	rec := p.wantAudit(t, dryRunIntruderAE)
	require.True(t, rec.decision() == "deny" && rec.field("dry_run", "dryRun") == "true", "audit record = %s, want decision deny with dry_run true", rec)
	p.wantDelta(t, 1, "dicomgate_dry_run_denies_total")
	p.wantDelta(t, 0, "dicomgate_denied_total")
	p.wantUpstream(t, clusterOrthanc, 1) // the dry-run gateway's default cluster
}

// scenarioFindQueryOnlyRule — scenario 8: the query-only rule (onlyAbstractSyntaxes: C-FIND and Verification) lets
// QUERY1 run findscu against Orthanc, but not store; MODALITY1, whose rule lists storage and Verification SOP
// classes (abstractSyntaxes), cannot query.
func scenarioFindQueryOnlyRule(t *testing.T, l *lane) {
	g, o, files := l.mtls(t), theOrthanc(t), storableFiles(t)
	dumpOnFailure(t, g.proc, o.proc)
	om := o.proc.mark() // Orthanc log position: only associations from this scenario count
	f := files[0]
	studyUID := stringValue(f.Dataset, tag.StudyInstanceUID)
	require.NotEmpty(t, studyUID, "%s has no Study Instance UID", f.Path)
	// Make sure Orthanc holds the study (stored directly, not under test here).
	wantOK(t, runTool(60*time.Second, "storescu", storeArgs(nil, "SEED_SCU", orthancAE, o.dicomPort, files[:1])...), "seed Orthanc")

	p := newProbe(t, g)
	r := storeVia(g, &certs.NoSAN, queryOnlyAE, routeToOrthancAE, files[:1])
	wantFailed(t, r, "storescu as QUERY1 (query-only)")
	wantAuditFields(t, p.wantAudit(t, queryOnlyAE), "deny", "default", "", "policy")
	p.wantDelta(t, 1, "dicomgate_denied_total", "reason", "policy")
	require.False(t, o.sawCallingAE(queryOnlyAE, om), "Orthanc saw QUERY1's store association, which the gateway must have denied")

	p = newProbe(t, g)
	r = findVia(g, &certs.NoSAN, allowedModalityAE, studyUID)
	wantFailed(t, r, "findscu as MODALITY1 (storage rule only)")
	wantAuditFields(t, p.wantAudit(t, allowedModalityAE), "deny", "default", "", "policy")
	p.wantDelta(t, 1, "dicomgate_denied_total", "reason", "policy")

	p = newProbe(t, g)
	r = findVia(g, &certs.NoSAN, queryOnlyAE, studyUID)
	wantOK(t, r, "findscu as QUERY1")
	// findscu echoes the request identifiers too; only the text after the first pending response is the answer.
	_, resp, found := strings.Cut(r.out, "Find Response: 1 (Pending)")
	wantName := stringValue(f.Dataset, tag.PatientName)
	require.True(t, found && strings.Contains(resp, studyUID) && strings.Contains(resp, "["+wantName+"]") && strings.Contains(resp, "["+orthancAE),
		"findscu through the gateway did not get study %s (patient %s) from Orthanc in a pending response:\n%s", studyUID, wantName, r)
	wantAuditFields(t, p.wantAudit(t, queryOnlyAE), "route", "query-only", clusterOrthanc, "")
	p.wantDelta(t, 1, "dicomgate_decisions_total", "action", "route", "rule", "query-only")
	p.wantUpstream(t, clusterOrthanc, 1)
}

// findVia runs a study-root C-FIND for one study through g (findscu -v prints each response dataset).
func findVia(g *gateway, kp *keyPair, calling, studyUID string) toolResult {
	args := append([]string{"-v", "-S", "-aet", calling, "-aec", routeToOrthancAE}, clientTLSArgs(g, kp)...)
	args = append(args, "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID="+studyUID, "-k", "PatientName",
		"127.0.0.1", strconv.Itoa(g.port))
	return runTool(30*time.Second, "findscu", args...)
}

// scenarioOrthancAsSCU — another requester implementation: Orthanc itself, as C-STORE SCU (REST
// /modalities/ID/store), sends every test instance through the plain gateway to PACS_B; storescp receives datasets
// equal to the files. Orthanc proposes ~126 presentation contexts and may open a second association for a
// compressed instance; each association is decided and routed.
func scenarioOrthancAsSCU(t *testing.T, l *lane) {
	g, o, s, files := l.plain(t), theOrthanc(t), theStoreSCP(t), storableFiles(t)
	dumpOnFailure(t, g.proc, o.proc, s.proc)
	wantOK(t, runTool(60*time.Second, "storescu", storeArgs(nil, "SEED_SCU", orthancAE, o.dicomPort, files)...), "seed Orthanc")
	var ids []string
	for _, f := range files {
		id, err := o.instanceBySOPUID(f.SOPInstanceUID)
		require.NoError(t, err, "%s not in Orthanc after seeding", filepath.Base(f.Path))
		require.NotEmpty(t, id, "%s not in Orthanc after seeding", filepath.Base(f.Path))
		ids = append(ids, id)
		s.removeReceived(f.SOPInstanceUID)
	}
	modality := "gw-" + strings.ReplaceAll(g.label, "_", "-")
	body, _ := json.Marshal(map[string]any{"AET": routeToStoreSCPAE, "Host": "127.0.0.1", "Port": g.port})
	_, err := o.do(http.MethodPut, "/modalities/"+modality, body)
	require.NoError(t, err)

	p := newProbe(t, g)
	req, _ := json.Marshal(map[string]any{"Resources": ids, "Synchronous": true})
	out, err := o.do(http.MethodPost, "/modalities/"+modality+"/store", req)
	require.NoError(t, err, "Orthanc C-STORE SCU through the gateway (%s)", out)
	assertStoredInStoreSCP(t, s, files)
	var recs []auditRecord
	eventually(func() bool { recs = auditFor(g.auditSince(p.mark), orthancAE); return len(recs) >= 1 })
	require.NotEmpty(t, recs, "no audit line for calling AE %s", orthancAE)
	for _, r := range recs {
		wantAuditFields(t, r, "route", "orthanc-forward", clusterStoreSCP, "")
	}
	n := float64(len(recs))
	t.Logf("Orthanc used %d association(s); presentation contexts: %s", len(recs), recs[0].field("presentation_contexts"))
	p.wantDelta(t, n, "dicomgate_decisions_total", "action", "route", "rule", "orthanc-forward")
	p.wantUpstream(t, clusterStoreSCP, n)
}
