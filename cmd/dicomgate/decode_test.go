package main

import (
	"encoding/json"
	"errors"
	"github.com/stretchr/testify/require"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

const captures = "../../sdk/pdu/testdata"

// runDecodeCmd runs `dicomgate decode ARGS...` in-process and returns its
// stdout and, on failure, an exitError holding what it printed on stderr.
func runDecodeCmd(t *testing.T, stdin []byte, args ...string) (string, error) {
	t.Helper()
	out, errOut, code := runCLI(t, stdin, append([]string{"decode", "--max-pdu-length=1048576"}, args...)...)
	if code != 0 {
		return out, &exitError{code, errors.New(strings.TrimSpace(errOut))}
	}
	return out, nil
}

func decodeJSON(t *testing.T, file string) []map[string]any {
	t.Helper()
	out, err := runDecodeCmd(t, nil, "--json", "--strict=false", filepath.Join(captures, file))
	if err != nil {
		t.Fatalf("decode --json %s: %v", file, err)
	}
	var objs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%s: line %q is not JSON: %v", file, line, err)
		}
		objs = append(objs, m)
	}
	return objs
}

func keys(m map[string]any) string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return strings.Join(k, ",")
}

func TestDecodeJSONAssociateRQ(t *testing.T) {
	objs := decodeJSON(t, "uid_username_password.c2s.bin")
	if len(objs) != 4 {
		t.Fatalf("%d PDUs, want 4 (RQ, 2 P-DATA-TF, release RQ)", len(objs))
	}
	rq := objs[0]
	if got, want := keys(rq), "applicationContext,calledAETitle,callingAETitle,length,offset,pduType,presentationContexts,protocolVersion,type,userInformation"; got != want {
		t.Errorf("RQ keys %s, want %s", got, want)
	}
	if rq["type"] != "A-ASSOCIATE-RQ" || rq["pduType"] != 1.0 || rq["length"] != 318.0 || rq["offset"] != 0.0 ||
		rq["calledAETitle"] != "ANY-SCP" || rq["callingAETitle"] != "STORESCU" || rq["protocolVersion"] != 1.0 {
		t.Errorf("RQ = %v", rq)
	}
	pcs := rq["presentationContexts"].([]any)
	pc1 := pcs[1].(map[string]any)
	if len(pcs) != 2 || pc1["id"] != 3.0 || pc1["abstractSyntax"] != "1.2.840.10008.5.1.4.1.1.2" ||
		len(pc1["transferSyntaxes"].([]any)) != 2 || pc1["transferSyntaxes"].([]any)[1] != "1.2.840.10008.1.2" {
		t.Errorf("presentation contexts = %v", pcs)
	}
	ui := rq["userInformation"].(map[string]any)
	if ui["maxPDULength"] != 16384.0 || ui["implementationClassUID"] != "1.2.276.0.7230010.3.0.3.6.7" || ui["implementationVersionName"] != "OFFIS_DCMTK_367" {
		t.Errorf("user information = %v", ui)
	}
	id := ui["userIdentity"].(map[string]any)
	if got := keys(id); got != "positiveResponseRequested,primaryField,type" || id["type"] != 2.0 || id["primaryField"] != "alice" {
		t.Errorf("user identity = %v", id)
	}
	cmd := objs[1]["pdvs"].([]any)[0].(map[string]any)
	if cmd["commandField"] != "C-STORE-RQ" || cmd["sopClassUID"] != "1.2.840.10008.5.1.4.1.1.2" || cmd["command"] != true || cmd["last"] != true || cmd["contextID"] != 1.0 {
		t.Errorf("command PDV = %v", cmd)
	}
	data := objs[2]["pdvs"].([]any)[0].(map[string]any)
	if got := keys(data); got != "command,contextID,last,length" || data["length"] != 8660.0 {
		t.Errorf("data PDV = %v", data)
	}
	if got := keys(objs[3]); got != "length,offset,pduType,type" || objs[3]["type"] != "A-RELEASE-RQ" || objs[3]["offset"] != 9138.0 {
		t.Errorf("release RQ = %v", objs[3])
	}
}

func TestDecodeJSONOtherPDUs(t *testing.T) {
	rj := decodeJSON(t, "rj_limit.s2c.bin")[0]
	if got := keys(rj); got != "length,offset,pduType,reason,result,source,type" || rj["result"] != 2.0 || rj["source"] != 3.0 || rj["reason"] != 2.0 {
		t.Errorf("RJ = %v", rj)
	}
	objs := decodeJSON(t, "echo_abort.c2s.bin")
	ab := objs[len(objs)-1]
	if got := keys(ab); got != "length,offset,pduType,reason,source,type" || ab["type"] != "A-ABORT" || ab["source"] != 0.0 {
		t.Errorf("A-ABORT = %v", ab)
	}
	ac := decodeJSON(t, "find_unsupported.s2c.bin")[0]
	pc := ac["presentationContexts"].([]any)[0].(map[string]any)
	if ac["type"] != "A-ASSOCIATE-AC" || keys(pc) != "id,result" || pc["result"] != 3.0 {
		t.Errorf("AC = %v", ac)
	}
	echo := decodeJSON(t, "echo_default.s2c.bin")
	acc := echo[0]["presentationContexts"].([]any)[0].(map[string]any)
	rsp := echo[1]["pdvs"].([]any)[0].(map[string]any)
	if acc["transferSyntax"] != "1.2.840.10008.1.2" || rsp["commandField"] != "C-ECHO-RSP" || rsp["sopClassUID"] != "1.2.840.10008.1.1" {
		t.Errorf("echo AC %v / RSP %v", acc, rsp)
	}
}

