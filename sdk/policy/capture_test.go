package policy

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// captureRQ decodes the first PDU of a real capture (an A-ASSOCIATE-RQ
// written by dcmtk or Orthanc) from sdk/pdu/testdata.
func captureRQ(t testing.TB, name string) *pdu.AssociateRQ {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "pdu", "testdata", name+".c2s.bin"))
	require.NoError(t, err)
	var f pdu.Framer
	first, _, err := f.Next(b)
	require.NoError(t, err, "%s: framing the first PDU", name)
	var d pdu.Decoder
	var rq pdu.AssociateRQ
	require.NoError(t, d.DecodeAssociateRQ(first, &rq), name)
	return &rq
}

func TestCaptureDecisions(t *testing.T) {
	example := mustLoad(t, string(readFile(t, "testdata/example.json")))
	byCalled := mustLoad(t, `{"rules":[
	  {"name":"qr","match":{"calledAETitles":["QRSCP"],"callingAETitles":["FINDSCU","MOVESCU"]},"action":"route","service":{"host":"qr.dicom.svc.cluster.local","port":11112}},
	  {"name":"orthanc","match":{"calledAETitles":["orthanc"]},"aeTitleCaseInsensitive":true,"action":"route","cluster":"outbound|4242||orthanc.dicom.svc.cluster.local"},
	  {"name":"scp","match":{"calledAETitles":["ANY-SCP","STORE SCP"],"sourceCIDRs":["127.0.0.0/8","::1"]},"action":"allow","rewriteCalledAETitle":"STORESCP"}]}`)
	loop := &Conn{Source: netip.MustParseAddr("127.0.0.1")}
	loop6 := &Conn{Source: netip.MustParseAddr("::1")}
	outside := &Conn{Source: netip.MustParseAddr("10.0.0.1")}
	tests := []struct {
		capture string
		policy  *Policy
		conn    *Conn
		action  Action
		rule    string
		cluster string
		reason  string
	}{
		// "STORE SCP" (embedded space) / "CALLING_AE_16CHR" (16 characters).
		{"echo_custom_ae", example, nil, ActionAllow, "custom-ae-echo", "", ""},
		// Username "alice" (type 1) and (type 2, with passcode), CT storage only.
		{"uid_username", example, nil, ActionAllow, "alice-ct-store", "", ""},
		{"uid_username_password", example, nil, ActionAllow, "alice-ct-store", "", ""},
		// A JWT (type 5) is not a username.
		{"uid_jwt", example, nil, ActionDeny, DefaultRule, "", ReasonCallingAENotRecognized},
		{"rj_calling_ae", example, nil, ActionDeny, "block-intruder", "", ReasonCallingAENotRecognized},
		{"echo_default", example, nil, ActionDeny, DefaultRule, "", ReasonCallingAENotRecognized},
		{"find_study", byCalled, nil, ActionRoute, "qr", "outbound|11112||qr.dicom.svc.cluster.local", ""},
		{"move_study", byCalled, nil, ActionRoute, "qr", "outbound|11112||qr.dicom.svc.cluster.local", ""},
		{"rj_limit", byCalled, nil, ActionDeny, DefaultRule, "", ReasonCallingAENotRecognized}, // QRSCP from ECHOSCU
		{"orthanc_echo", byCalled, nil, ActionRoute, "orthanc", "outbound|4242||orthanc.dicom.svc.cluster.local", ""},
		{"echo_default", byCalled, loop, ActionAllow, "scp", "", ""},
		{"echo_custom_ae", byCalled, loop6, ActionAllow, "scp", "", ""},
		{"echo_default", byCalled, outside, ActionDeny, DefaultRule, "", ReasonCallingAENotRecognized},
		{"rj_called_ae", byCalled, loop, ActionDeny, DefaultRule, "", ReasonCalledAENotRecognized}, // NOSUCHAE
		{"orthanc_rj_called_ae", byCalled, loop, ActionDeny, DefaultRule, "", ReasonCalledAENotRecognized},
	}
	for _, tc := range tests {
		t.Run(tc.capture, func(t *testing.T) {
			rq := captureRQ(t, tc.capture)
			d := tc.policy.Evaluate(rq, tc.conn)
			explain := tc.policy.Explain(rq, tc.conn, d)
			require.Equal(t, tc.action, d.Action, "%s: action of %+v\n%s", tc.capture, d, explain)
			require.Equal(t, tc.rule, d.Rule, "%s: rule of %+v\n%s", tc.capture, d, explain)
			require.Equal(t, tc.cluster, d.Cluster, "%s: cluster of %+v\n%s", tc.capture, d, explain)
			require.Equal(t, tc.reason, d.RejectReason, "%s: reject reason of %+v\n%s", tc.capture, d, explain)
			n := testing.AllocsPerRun(20, func() { tc.policy.Evaluate(rq, tc.conn) })
			require.Zero(t, n, "%s: Evaluate allocates %v times", tc.capture, n)
		})
	}
	d := byCalled.Evaluate(captureRQ(t, "echo_default"), loop)
	require.Equal(t, "STORESCP", d.RewriteCalledAETitle, "rewrite not reported: %+v", d)
}

