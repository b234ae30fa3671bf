package e2e

import (
	"encoding/binary"
	"strconv"
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/internal/filtertable"
	"github.com/stretchr/testify/require"
)

// wantAuditReason waits for exactly one audit record with the given reason since the probe.
func (p *probe) wantAuditReason(t testing.TB, reason string) {
	t.Helper()
	var n int
	eventually(func() bool {
		n = 0
		for _, r := range p.g.auditSince(p.mark) {
			if r.reason() == reason && r.decision() == "deny" {
				n++
			}
		}
		return n >= 1
	})
	require.Equal(t, 1, n, "%s: want exactly one audit line with decision deny, reason %q; gateway output since the step:\n%s",
		p.g.label, reason, tail(p.g.proc.outputSince(p.mark), 30))
}

// scenarioHostileClients — scenario 6: clients that do not speak DICOM-over-TLS properly are closed by the gateway,
// counted by reason, and never cause an upstream connection (every gateway's default cluster is the counting
// sink, and upstreamConnect is after-decision with early data enabled).
func scenarioHostileClients(t *testing.T, l *lane) {
	g, pg := l.mtls(t), l.plain(t)
	dumpOnFailure(t, g.proc, pg.proc)

	t.Run("plain DICOM client on the TLS port", func(t *testing.T) {
		p := newProbe(t, g)
		r := runTool(30*time.Second, "echoscu", "-v", "-aet", allowedModalityAE, "-aec", routeToOrthancAE, "127.0.0.1", strconv.Itoa(g.port))
		wantFailed(t, r, "echoscu without TLS against the TLS listener")
		// The handshake fails: the filter sees a connection without bytes, which is no association.
		p.wantTLSFailures(t, l, 1)
		p.wantDelta(t, 0, "dicomgate_associations_total")
		p.wantNoUpstreamAttempt(t)
	})

	t.Run("TLS client on the plain port", func(t *testing.T) {
		p := newProbe(t, pg)
		r := runTool(30*time.Second, "echoscu", append(append([]string{"-v", "-aet", allowedModalityAE, "-aec", routeToOrthancAE},
			tlsArgs(&certs.NoSAN)...), "127.0.0.1", strconv.Itoa(pg.port))...)
		wantFailed(t, r, "echoscu +tls against the plain listener")
		p.wantDelta(t, 1, "dicomgate_denied_total", "reason", "tls_on_plain_port")
		p.wantAuditReason(t, "tls_on_plain_port")
		p.wantNoUpstreamAttempt(t)
	})

	rq := associateRQ(routeToOrthancAE, allowedModalityAE)

	t.Run("half an A-ASSOCIATE-RQ, then silence", func(t *testing.T) {
		p := newProbe(t, g)
		c, err := dialGateway(g, &certs.NoSAN)
		require.NoError(t, err)
		defer c.Close()
		start := time.Now()
		_, err = c.Write(rq[:len(rq)/2])
		require.NoError(t, err)
		timeout := time.Duration(inspectTimeoutMs) * time.Millisecond
		got, after, closed := c.waitClosed(start, timeout+10*time.Second)
		if !closed {
			g.proc.dump(t)
		}
		require.True(t, closed, "gateway kept a stalled half A-ASSOCIATE-RQ open for %v (inspectTimeoutMs %d)", after, inspectTimeoutMs)
		require.GreaterOrEqual(t, after, timeout-100*time.Millisecond, "closed after %v, before inspectTimeoutMs (%v) expired", after, timeout)
		t.Logf("closed %v after the first byte (inspectTimeoutMs %d); server sent %d bytes", after.Round(time.Millisecond), inspectTimeoutMs, len(got))
		p.wantDelta(t, 1, "dicomgate_denied_total", "reason", "timeout")
		p.wantAuditReason(t, "timeout")
		p.wantNoUpstreamAttempt(t)
	})

	cases := []struct {
		name, reason string
		send         []byte
		halfClose    bool
	}{
		{"half an A-ASSOCIATE-RQ, then end of stream", "eof", rq[:len(rq)/2], true},
		{"an HTTP request on the DICOM port", "not_dicom", []byte("GET /studies HTTP/1.1\r\nHost: pacs\r\nAccept: */*\r\n\r\n"), false},
		{"an A-ASSOCIATE-RQ header announcing 2 MiB", "too_large", pduHeaderOnly(0x01, 2<<20), false},
		{"an A-ASSOCIATE-RQ whose items overrun the PDU", "malformed", overrunRQ(rq), false},
		// The parser differentials of issue 11: each is read differently by dcmtk (TestDcmtkReadsWhatTheFilterReads
		// shows how), so the filter refuses it as malformed and no backend ever sees it.
		{"calling AE CT1\\0SPOOF (dcmtk reads CT1)", "malformed",
			filtertable.WithRawAETitle(associateRQ(routeToOrthancAE, ct1AE), 26, ct1AE+"\x00SPOOF"), false},
		{"an abstract syntax with \\0junk appended (dcmtk reads the UID before the NUL)", "malformed",
			filtertable.WithAbstractSyntax(rq, uidVerification+"\x00junk"), false},
		{"two user identities (dcmtk uses the last)", "malformed",
			filtertable.WithUserInfoSubItems(rq, filtertable.UserIdentityItem(1, "alice", ""), filtertable.UserIdentityItem(1, "mallory", "")), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProbe(t, g)
			c, err := dialGateway(g, &certs.NoSAN)
			require.NoError(t, err)
			defer c.Close()
			start := time.Now()
			_, err = c.Write(tc.send)
			require.NoError(t, err)
			if tc.halfClose {
				require.NoError(t, c.closeWrite())
			}
			got, after, closed := c.waitClosed(start, 10*time.Second)
			if !closed {
				g.proc.dump(t)
			}
			require.True(t, closed, "gateway did not close the connection within %v", after)
			t.Logf("closed after %v; server sent %d bytes % x", after.Round(time.Millisecond), len(got), got)
			p.wantDelta(t, 1, "dicomgate_denied_total", "reason", tc.reason)
			p.wantAuditReason(t, tc.reason)
			p.wantNoUpstreamAttempt(t)
		})
	}
}

// pduHeaderOnly is a bare 6-byte PDU header announcing length bytes.
func pduHeaderOnly(typ byte, length uint32) []byte {
	h := []byte{typ, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(h[2:], length)
	return h
}

// overrunRQ copies a well-formed A-ASSOCIATE-RQ and makes its first variable item (the application context, at
// offset 74) claim more bytes than the PDU holds.
func overrunRQ(rq []byte) []byte {
	b := append([]byte(nil), rq...)
	binary.BigEndian.PutUint16(b[76:], 0xFFF0)
	return b
}