// TestDecodeNeverPrintsSecrets decodes the user-identity captures in both
// output modes: neither the passcode nor the JWT may appear.
func TestDecodeNeverPrintsSecrets(t *testing.T) {
	for _, file := range []string{"uid_username_password.c2s.bin", "uid_jwt.c2s.bin"} {
		raw, err := os.ReadFile(filepath.Join(captures, file))
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := (&pdu.Framer{}).Next(raw)
		if err != nil {
			t.Fatal(err)
		}
		var rq pdu.AssociateRQ
		if err := (&pdu.Decoder{}).DecodeAssociateRQ(p, &rq); err != nil {
			t.Fatal(err)
		}
		id := rq.UserInformation.UserIdentity
		secret := string(id.Secondary)
		if id.Type == pdu.UserIdentityJWT {
			secret = string(id.Primary)
		}
		if len(secret) < 5 {
			t.Fatalf("%s: no secret found to look for (%q)", file, secret)
		}
		for _, mode := range []string{"--json=true", "--json=false"} {
			out, err := runDecodeCmd(t, nil, mode, filepath.Join(captures, file))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, secret) || strings.Contains(out, secret[:len(secret)/2]) {
				t.Errorf("%s %s: output contains the secret", file, mode)
			}
			if !strings.Contains(out, "user identity") && !strings.Contains(out, "userIdentity") {
				t.Errorf("%s %s: output does not show the user identity at all", file, mode)
			}
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(captures, "echo_default.c2s.bin"))
	if err != nil {
		t.Fatal(err)
	}
	// Truncated inside the P-DATA-TF at 211: the RQ is still printed.
	out, err := runDecodeCmd(t, raw[:250], "--json=false", "-")
	if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), "stdin: offset 211: input ends inside P-DATA-TF: have 39 of 80 bytes") {
		t.Fatalf("truncated: exit %d, err %v", exitCode(err), err)
	}
	if !strings.Contains(out, "@0 A-ASSOCIATE-RQ") || !strings.Contains(out, `called AE title:     "ANY-SCP"`) {
		t.Errorf("PDUs before the error not printed:\n%s", out)
	}
	// A corrupt PDV length inside the second PDU: absolute offset in the error.
	bad := append([]byte{}, raw...)
	bad[217+3] = 0xff
	out, err = runDecodeCmd(t, bad, "--json=true", "-")
	if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), "stdin: offset 217 (in the P-DATA-TF at offset 211): PDV item: length 255 exceeds remaining 70 bytes") {
		t.Fatalf("bad PDV: exit %d, err %v", exitCode(err), err)
	}
	if n := strings.Count(out, "\n"); n != 1 || !strings.Contains(out, `"type":"A-ASSOCIATE-RQ"`) {
		t.Errorf("want exactly the RQ line before the error, got:\n%s", out)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
	// TLS bytes and HTTP.
	_, err = runDecodeCmd(t, nil, "--json=false", filepath.Join(captures, "tls_client_plain_server.c2s.bin"))
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "tls_client_plain_server.c2s.bin: offset 0: PDU type: byte 0x16 looks like a TLS record") {
		t.Fatalf("TLS: %v", err)
	}
	_, err = runDecodeCmd(t, []byte("GET / HTTP/1.1\r\n\r\n"), "--json=false", "-")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "looks like HTTP") {
		t.Fatalf("HTTP: %v", err)
	}
	_, err = runDecodeCmd(t, nil, "--json=false", "--max-pdu-length=1000", filepath.Join(captures, "echo_ppc128_pts38.c2s.bin"))
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "length 129691 exceeds the maximum of 1000 bytes (raise --max-pdu-length if the peer legitimately sends larger PDUs)") {
		t.Fatalf("--max-pdu-length: %v", err)
	}
	_, err = runDecodeCmd(t, nil, "--json=false", filepath.Join(t.TempDir(), "missing.bin"))
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "missing.bin") {
		t.Fatalf("missing file: %v", err)
	}
}

// TestDecodeAllCaptures runs the text decoder over every plain capture.
func TestDecodeAllCaptures(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(captures, "*.bin"))
	if len(files) < 50 {
		t.Fatalf("only %d capture files", len(files))
	}
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		out, err := runDecodeCmd(t, nil, "--json=false", f)
		if len(raw) == 0 {
			if exitCode(err) != 2 || !strings.Contains(err.Error(), "is empty") {
				t.Errorf("%s: empty capture: %v", f, err)
			}
			continue
		}
		if raw[0] == 0x16 {
			if err == nil {
				t.Errorf("%s: TLS bytes decoded without error", f)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if !strings.HasPrefix(out, "@0 ") {
			t.Errorf("%s: output does not start with the first PDU:\n%.200s", f, out)
		}
	}
}

// decode shows an A-ASSOCIATE-RQ the filter refuses as ambiguous (here a NUL inside the calling AE title, which
// dcmtk reads only up to the NUL) with the refusal, while eval keeps refusing it.
func TestDecodeShowsAmbiguousRQWithTheRefusal(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(captures, "echo_default.c2s.bin"))
	require.NoError(t, err)
	spoof := append([]byte{}, raw...)
	copy(spoof[26:42], "CT1\x00SPOOF       ")
	out, err := runDecodeCmd(t, spoof, "--json=false", "-")
	require.NoError(t, err)
	require.Contains(t, out, "REFUSED by the filter as malformed")
	require.Contains(t, out, "calling AE title: NUL at position 3")
	require.Contains(t, out, `calling AE title:    "CT1\x00SPOOF"`)
	out, err = runDecodeCmd(t, spoof, "--json=true", "-")
	require.NoError(t, err)
	require.Contains(t, out, `"refusedAsMalformed":"pdu: offset 29: A-ASSOCIATE-RQ calling AE title: NUL at position 3`)
}
