package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEnvoyBase: the base rendering (after-decision routing, SIMPLE TLS)
// served to Envoy by istiod's generation. PACS_A is routed to pacs-a,
// PACS_B to pacs-b with the called AE rewritten to ORTHANC (pacs-b's
// Orthanc refuses PACS_B directly), an unknown called AE is denied with no
// upstream connection at all, and a C-STORE arrives intact.
func TestEnvoyBase(t *testing.T) {
	g := startGateway(t, build(t, "base"), gatewayOpts{})
	defer dump(t, g)
	p := g.peers
	tls := p.simpleTLS()

	t.Run("PACS_A routed to pacs-a", func(t *testing.T) {
		b := g.read(t)
		mark := p.pacsA.proc.mark()
		r := g.echo(t, tls, "TESTER", "PACS_A")
		require.Equal(t, 0, r.code, "%s", r)
		a := g.waitProm(t, b, decision("route", "route-pacs-a"), 1)
		g.requireUpstream(t, b, a, map[string]float64{clusterPACSA: 1})
		require.True(t, p.pacsA.sawCallingAE("TESTER", mark), "pacs-a (storescp) did not log the association")
		f := fields(g.auditLine(t, b, "TESTER", "PACS_A"))
		require.Equal(t, "route", f["decision"])
		require.Equal(t, clusterPACSA, f["cluster"])
	})

	t.Run("PACS_B routed to pacs-b with the called AE rewritten", func(t *testing.T) {
		direct := runTool("echoscu", "-v", "-aet", "TESTER", "-aec", "PACS_B", "127.0.0.1", strconv.Itoa(p.pacsB.port))
		require.NotEqual(t, 0, direct.code, "control: pacs-b's Orthanc must refuse called AE PACS_B\n%s", direct)
		b := g.read(t)
		mark := p.pacsB.proc.mark()
		r := g.echo(t, tls, "TESTER", "PACS_B")
		require.Equal(t, 0, r.code, "%s", r)
		a := g.waitProm(t, b, decision("route", "route-pacs-b"), 1)
		g.requireUpstream(t, b, a, map[string]float64{clusterPACSB: 1})
		require.True(t, p.pacsB.sawCallingAE("TESTER", mark), "pacs-b (Orthanc) did not log the association")
		f := fields(g.auditLine(t, b, "TESTER", "PACS_B"))
		require.Equal(t, "route-pacs-b", f["rule"])
		require.Equal(t, "ORTHANC", f["rewrite_called_ae"])
	})

	t.Run("unknown called AE denied, no upstream connection", func(t *testing.T) {
		b := g.read(t)
		r := g.echo(t, tls, "TESTER", "PACS_X")
		require.NotEqual(t, 0, r.code, "%s", r)
		a := g.waitProm(t, b, denied("policy"), 1)
		require.Equal(t, 1.0, promDelta(t, b, a, decision("deny", "default")))
		g.requireUpstream(t, b, a, nil)
		f := fields(g.auditLine(t, b, "TESTER", "PACS_X"))
		require.Equal(t, "deny", f["decision"])
		require.Equal(t, "policy", f["reason"])
	})

	t.Run("CT01 without its certificate denied", func(t *testing.T) {
		b := g.read(t)
		r := g.echo(t, tls, "CT01", "PACS_A")
		require.NotEqual(t, 0, r.code, "%s", r)
		a := g.waitProm(t, b, decision("deny", "ct01-without-its-certificate"), 1)
		g.requireUpstream(t, b, a, nil)
	})

	t.Run("C-STORE arrives intact", func(t *testing.T) {
		src := filepath.Join("..", "..", "e2e", "testdata", "dcm", "mr_large.dcm")
		want, err := os.ReadFile(src)
		require.NoError(t, err)
		wantDS, err := datasetAfterMeta(want)
		require.NoError(t, err)
		b := g.read(t)
		// -xi: propose only implicit VR little endian, the file's own
		// transfer syntax, so storescu sends the data set unconverted and
		// storescp (+B) writes it as received.
		r := runTool("storescu", append(append([]string{"-v", "-xi"}, tls...), "-aet", "TESTER", "-aec", "PACS_A",
			"127.0.0.1", strconv.Itoa(g.dicomPort), src)...)
		require.Equal(t, 0, r.code, "%s", r)
		a := g.waitProm(t, b, decision("route", "route-pacs-a"), 1)
		g.requireUpstream(t, b, a, map[string]float64{clusterPACSA: 1})
		got, err := os.ReadFile(filepath.Join(p.pacsA.dir, "MR.1.2.826.0.1.3680043.10.1234.1.2.1.1"))
		require.NoError(t, err, "storescp wrote no file for the instance")
		gotDS, err := datasetAfterMeta(got)
		require.NoError(t, err)
		same, diff := sameBytes(wantDS, gotDS)
		require.True(t, same, "the stored data set differs from the sent one: %s", diff)
	})
}

