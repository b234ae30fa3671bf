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
	require.NoError(t, err, "decode --json %s", file)
	var objs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "%s: line %q is not JSON", file, line)
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

// requireFields requires that m holds every key of want with that value
// (JSON numbers decode as float64); what names m in the failure message.
func requireFields(t *testing.T, what string, m, want map[string]any) {
	t.Helper()
	got := make(map[string]any, len(want))
	for k := range want {
		if v, ok := m[k]; ok {
			got[k] = v
		}
	}
	require.Equal(t, want, got, "%s = %v", what, m)
}

func TestDecodeJSONAssociateRQ(t *testing.T) {
	objs := decodeJSON(t, "uid_username_password.c2s.bin")
	require.Len(t, objs, 4, "%d PDUs, want 4 (RQ, 2 P-DATA-TF, release RQ)", len(objs))
	rq := objs[0]
	require.Equal(t, "applicationContext,calledAETitle,callingAETitle,length,offset,pduType,presentationContexts,protocolVersion,type,userInformation", keys(rq), "RQ keys")
	requireFields(t, "RQ", rq, map[string]any{"type": "A-ASSOCIATE-RQ", "pduType": 1.0, "length": 318.0, "offset": 0.0,
		"calledAETitle": "ANY-SCP", "callingAETitle": "STORESCU", "protocolVersion": 1.0})
	pcs := rq["presentationContexts"].([]any)
	require.Len(t, pcs, 2, "presentation contexts = %v", pcs)
	pc1 := pcs[1].(map[string]any)
	requireFields(t, "presentation context 1", pc1, map[string]any{"id": 3.0, "abstractSyntax": "1.2.840.10008.5.1.4.1.1.2"})
	ts := pc1["transferSyntaxes"].([]any)
	require.Len(t, ts, 2, "presentation contexts = %v", pcs)
	require.Equal(t, "1.2.840.10008.1.2", ts[1], "presentation contexts = %v", pcs)
	ui := rq["userInformation"].(map[string]any)
	requireFields(t, "user information", ui, map[string]any{"maxPDULength": 16384.0,
		"implementationClassUID": "1.2.276.0.7230010.3.0.3.6.7", "implementationVersionName": "OFFIS_DCMTK_367"})
	id := ui["userIdentity"].(map[string]any)
	require.Equal(t, "positiveResponseRequested,primaryField,type", keys(id), "user identity = %v", id)
	requireFields(t, "user identity", id, map[string]any{"type": 2.0, "primaryField": "alice"})
	cmd := objs[1]["pdvs"].([]any)[0].(map[string]any)
	requireFields(t, "command PDV", cmd, map[string]any{"commandField": "C-STORE-RQ", "sopClassUID": "1.2.840.10008.5.1.4.1.1.2",
		"command": true, "last": true, "contextID": 1.0})
	data := objs[2]["pdvs"].([]any)[0].(map[string]any)
	require.Equal(t, "command,contextID,last,length", keys(data), "data PDV = %v", data)
	requireFields(t, "data PDV", data, map[string]any{"length": 8660.0})
	require.Equal(t, "length,offset,pduType,type", keys(objs[3]), "release RQ = %v", objs[3])
	requireFields(t, "release RQ", objs[3], map[string]any{"type": "A-RELEASE-RQ", "offset": 9138.0})
}

func TestDecodeJSONOtherPDUs(t *testing.T) {
	rj := decodeJSON(t, "rj_limit.s2c.bin")[0]
	require.Equal(t, "length,offset,pduType,reason,result,source,type", keys(rj), "RJ = %v", rj)
	requireFields(t, "RJ", rj, map[string]any{"result": 2.0, "source": 3.0, "reason": 2.0})
	objs := decodeJSON(t, "echo_abort.c2s.bin")
	ab := objs[len(objs)-1]
	require.Equal(t, "length,offset,pduType,reason,source,type", keys(ab), "A-ABORT = %v", ab)
	requireFields(t, "A-ABORT", ab, map[string]any{"type": "A-ABORT", "source": 0.0})
	ac := decodeJSON(t, "find_unsupported.s2c.bin")[0]
	pc := ac["presentationContexts"].([]any)[0].(map[string]any)
	requireFields(t, "AC", ac, map[string]any{"type": "A-ASSOCIATE-AC"})
	require.Equal(t, "id,result", keys(pc), "AC = %v", ac)
	requireFields(t, "AC presentation context", pc, map[string]any{"result": 3.0})
	echo := decodeJSON(t, "echo_default.s2c.bin")
	acc := echo[0]["presentationContexts"].([]any)[0].(map[string]any)
	rsp := echo[1]["pdvs"].([]any)[0].(map[string]any)
	requireFields(t, "echo AC presentation context", acc, map[string]any{"transferSyntax": "1.2.840.10008.1.2"})
	requireFields(t, "echo RSP", rsp, map[string]any{"commandField": "C-ECHO-RSP", "sopClassUID": "1.2.840.10008.1.1"})
}

