package main

import (
	"bytes"
	"testing"

	"github.com/dicomgate/dicomgate/wasm/host"
	"github.com/stretchr/testify/require"
)

// envoySubjects are connection.subject_peer_certificate values printed by
// the real Envoy 1.40.0 (the peer_subject of the filter's audit line) for
// client certificates made with `openssl req -subj ...`, and by the e2e
// suite's Go-made certificate: none of them may be warned about.
var envoySubjects = []string{
	"O=Hospital,CN=CT1", // -subj "/CN=CT1/O=Hospital"
	`emailAddress=a@b.example,CN=\ ct 1\;x,O=H\C3\B4pital\, Inc,C=DE`, // -subj "/C=DE/O=Hôpital, Inc/CN= ct 1;x/emailAddress=a@b.example"
	"O=Hospital,OU=Radiology+CN=CT1",                                  // -subj "/CN=CT1+OU=Radiology/O=Hospital"
	"CN=ct1,O=dicomgate e2e",                                          // pkix.Name{CommonName: "ct1", Organization: ...}
	"CN=CT1,O=Hospital",
	"1.2.3.4=#0C0141,CN=x",
	`CN=trailing\ ,O=x`, // a value's trailing space, escaped
	`O=x,CN=trailing\ `,
}

func TestLintPeerSubjectAcceptsEnvoyForms(t *testing.T) {
	for _, s := range envoySubjects {
		require.Empty(t, lintPeerSubject(s), s)
	}
}

// TestLintPeerSubjectNeverMatching: each subject below differs from every
// string Envoy can print; the warning says why and gives the fix.
func TestLintPeerSubjectNeverMatching(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/CN=CT1/O=Hospital", `is in OpenSSL's -subj form (the certificate's RDNs first to last, "/"-separated); Envoy reports subjects in RFC 2253 form, last RDN first and comma-separated, so this never matches: write "O=Hospital,CN=CT1"`},
		{"CN=CT1, O=Hospital", `has spaces around ",", "+" or "="; Envoy prints "CN=x,O=y" with none, so this never matches: write "CN=CT1,O=Hospital"`},
		{"CN = CT1, O = Hospital", `write "CN=CT1,O=Hospital"`},
		{"CN=CT1;O=Hospital", `separates attributes with ";"`},
		{" CN=CT1", `has a leading or trailing space`},
		{"cn=CT1,o=Hospital", `Envoy names the attribute CN "CN", not "cn"; Envoy names the attribute O "O", not "o": write "CN=CT1,O=Hospital"`},
		{"E=a@b.example,CN=x", `Envoy names the attribute E "emailAddress", not "E": write "emailAddress=a@b.example,CN=x"`},
		{"CN=CT1,O=Hôpital", `Envoy escapes bytes outside printable ASCII in "Hôpital" as \XX (UTF-8 bytes in hex): write "CN=CT1,O=H\\C3\\B4pital"`},
		{"C=DE,O=Hospital,CN=CT1", `starts with C=, which certificates put first and Envoy therefore prints last`},
		{"DC=org,DC=example,CN=x", `write "CN=x,DC=example,DC=org"`},
		{"CN=CT1,Hospital", `"Hospital" is not TYPE=value`},
	}
	for _, tc := range tests {
		got := lintPeerSubject(tc.in)
		require.Contains(t, got, tc.want, tc.in)
	}
}

// TestCheckWarnsAboutPeerSubjects: check prints the warning with the JSON
// path of the subject; the policy stays valid (exit 0; 1 under --strict).
func TestCheckWarnsAboutPeerSubjects(t *testing.T) {
	cfg := writeTemp(t, "p.yaml", `
rules:
  - name: ct1
    match: {peerSubjects: ["CN=CT1,O=Hospital", "/CN=CT2/O=Hospital"]}
    action: allow
`)
	out, errOut, code := runCLI(t, nil, "check", cfg)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, cfg+`: warning: rules[0].match.peerSubjects[1]: "/CN=CT2/O=Hospital" is in OpenSSL's -subj form`)
	require.Contains(t, out, "policy is valid (1 rule, 1 warning)")
	require.NotContains(t, out, "peerSubjects[0]")
	_, errOut, code = runCLI(t, nil, "check", "--strict", cfg)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "1 warning (--strict)")

	// Inside a manifest the path starts at spec.pluginConfig.
	out, _, code = runCLI(t, nil, "check", writeTemp(t, "m.yaml", `
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: gw}
spec:
  pluginConfig:
    rules:
      - {name: r, match: {peerSubjects: ["CN=x, O=y"]}, action: allow}
`))
	require.Equal(t, 0, code)
	require.Contains(t, out, `(WasmPlugin gw): warning: spec.pluginConfig.rules[0].match.peerSubjects[0]: "CN=x, O=y" has spaces`)

	// manifest prints the same warning on stderr.
	_, errOut, code = runCLI(t, nil, "manifest", "--config", cfg, "--image", "oci://r.example/x:1")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, `warning: rules[0].match.peerSubjects[1]: "/CN=CT2/O=Hospital" is in OpenSSL's -subj form`)
}

// serve gives the peerSubjects warnings `check` gives, at start (and on every reload, which uses the same check).
func TestServeWarnsAboutPeerSubjectsEnvoyNeverPrints(t *testing.T) {
	var out bytes.Buffer
	js := []byte(`{"defaultAction": "deny", "rules": [{"name": "ct", "match": {"peerSubjects": ["/CN=CT1/O=Hospital"]}, "action": "allow"}]}`)
	pol, err := serveCheckPolicy(js, "policy.json", &serveLog{w: &out, min: host.LogInfo})
	require.NoError(t, err)
	require.NotNil(t, pol)
	require.Contains(t, out.String(), "/CN=CT1/O=Hospital")
	require.Contains(t, out.String(), "warning")
}

// A maxAssociateRQBytes above Envoy's default read buffer limit is warned about (a larger RQ would stall in
// Envoy, conformance TestRQLargerThanReadBufferLimit); the default and smaller values are not.
func TestLintWarnsAboutRQLimitAboveEnvoysBufferLimit(t *testing.T) {
	d := lintPolicy([]byte(`{"maxAssociateRQBytes": 2097152}`))
	require.Len(t, d, 1)
	require.Equal(t, "maxAssociateRQBytes", d[0].Path)
	require.Contains(t, d[0].Message, "per_connection_buffer_limit_bytes")
	require.Empty(t, lintPolicy([]byte(`{"maxAssociateRQBytes": 1048576}`)))
	require.Empty(t, lintPolicy([]byte(`{}`)))
}
