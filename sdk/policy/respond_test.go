package policy

import (
	"testing"

	"github.com/dicomgate/dicomgate/sdk/rejectwire"
	"github.com/stretchr/testify/require"
)

// testRejectKey is what `openssl rand -base64 32` prints.
const testRejectKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

const rejectPolicy = `{"defaultAction": "deny", "defaultRespond": "reject", "defaultRejectReason": "no-reason-given",
  "rejectCluster": "outbound|11112||reject.dicom", "rejectKey": "` + testRejectKey + `",
  "rules": [
    {"name": "pacs", "match": {"calledAETitles": ["PACS"], "callingAETitles": ["CT1"]}, "action": "allow"},
    {"name": "rj", "match": {"callingAETitles": ["RJ"]}, "action": "deny", "respond": "reject"},
    {"name": "close", "match": {"callingAETitles": ["CL"]}, "action": "deny", "respond": "close"},
    {"name": "implicit", "match": {"callingAETitles": ["IM"]}, "action": "deny"}]}`

func TestRespondDecision(t *testing.T) {
	p := mustLoad(t, rejectPolicy)
	require.Equal(t, "outbound|11112||reject.dicom", p.RejectCluster())
	require.Equal(t, testRejectKey, p.RejectKey())
	for _, tc := range []struct {
		calling, called string
		respond         Respond
		reason          string
	}{
		{"CT1", "PACS", RespondClose, ""},
		{"RJ", "PACS", RespondReject, ReasonCallingAENotRecognized},
		{"CL", "PACS", RespondClose, ReasonCallingAENotRecognized},
		{"IM", "PACS", RespondClose, ReasonCallingAENotRecognized}, // a rule without respond closes
		{"OTHER", "PACS", RespondReject, ReasonNoReasonGiven},      // default: defaultRespond
	} {
		d := p.Evaluate(mkRQ(tc.called, tc.calling), &Conn{})
		require.Equal(t, tc.respond, d.Respond, tc.calling)
		require.Equal(t, tc.reason, d.RejectReason, tc.calling)
	}
	require.Equal(t, "reject", RespondReject.String())
	require.Equal(t, "close", RespondClose.String())
}

