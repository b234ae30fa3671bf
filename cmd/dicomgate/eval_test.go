package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

const evalCaptures = "../../sdk/pdu/testdata"

// runEvalFlags runs eval with f and returns stdout, stderr and the exit code.
func runEvalFlags(t *testing.T, f evalFlags) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runEval(nil, &out, &errOut, f)
	if err != nil {
		var ee *exitError
		if !errors.As(err, &ee) {
			t.Fatalf("error %v is not an exitError", err)
		}
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
	if code != 0 && code != 1 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value:\n%s", out)
	}
	if wantCode := map[bool]int{true: 1, false: 0}[m["action"] == "deny"]; code != wantCode {
		t.Fatalf("action %v: exit %d, want %d (%s)", m["action"], code, wantCode, errOut)
	}
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
			if !reflect.DeepEqual(m, tc.want) {
				t.Errorf("got %v, want %v", m, tc.want)
			}
			for _, w := range tc.expl {
				if !strings.Contains(expl, w) {
					t.Errorf("explanation lacks %q:\n%s", w, expl)
				}
			}
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
	if m["action"] != "route" || m["rule"] != "ct-v6" || m["cluster"] != "outbound|11112|blue|pacs-a.dicom.svc.cluster.local" || m["rewriteCalledAETitle"] != "ORTHANC" {
		t.Fatalf("got %v", m)
	}
	if _, ok := m["dryRun"]; ok {
		t.Error("dryRun present in enforce mode")
	}
	// Without the certificate the same association falls to the default.
	f.peerURISAN = ""
	m = evalJSON(t, f)
	if m["action"] != "deny" || !strings.Contains(m["explanation"].(string), "needs a client certificate (mTLS)") {
		t.Fatalf("without mTLS: %v", m)
	}
	// Bare IP source (no port).
	f.peerURISAN, f.source = "spiffe://hospital/modality/ct1", "fd00::7"
	if m = evalJSON(t, f); m["action"] != "route" {
		t.Fatalf("bare IP source: %v", m)
	}
}

func TestEvalJSONKeys(t *testing.T) {
	stream := filepath.Join(evalCaptures, "echo_default.c2s.bin")
	m := evalJSON(t, evalFlags{config: filepath.Join(policyTestdata, "example.json"), stream: stream})
	if got := strings.Join(sortedKeys(m), ","); got != "action,cluster,explanation,rejectReason,respond,rewriteCalledAETitle,rule" {
		t.Errorf("keys %s", got)
	}
	m = evalJSON(t, evalFlags{config: filepath.Join(policyTestdata, "wasmplugin.yaml"), stream: stream})
	if got := strings.Join(sortedKeys(m), ","); got != "action,cluster,dryRun,explanation,rejectReason,rewriteCalledAETitle,rule" {
		t.Errorf("dry-run keys %s", got)
	}
	if m["dryRun"] != true || m["action"] != "deny" || m["rule"] != "everything-else" || m["rejectReason"] != "called-ae-not-recognized" {
		t.Errorf("dry-run decision %v", m)
	}
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
	if code != 1 {
		t.Fatalf("deny: exit %d, want 1", code)
	}
	for _, want := range []string{
		"action: deny\n",
		"rule: (none: default action)\n",
		"rejectReason: calling-ae-not-recognized (A-ASSOCIATE-RJ result 1, source 1, reason 3)\n",
		"respond: close (the connection is closed; the client receives no A-ASSOCIATE-RJ)\n",
		"explanation:\n  association: called AE \"ANY-SCP\", calling AE \"ECHOSCU\", source 10.0.0.9, no client certificate\n",
		`  rules[0] "ct-to-pacs-a" did not match: called AE "ANY-SCP" is not in ["PACS_A"]`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
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
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d (want %d), stderr+error %q lacks %q; stdout %q", code, tc.code, errOut, tc.want, out)
			}
			if out != "" {
				t.Errorf("stdout not empty on error: %q", out)
			}
		})
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEvalRegistered(t *testing.T) {
	var out bytes.Buffer
	rootCmd.SetArgs([]string{"eval", "--config", filepath.Join(policyTestdata, "example.json"),
		"--stream", filepath.Join(evalCaptures, "uid_username.c2s.bin"), "--json"})
	rootCmd.SetOut(&out)
	defer func() { rootCmd.SetOut(nil); rootCmd.SetArgs(nil) }()
	if err := rootCmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"rule":"alice-ct-store"`) {
		t.Fatalf("output %s", out.String())
	}
}
