package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const evalCaptures = "../../sdk/pdu/testdata"

// runEvalFlags runs eval with f and returns stdout, stderr and the exit code.
func runEvalFlags(t *testing.T, f evalFlags) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runEval(nil, &out, &errOut, f)
	if err != nil {
		var ee *exitError
		require.ErrorAs(t, err, &ee, "error %v is not an exitError", err)
		return out.String(), errOut.String() + err.Error(), ee.code
	}
	return out.String(), errOut.String(), 0
}

// evalJSON runs eval -o json and checks the exit status agrees with the
// decision: 1 for deny, 0 otherwise.
func evalJSON(t *testing.T, f evalFlags) map[string]any {
	t.Helper()
	f.output = formatJSON
	out, errOut, code := runEvalFlags(t, f)
	require.Contains(t, []int{0, 1}, code, "exit %d: %s", code, errOut)
	dec := json.NewDecoder(strings.NewReader(out))
	var m map[string]any
	require.NoError(t, dec.Decode(&m), "output is not JSON:\n%s", out)
	require.False(t, dec.More(), "more than one JSON value:\n%s", out)
	wantCode := map[bool]int{true: 1, false: 0}[m["action"] == "deny"]
	require.Equal(t, wantCode, code, "action %v: exit status (%s)", m["action"], errOut)
	return m
}