// TestEnvoyMutualTLS: overlays/mutual-tls. The DICOM server requires a
// client certificate verified against kubernetes://dicom-credential-cacert;
// CT01 presenting the certificate with its URI SAN is routed to pacs-a by
// rule ct01-bound-to-its-certificate, CT01 presenting a CA-signed
// certificate without the SAN is denied by rule ct01-without-its-certificate.
func TestEnvoyMutualTLS(t *testing.T) {
	g := startGateway(t, build(t, "overlays/mutual-tls"), gatewayOpts{})
	defer dump(t, g)
	p := g.peers

	t.Run("CT01 with its certificate routed to pacs-a", func(t *testing.T) {
		b := g.read(t)
		mark := p.pacsA.proc.mark()
		r := g.echo(t, p.clientTLS(p.pki.CT01Cert, p.pki.CT01Key), "CT01", "PACS_A")
		require.Equal(t, 0, r.code, "%s", r)
		a := g.waitProm(t, b, decision("route", "ct01-bound-to-its-certificate"), 1)
		g.requireUpstream(t, b, a, map[string]float64{clusterPACSA: 1})
		require.True(t, p.pacsA.sawCallingAE("CT01", mark), "pacs-a did not log CT01's association")
	})

	t.Run("CT01 with a certificate without the SAN denied", func(t *testing.T) {
		b := g.read(t)
		r := g.echo(t, p.clientTLS(p.pki.NoSANCert, p.pki.NoSANKey), "CT01", "PACS_A")
		require.NotEqual(t, 0, r.code, "%s", r)
		a := g.waitProm(t, b, decision("deny", "ct01-without-its-certificate"), 1)
		g.requireUpstream(t, b, a, nil)
		f := fields(g.auditLine(t, b, "CT01", "PACS_A"))
		require.Equal(t, "deny", f["decision"])
	})

	t.Run("no client certificate fails the handshake", func(t *testing.T) {
		b := g.read(t)
		r := g.echo(t, p.simpleTLS(), "CT01", "PACS_A")
		require.NotEqual(t, 0, r.code, "%s", r)
		a := g.read(t)
		g.requireUpstream(t, b, a, nil)
		require.Equal(t, 1.0, statDelta(t, b, a, fmt.Sprintf("listener.127.0.0.1_%d.ssl.fail_verify_no_cert", g.dicomPort)))
		require.Equal(t, 0.0, promDelta(t, b, a, "dicomgate_associations_total"), "a failed handshake is no association")
	})
}