// TestRespondFallsBackToClose: without rejectCluster, or in mode
// immediate, "reject" is a close and Load warns at the path.
func TestRespondFallsBackToClose(t *testing.T) {
	for _, tc := range []struct {
		name, cfg, path, msg string
	}{
		{"no_cluster", `{"defaultAction": "deny", "defaultRespond": "reject"}`,
			"defaultRespond", `"reject" falls back to "close" without "rejectCluster"`},
		{"immediate", `{"upstreamConnect": "immediate", "rejectCluster": "rj", "rejectKey": "` + testRejectKey + `",
		  "rules": [{"name": "d", "action": "deny", "respond": "reject"}]}`,
			"rules[0].respond", `"reject" falls back to "close" with "upstreamConnect": "immediate"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, diags, err := Load([]byte(tc.cfg))
			require.NoError(t, err)
			require.Contains(t, diagStrings(diags, SeverityWarning), tc.path+": "+tc.msg)
			require.Equal(t, "", p.RejectCluster())
			require.Equal(t, "", p.RejectKey())
			d := p.Evaluate(mkRQ("PACS", "X"), &Conn{})
			require.Equal(t, ActionDeny, d.Action)
			require.Equal(t, RespondClose, d.Respond)
		})
	}
}

func diagStrings(diags []Diagnostic, sev Severity) []string {
	var out []string
	for _, d := range diags {
		if d.Severity == sev {
			out = append(out, d.String())
		}
	}
	return out
}

func TestRespondValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg, want string
	}{
		{`{"rules": [{"name": "a", "action": "allow", "respond": "reject"}]}`,
			`rules[0].respond: only allowed with action "deny" (this rule's action is "allow")`},
		{`{"defaultAction": "allow", "defaultRespond": "close"}`, `defaultRespond: only allowed when "defaultAction" is "deny"`},
		{`{"defaultRespond": "rj"}`, `defaultRespond: `},
		{`{"rejectCluster": "rj"}`, `rejectCluster: needs "rejectKey"`},
		{`{"rejectCluster": "a b", "rejectKey": "` + testRejectKey + `"}`, `rejectCluster: "a b" is not a cluster name`},
		{`{"rejectCluster": "rj", "rejectKey": "AAEC"}`, "rejectKey: " + string(rejectwire.ErrKey) + ", got 4 characters"},
		{`{"rejectCluster": "rj", "rejectKey": "` + testRejectKey[:43] + ` "}`, "rejectKey: " + string(rejectwire.ErrKey)},
	} {
		_, diags, err := Load([]byte(tc.cfg))
		require.Error(t, err, tc.cfg)
		found := false
		for _, s := range diagStrings(diags, SeverityError) {
			if len(s) >= len(tc.want) && s[:len(tc.want)] == tc.want {
				found = true
			}
		}
		require.True(t, found, "%s: want an error starting with %q, got %v", tc.cfg, tc.want, diags)
	}
	_, diags, err := Load([]byte(`{"rejectKey": "` + testRejectKey + `"}`))
	require.NoError(t, err)
	require.Equal(t, []string{`rejectKey: is unused without "rejectCluster"`}, diagStrings(diags, SeverityWarning))
}

// TestExplainSaysWhatTheClientReceives: the explanation says whether the
// rejector answers or the connection is closed, and why it is closed.
func TestExplainSaysWhatTheClientReceives(t *testing.T) {
	for _, tc := range []struct {
		cfg, calling, want string
	}{
		{rejectPolicy, "RJ", `decision: deny: the rejector (rejectCluster "outbound|11112||reject.dicom") answers with A-ASSOCIATE-RJ calling-ae-not-recognized (result 1, source 1, reason 3)`},
		{rejectPolicy, "CL", `decision: deny: the connection is closed, no A-ASSOCIATE-RJ is sent ("respond" is "close"); the reject reason is calling-ae-not-recognized`},
		{`{"defaultRespond": "reject"}`, "X", `decision: deny: the connection is closed, no A-ASSOCIATE-RJ is sent ("respond": "reject" needs "rejectCluster")`},
		{`{"upstreamConnect": "immediate", "defaultRespond": "reject", "rejectCluster": "rj", "rejectKey": "` + testRejectKey + `"}`, "X",
			`decision: deny: the connection is closed, no A-ASSOCIATE-RJ is sent ("respond": "reject" needs "upstreamConnect": "after-decision")`},
	} {
		p := mustLoad(t, tc.cfg)
		rq := mkRQ("PACS", tc.calling)
		d := p.Evaluate(rq, &Conn{})
		require.Contains(t, p.Explain(rq, &Conn{}, d), tc.want, tc.cfg)
	}
}

// TestSummaryShowsRespond: `dicomgate check` shows how each deny is carried
// out.
func TestSummaryShowsRespond(t *testing.T) {
	s := mustLoad(t, rejectPolicy).Summary()
	for _, want := range []string{
		`rejectCluster: outbound|11112||reject.dicom (denies that say "respond": "reject" get an A-ASSOCIATE-RJ from the rejector)`,
		"[1] rj: deny (reason chosen like the default: called or calling AE not recognized), answered with an A-ASSOCIATE-RJ by the rejector\n",
		"[2] close: deny (reason chosen like the default: called or calling AE not recognized), connection closed\n",
		"default: deny (no-reason-given), answered with an A-ASSOCIATE-RJ by the rejector\n",
	} {
		require.Contains(t, s, want)
	}
	s = mustLoad(t, `{"defaultRespond": "reject"}`).Summary()
	require.Contains(t, s, "rejectCluster: none (every deny closes the connection)\n")
	require.Contains(t, s, `connection closed ("respond": "reject" falls back to close)`)
}
