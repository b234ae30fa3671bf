package defaults

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/sdk/pdu"
	"github.com/dicomgate/dicomgate/sdk/policy"
)

func rq(called, calling string, abstract ...string) *pdu.AssociateRQ {
	r := &pdu.AssociateRQ{
		CalledAETitleRaw:   []byte(called),
		CallingAETitleRaw:  []byte(calling),
		ApplicationContext: []byte("1.2.840.10008.3.1.1.1"),
	}
	for i, a := range abstract {
		r.PresentationContexts = append(r.PresentationContexts, pdu.PresentationContextRQ{
			ID: uint8(2*i + 1), AbstractSyntax: []byte(a), TransferSyntaxes: [][]byte{[]byte("1.2.840.10008.1.2")}})
	}
	// Round-trip through the wire form so AE titles are padded as on the wire.
	var out pdu.AssociateRQ
	if err := (&pdu.Decoder{}).DecodeAssociateRQ(r.AppendEncode(nil), &out); err != nil {
		panic(err)
	}
	return &out
}

// The embedded demo policy loads without diagnostics and makes the decisions
// the commands printed by `dicomgate serve` demonstrate.
func TestDemoPolicy(t *testing.T) {
	pol, diags, err := policy.Load(Policy)
	require.NoError(t, err, "demo policy does not load")
	require.Empty(t, diags, "demo policy diagnostics")
	require.Equal(t, "after-decision", pol.UpstreamConnect().String(), "routing needs upstreamConnect after-decision")
	const echo, ct = "1.2.840.10008.1.1", "1.2.840.10008.5.1.4.1.1.2"
	conn := &policy.Conn{}
	for _, tc := range []struct {
		rq      *pdu.AssociateRQ
		action  string
		cluster string
	}{
		{rq(AllowAETitle, "ECHOSCU", echo), "allow", ""},
		{rq(AllowAETitle, "STORESCU", ct), "deny", ""},
		{rq(AETitleA, "ECHOSCU", echo), "route", ClusterA},
		{rq(AETitleB, "STORESCU", ct), "route", ClusterB},
		{rq(AETitleA, "INTRUDER", echo), "deny", ""},
		{rq("OTHER", "ECHOSCU", echo), "deny", ""},
	} {
		t.Run(fmt.Sprintf("%s->%s", tc.rq.CallingAETitle(), tc.rq.CalledAETitle()), func(t *testing.T) {
			d := pol.Evaluate(tc.rq, conn)
			require.Equal(t, tc.action, d.Action.String(), "%s -> %s: action (cluster %q)", tc.rq.CallingAETitle(), tc.rq.CalledAETitle(), d.Cluster)
			require.Equal(t, tc.cluster, d.Cluster, "%s -> %s: cluster (action %s)", tc.rq.CallingAETitle(), tc.rq.CalledAETitle(), d.Action)
		})
	}
}