// TestEnvoyDryRun: overlays/dry-run. An association the policy denies
// (unknown called AE) is counted as a would-be denial and passes to the
// VirtualService destination, Orthanc.
func TestEnvoyDryRun(t *testing.T) {
	g := startGateway(t, build(t, "overlays/dry-run"), gatewayOpts{})
	defer dump(t, g)
	p := g.peers
	// README section 5, steps 4 and 5: both would be denied, both pass.
	// In dry-run the enforced action is always allow, counted under the rule
	// that would have denied.
	for _, c := range []struct{ calling, called, rule string }{
		{"TESTER", "PACS_X", "default"}, {"CT01", "PACS_A", "ct01-without-its-certificate"},
	} {
		t.Run(c.calling+" to "+c.called, func(t *testing.T) {
			b := g.read(t)
			mark := p.orthanc.proc.mark()
			r := g.echo(t, p.simpleTLS(), c.calling, c.called)
			require.Equal(t, 0, r.code, "%s", r)
			a := g.waitProm(t, b, "dicomgate_dry_run_denies_total", 1)
			g.requireUpstream(t, b, a, map[string]float64{clusterOrthanc: 1})
			require.True(t, p.orthanc.sawCallingAE(c.calling, mark), "orthanc did not log the association")
			require.Equal(t, 0.0, promDelta(t, b, a, denied("policy")), "dry-run closed a connection")
			require.Equal(t, 1.0, promDelta(t, b, a, decision("allow", c.rule)))
			f := fields(g.auditLine(t, b, c.calling, c.called))
			require.Equal(t, "deny", f["decision"], "the audit line reports the decision it would have made")
			require.Equal(t, "true", f["dry_run"])
		})
	}
}

// TestEnvoyImmediate: overlays/immediate (no EnvoyFilter, upstreamConnect
// immediate). Allow and deny work; a denied association costs the backend a
// TCP connect but no byte of it reaches it; a route rule added to the
// pluginConfig is refused by the plugin, as manifests/README.md documents.
func TestEnvoyImmediate(t *testing.T) {
	objs := build(t, "overlays/immediate")
	g := startGateway(t, objs, gatewayOpts{})
	defer dump(t, g)
	p := g.peers
	tls := p.simpleTLS()

	t.Run("ORTHANC allowed", func(t *testing.T) {
		b := g.read(t)
		mark := p.orthanc.proc.mark()
		r := g.echo(t, tls, "TESTER", "ORTHANC")
		require.Equal(t, 0, r.code, "%s", r)
		a := g.waitProm(t, b, decision("allow", "allow-orthanc"), 1)
		g.requireUpstream(t, b, a, map[string]float64{clusterOrthanc: 1})
		require.True(t, p.orthanc.sawCallingAE("TESTER", mark), "orthanc did not log the association")
	})

	t.Run("unknown called AE denied; Orthanc sees a connect, no association", func(t *testing.T) {
		b := g.read(t)
		mark := p.orthanc.proc.mark()
		r := g.echo(t, tls, "TESTER", "PACS_X")
		require.NotEqual(t, 0, r.code, "%s", r)
		a := g.waitProm(t, b, denied("policy"), 1)
		g.requireUpstream(t, b, a, map[string]float64{clusterOrthanc: 1})
		require.False(t, p.orthanc.sawCallingAE("TESTER", mark), "a denied association reached Orthanc")
	})

	// manifests/README.md: route rules are refused in upstreamConnect
	// immediate. The plugin refuses the configuration, Envoy rejects the
	// ECDS update (NACK) and keeps running the previous configuration.
	t.Run("a route rule is refused", func(t *testing.T) {
		addRouteRule(t, objs)
		before := g.envoy.proc.mark()
		g.push(t, objs)
		line, err := g.envoy.proc.waitFor(before, 20*time.Second,
			`dicomgate: configuration error: rules[0].action: "route" is impossible with "upstreamConnect": "immediate"`)
		require.NoError(t, err)
		t.Logf("Envoy: %s", line)
		g.xds.waitRejected(t, "Unable to create Wasm plugin istio-ingress.dicomgate~istio-translated-wasmplugin")
		b := g.read(t)
		r := g.echo(t, tls, "TESTER", "ORTHANC")
		require.Equal(t, 0, r.code, "the previous configuration should keep serving\n%s", r)
		a := g.waitProm(t, b, decision("allow", "allow-orthanc"), 1)
		g.requireUpstream(t, b, a, map[string]float64{clusterOrthanc: 1})
	})
}