func TestEvalJSONOnCaptures(t *testing.T) {
	example := filepath.Join(policyTestdata, "example.json")
	tests := []struct {
		name string
		f    evalFlags
		want map[string]any // every key but explanation
		expl []string
	}{
		{"custom AE titles", evalFlags{config: example, stream: "echo_custom_ae.c2s.bin"},
			map[string]any{"action": "allow", "rule": "custom-ae-echo", "cluster": "", "rewriteCalledAETitle": "", "rejectReason": ""},
			[]string{`called AE "STORE SCP" matches "STORE SCP"`, `calling AE "CALLING_AE_16CHR" matches "CALLING_AE_16CHR"`}},
		{"username alice", evalFlags{config: example, stream: "uid_username.c2s.bin"},
			map[string]any{"action": "allow", "rule": "alice-ct-store", "cluster": "", "rewriteCalledAETitle": "", "rejectReason": ""},
			[]string{`username "alice" is listed`}},
		{"default deny", evalFlags{config: example, stream: "echo_default.c2s.bin", source: "192.168.1.1:5000"},
			map[string]any{"action": "deny", "rule": "default", "cluster": "", "rewriteCalledAETitle": "", "rejectReason": "calling-ae-not-recognized", "respond": "close"},
			[]string{"no rule matched (5 rules)", "source 192.168.1.1"}},
		{"deny rule", evalFlags{config: example, stream: "rj_calling_ae.c2s.bin"},
			map[string]any{"action": "deny", "rule": "block-intruder", "cluster": "", "rewriteCalledAETitle": "", "rejectReason": "calling-ae-not-recognized", "respond": "close"},
			[]string{`calling AE "INTRUDER" matches "INTRUDER"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.stream = filepath.Join(evalCaptures, tc.f.stream)
			m := evalJSON(t, tc.f)
			expl, _ := m["explanation"].(string)
			delete(m, "explanation")
			require.Equal(t, tc.want, m, "every key but explanation")
			requireContainsAll(t, "explanation", expl, tc.expl...)
		})
	}
}

func TestEvalRouteWithSourceAndPeer(t *testing.T) {
	cfg := writeTemp(t, "p.yaml", `
rules:
  - name: ct-v6
    match:
      calledAETitles: [ANY-SCP]
      sourceCIDRs: ["fd00::/8"]
      peerURISANs: ["spiffe://hospital/modality/ct1"]
    action: route
    service: {host: pacs-a.dicom.svc.cluster.local, port: 11112, subset: blue}
    rewriteCalledAETitle: ORTHANC
`)
	f := evalFlags{config: cfg, stream: filepath.Join(evalCaptures, "echo_default.c2s.bin"), source: "[fd00::7]:40000", peerURISAN: "spiffe://hospital/modality/ct1"}
	m := evalJSON(t, f)
	requireFields(t, "eval", m, map[string]any{"action": "route", "rule": "ct-v6",
		"cluster": "outbound|11112|blue|pacs-a.dicom.svc.cluster.local", "rewriteCalledAETitle": "ORTHANC"})
	require.NotContains(t, m, "dryRun", "dryRun present in enforce mode")
	// Without the certificate the same association falls to the default.
	f.peerURISAN = ""
	m = evalJSON(t, f)
	requireFields(t, "without mTLS", m, map[string]any{"action": "deny"})
	require.Contains(t, m["explanation"], "needs a client certificate (mTLS)", "without mTLS: %v", m)
	// Bare IP source (no port).
	f.peerURISAN, f.source = "spiffe://hospital/modality/ct1", "fd00::7"
	m = evalJSON(t, f)
	requireFields(t, "bare IP source", m, map[string]any{"action": "route"})
}

func TestEvalJSONKeys(t *testing.T) {
	stream := filepath.Join(evalCaptures, "echo_default.c2s.bin")
	m := evalJSON(t, evalFlags{config: filepath.Join(policyTestdata, "example.json"), stream: stream})
	require.Equal(t, "action,cluster,explanation,rejectReason,respond,rewriteCalledAETitle,rule", strings.Join(sortedKeys(m), ","), "keys")
	m = evalJSON(t, evalFlags{config: filepath.Join(policyTestdata, "wasmplugin.yaml"), stream: stream})
	require.Equal(t, "action,cluster,dryRun,explanation,rejectReason,rewriteCalledAETitle,rule", strings.Join(sortedKeys(m), ","), "dry-run keys")
	requireFields(t, "dry-run decision", m, map[string]any{"dryRun": true, "action": "deny", "rule": "everything-else", "rejectReason": "called-ae-not-recognized"})
}

func sortedKeys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

func TestEvalText(t *testing.T) {
	out, _, code := runEvalFlags(t, evalFlags{config: filepath.Join(policyTestdata, "example.json"),
		stream: filepath.Join(evalCaptures, "echo_default.c2s.bin"), source: "10.0.0.9"})
	require.Equal(t, 1, code, "deny: exit status")
	requireContainsAll(t, "output", out,
		"action: deny\n",
		"rule: (none: default action)\n",
		"rejectReason: calling-ae-not-recognized (A-ASSOCIATE-RJ result 1, source 1, reason 3)\n",
		"respond: close (the connection is closed; the client receives no A-ASSOCIATE-RJ)\n",
		"explanation:\n  association: called AE \"ANY-SCP\", calling AE \"ECHOSCU\", source 10.0.0.9, no client certificate\n",
		`  rules[0] "ct-to-pacs-a" did not match: called AE "ANY-SCP" is not in ["PACS_A"]`,
	)
}

func TestEvalErrors(t *testing.T) {
	example := filepath.Join(policyTestdata, "example.json")
	rq := filepath.Join(evalCaptures, "echo_default.c2s.bin")
	truncated := writeTemp(t, "trunc.bin", string(mustRead(t, rq)[:100]))
	big := writeTemp(t, "small.json", `{"maxAssociateRQBytes":1024}`)
	tests := []struct {
		name string
		f    evalFlags
		code int
		want string
	}{
		{"no config", evalFlags{stream: rq}, 2, "missing CONFIG"},
		{"no stream", evalFlags{config: example}, 2, "missing STREAM"},
		{"bad source", evalFlags{config: example, stream: rq, source: "10.0.0"}, 2, `--source "10.0.0": not an IP address or IP:PORT`},
		{"invalid policy", evalFlags{config: filepath.Join(policyTestdata, "invalid.json"), stream: rq}, 2,
			`error: rules[0].match.sourceCIDRs[0]: "10.0.0.0/33" is not a CIDR`},
		{"acceptor direction", evalFlags{config: example, stream: filepath.Join(evalCaptures, "echo_default.s2c.bin")}, 2,
			"the first PDU is A-ASSOCIATE-AC (type 0x02), not an A-ASSOCIATE-RQ (0x01)"},
		{"truncated", evalFlags{config: example, stream: truncated}, 2, "have 100 of 211 bytes (truncated capture?)"},
		{"tls bytes", evalFlags{config: example, stream: filepath.Join(evalCaptures, "tls_client_plain_server.c2s.bin")}, 2, "looks like a TLS record"},
		{"over maxAssociateRQBytes", evalFlags{config: big, stream: filepath.Join(evalCaptures, "echo_ppc128_pts38.c2s.bin")}, 2,
			"more than the policy's maxAssociateRQBytes (1024)"},
		{"missing stream file", evalFlags{config: example, stream: filepath.Join(t.TempDir(), "nope.bin")}, 2, "STREAM: open"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runEvalFlags(t, tc.f)
			require.Equal(t, tc.code, code, "exit status; stderr+error %q; stdout %q", errOut, out)
			require.Contains(t, errOut, tc.want, "stderr+error; stdout %q", out)
			require.Empty(t, out, "stdout not empty on error")
		})
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return b
}

func TestEvalRegistered(t *testing.T) {
	var out bytes.Buffer
	rootCmd.SetArgs([]string{"eval", "--config", filepath.Join(policyTestdata, "example.json"),
		"--stream", filepath.Join(evalCaptures, "uid_username.c2s.bin"), "--json"})
	rootCmd.SetOut(&out)
	defer func() { rootCmd.SetOut(nil); rootCmd.SetArgs(nil) }()
	require.NoError(t, rootCmd.Execute())
	require.Contains(t, out.String(), `"rule":"alice-ct-store"`, "output")
}
