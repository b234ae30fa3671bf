package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const policyTestdata = "../../sdk/policy/testdata"

// runCheckCmd runs `dicomgate check ARG` in-process and returns its stdout
// followed by its stderr, and the exit status.
func runCheckCmd(t *testing.T, stdin []byte, arg string) (string, int) {
	t.Helper()
	out, errOut, code := runCLI(t, stdin, "check", arg)
	return out + errOut, code
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// requireContainsAll fails unless s contains every one of wants, listing
// all the missing ones at once; what names s in the failure message.
func requireContainsAll(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	var missing []string
	for _, w := range wants {
		if !strings.Contains(s, w) {
			missing = append(missing, w)
		}
	}
	require.Empty(t, missing, "%s lacks these:\n%s", what, s)
}

func TestCheckValidPolicies(t *testing.T) {
	for _, name := range []string{"example.json", "example.yaml"} {
		out, code := runCheckCmd(t, nil, filepath.Join(policyTestdata, name))
		require.Equal(t, 0, code, "%s: exit status\n%s", name, out)
		requireContainsAll(t, name+": output", out,
			name+": policy is valid (5 rules, 0 warnings)",
			`[0] ct-to-pacs-a: route to "outbound|11112||pacs-a.dicom.svc.cluster.local", rewrite called AE to "ORTHANC"`,
			`[1] mr-to-pacs-b: route to "outbound|4242||pacs-b.dicom.svc.cluster.local"`,
			"inspectTimeout: 5s",
			"default: deny",
		)
	}
}

func TestCheckInvalidPolicyListsEveryError(t *testing.T) {
	file := filepath.Join(policyTestdata, "invalid.json")
	out, code := runCheckCmd(t, nil, file)
	require.Equal(t, 2, code, "exit status\n%s", out)
	requireContainsAll(t, "output", out,
		file+`: error: mode: "dryrun" is not allowed; did you mean "dry-run"?`,
		file+`: error: rules[0].match.sourceCIDRs[0]: "10.0.0.0/33" is not a CIDR`,
		file+`: error: rules[1]: action "route" needs "cluster" or "service"`,
		file+`: error: rules[1].name: duplicate rule name "a"`,
		file+`: error: rules[2].name: is empty`,
		file+`: error: rules[2].rewriteCalledAETitle: only allowed with action "allow" or "route"`,
		"policy is invalid: 7 errors; the first: ",
	)
	require.NotContains(t, out, "rules: ", "summary printed for an invalid policy")
}

func TestCheckManifest(t *testing.T) {
	out, code := runCheckCmd(t, nil, filepath.Join(policyTestdata, "wasmplugin.yaml"))
	require.Equal(t, 0, code, "exit status\n%s", out)
	requireContainsAll(t, "output", out,
		`(WasmPlugin dicomgate): warning: spec.pluginConfig.mode: "dry-run": decisions are only reported`,
		"(WasmPlugin dicomgate): policy is valid (2 rules, 1 warning)",
		"mode: dry-run",
	)

	out, code = runCheckCmd(t, nil, filepath.Join(policyTestdata, "wasmplugin_invalid.yaml"))
	require.Equal(t, 2, code, "invalid manifest: exit status\n%s", out)
	requireContainsAll(t, "output", out,
		`error: spec.pluginConfig.rules[0].match.calledAETitle: unknown key "calledAETitle"; did you mean "calledAETitles"?`,
		`error: spec.pluginConfig.rules[0].match.sourceCIDRs[0]: "10.0.0.0/33" is not a CIDR`,
		`error: spec.pluginConfig.rules[0]: action "route" needs "cluster" or "service"`,
	)
}

func TestCheckManifestVariants(t *testing.T) {
	tests := []struct {
		name, content string
		code          int
		want          []string
	}{
		{"json manifest", `{"apiVersion":"extensions.istio.io/v1alpha1","kind":"WasmPlugin","metadata":{"name":"gw"},
		  "spec":{"pluginConfig":{"rules":[{"name":"x","action":"allow","match":{"sourceCIDRs":["300.0.0.0/8"]}}]}}}`, 2,
			[]string{`(WasmPlugin gw): error: spec.pluginConfig.rules[0].match.sourceCIDRs[0]: "300.0.0.0/8" is not a CIDR`}},
		{"root type in manifest", "kind: WasmPlugin\nmetadata: {name: gw}\nspec:\n  pluginConfig: [1]\n", 2,
			[]string{`error: spec.pluginConfig: must be a JSON object`}},
		{"multi-document manifest", "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: early}\n---\n" +
			"apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: gw}\nspec:\n  pluginConfig:\n    defaultAction: allow\n", 0,
			[]string{"(WasmPlugin gw): policy is valid (0 rules, 0 warnings)", "default: allow"}},
		{"manifest without pluginConfig", "kind: WasmPlugin\nmetadata: {name: gw}\nspec: {url: oci://x}\n", 2,
			[]string{"WasmPlugin gw: spec.pluginConfig is missing"}},
		{"other resource only", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", 2,
			[]string{"no WasmPlugin"}},
		{"other resource json", `{"apiVersion":"v1","kind":"ConfigMap"}`, 2,
			[]string{"not a WasmPlugin"}},
		{"yaml boolean AE title", "rules:\n  - name: r\n    action: allow\n    match: {callingAETitles: [NO]}\n", 2,
			[]string{`error: rules[0].match.callingAETitles[0]: must be a string, got false (in YAML, quote values such as "NO"`}},
		{"json syntax offset", "{\n  \"rules\": [\n}", 2,
			[]string{"error: invalid JSON at byte offset 15 (line 3, column 1)"}},
		{"empty file", "  \n", 2, []string{"is empty; expected a policy or a WasmPlugin manifest"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runCheckCmd(t, nil, writeTemp(t, "cfg", tc.content))
			require.Equal(t, tc.code, code, "exit status\n%s", out)
			requireContainsAll(t, "output", out, tc.want...)
		})
	}
}

func TestCheckStdinAndWarningsExitZero(t *testing.T) {
	cfg := `{"rules":[{"name":"all","action":"deny"},{"name":"late","action":"allow"}]}`
	out, code := runCheckCmd(t, []byte(cfg), "-")
	require.Equal(t, 0, code, "warnings must not fail check: exit status\n%s", out)
	require.Contains(t, out, `stdin: warning: rules[1]: unreachable: rules[0] ("all") matches every association`, "warning not printed")
}

func TestCheckUnreadableFile(t *testing.T) {
	err := runCheck(nil, &bytes.Buffer{}, filepath.Join(t.TempDir(), "missing.json"), checkFlags{})
	var ee *exitError
	require.ErrorAs(t, err, &ee, "err = %v", err)
	require.Equal(t, 2, ee.code, "exit status; err = %v", err)
	require.ErrorContains(t, err, "missing.json")
}