// TestDecodeNeverPrintsSecrets decodes the user-identity captures in both
// output modes: neither the passcode nor the JWT may appear.
func TestDecodeNeverPrintsSecrets(t *testing.T) {
	for _, file := range []string{"uid_username_password.c2s.bin", "uid_jwt.c2s.bin"} {
		raw, err := os.ReadFile(filepath.Join(captures, file))
		require.NoError(t, err)
		p, _, err := (&pdu.Framer{}).Next(raw)
		require.NoError(t, err, file)
		var rq pdu.AssociateRQ
		require.NoError(t, (&pdu.Decoder{}).DecodeAssociateRQ(p, &rq), file)
		id := rq.UserInformation.UserIdentity
		secret := string(id.Secondary)
		if id.Type == pdu.UserIdentityJWT {
			secret = string(id.Primary)
		}
		require.GreaterOrEqual(t, len(secret), 5, "%s: no secret found to look for (%q)", file, secret)
		for _, mode := range []string{"--json=true", "--json=false"} {
			t.Run(file+"/"+mode, func(t *testing.T) {
				out, err := runDecodeCmd(t, nil, mode, filepath.Join(captures, file))
				require.NoError(t, err)
				require.NotContains(t, out, secret, "%s %s: output contains the secret", file, mode)
				require.NotContains(t, out, secret[:len(secret)/2], "%s %s: output contains the secret", file, mode)
				require.True(t, strings.Contains(out, "user identity") || strings.Contains(out, "userIdentity"),
					"%s %s: output does not show the user identity at all", file, mode)
			})
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(captures, "echo_default.c2s.bin"))
	require.NoError(t, err)
	// Truncated inside the P-DATA-TF at 211: the RQ is still printed.
	out, err := runDecodeCmd(t, raw[:250], "--json=false", "-")
	require.Equal(t, 2, exitCode(err), "truncated: exit status, err %v", err)
	require.ErrorContains(t, err, "stdin: offset 211: input ends inside P-DATA-TF: have 39 of 80 bytes", "truncated")
	require.Contains(t, out, "@0 A-ASSOCIATE-RQ", "PDUs before the error not printed")
	require.Contains(t, out, `called AE title:     "ANY-SCP"`, "PDUs before the error not printed")
	// A corrupt PDV length inside the second PDU: absolute offset in the error.
	bad := append([]byte{}, raw...)
	bad[217+3] = 0xff
	out, err = runDecodeCmd(t, bad, "--json=true", "-")
	require.Equal(t, 2, exitCode(err), "bad PDV: exit status, err %v", err)
	require.ErrorContains(t, err, "stdin: offset 217 (in the P-DATA-TF at offset 211): PDV item: length 255 exceeds remaining 70 bytes", "bad PDV")
	require.Equal(t, 1, strings.Count(out, "\n"), "want exactly the RQ line before the error, got:\n%s", out)
	require.Contains(t, out, `"type":"A-ASSOCIATE-RQ"`, "want exactly the RQ line before the error")
	require.NotContains(t, err.Error(), "\n", "error is not one line: %q", err)
	// TLS bytes and HTTP.
	_, err = runDecodeCmd(t, nil, "--json=false", filepath.Join(captures, "tls_client_plain_server.c2s.bin"))
	require.Equal(t, 2, exitCode(err), "TLS: %v", err)
	require.ErrorContains(t, err, "tls_client_plain_server.c2s.bin: offset 0: PDU type: byte 0x16 looks like a TLS record", "TLS")
	_, err = runDecodeCmd(t, []byte("GET / HTTP/1.1\r\n\r\n"), "--json=false", "-")
	require.Equal(t, 2, exitCode(err), "HTTP: %v", err)
	require.ErrorContains(t, err, "looks like HTTP", "HTTP")
	_, err = runDecodeCmd(t, nil, "--json=false", "--max-pdu-length=1000", filepath.Join(captures, "echo_ppc128_pts38.c2s.bin"))
	require.Equal(t, 2, exitCode(err), "--max-pdu-length: %v", err)
	require.ErrorContains(t, err, "length 129691 exceeds the maximum of 1000 bytes (raise --max-pdu-length if the peer legitimately sends larger PDUs)", "--max-pdu-length")
	_, err = runDecodeCmd(t, nil, "--json=false", filepath.Join(t.TempDir(), "missing.bin"))
	require.Equal(t, 2, exitCode(err), "missing file: %v", err)
	require.ErrorContains(t, err, "missing.bin", "missing file")
}

// TestDecodeAllCaptures runs the text decoder over every plain capture.
func TestDecodeAllCaptures(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(captures, "*.bin"))
	require.GreaterOrEqual(t, len(files), 50, "only %d capture files", len(files))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, _ := os.ReadFile(f)
			out, err := runDecodeCmd(t, nil, "--json=false", f)
			if len(raw) == 0 {
				require.Equal(t, 2, exitCode(err), "%s: empty capture: %v", f, err)
				require.ErrorContains(t, err, "is empty", "%s: empty capture", f)
				return
			}
			if raw[0] == 0x16 {
				require.Error(t, err, "%s: TLS bytes decoded without error", f)
				return
			}
			require.NoError(t, err, f)
			require.True(t, strings.HasPrefix(out, "@0 "), "%s: output does not start with the first PDU:\n%.200s", f, out)
		})
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