// TestEveryCaptureByIndex drives a policy from the expected decode in
// sdk/pdu/testdata/index.json (written from the receiving tool's own log,
// independently of this code): for every capture whose first PDU is an
// A-ASSOCIATE-RQ, a rule naming exactly its called and calling AE titles
// and its proposed abstract syntaxes must allow it, and the same rule with
// another called AE title must not.
func TestEveryCaptureByIndex(t *testing.T) {
	var index struct {
		Captures []struct {
			Name     string `json:"name"`
			Expected struct {
				First *struct {
					Type    int    `json:"pdu_type"`
					Called  string `json:"called_ae"`
					Calling string `json:"calling_ae"`
					PCs     []struct {
						Abstract string `json:"abstract_syntax"`
					} `json:"presentation_contexts"`
				} `json:"c2s_first_pdu"`
			} `json:"expected"`
		} `json:"captures"`
	}
	require.NoError(t, json.Unmarshal(readFile(t, filepath.Join("..", "pdu", "testdata", "index.json")), &index))
	n := 0
	for _, c := range index.Captures {
		e := c.Expected.First
		if e == nil || e.Type != 1 {
			continue
		}
		raw := readFile(t, filepath.Join("..", "pdu", "testdata", c.Name+".c2s.bin"))
		if len(raw) == 0 || raw[0] != 0x01 {
			continue // TLS-wrapped (tls_echo): the RQ is inside encrypted records
		}
		n++
		t.Run(c.Name, func(t *testing.T) {
			var uids []string
			for _, pc := range e.PCs {
				uids = append(uids, pc.Abstract)
			}
			match := map[string]any{
				"calledAETitles":       []string{e.Called},
				"callingAETitles":      []string{e.Calling},
				"onlyAbstractSyntaxes": uids,
			}
			cfg, _ := json.Marshal(map[string]any{"rules": []any{map[string]any{"name": "exact", "match": match, "action": "allow"}}})
			p := mustLoad(t, string(cfg))
			rq := captureRQ(t, c.Name)
			d := p.Evaluate(rq, nil)
			require.Equal(t, ActionAllow, d.Action, "%s: %+v\n%s", c.Name, d, p.Explain(rq, nil, d))
			require.Equal(t, "exact", d.Rule, "%s: %+v\n%s", c.Name, d, p.Explain(rq, nil, d))
			match["calledAETitles"] = []string{e.Called + "X"}
			cfg, _ = json.Marshal(map[string]any{"rules": []any{map[string]any{"name": "other", "match": match, "action": "allow"}}})
			p = mustLoad(t, string(cfg))
			d = p.Evaluate(rq, nil)
			require.Equal(t, ActionDeny, d.Action, "%s with another called AE: %+v", c.Name, d)
			require.Equal(t, ReasonCalledAENotRecognized, d.RejectReason, "%s with another called AE: %+v", c.Name, d)
		})
	}
	require.GreaterOrEqual(t, n, 20, "only %d captures start with an A-ASSOCIATE-RQ; index.json changed?", n)
}
