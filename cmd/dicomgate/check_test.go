package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckValidPolicies(t *testing.T) {
	for _, name := range []string{"example.json", "example.yaml"} {
		out, code := runCheckCmd(t, nil, filepath.Join(policyTestdata, name))
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", name, code, out)
		}
		for _, want := range []string{
			name + ": policy is valid (5 rules, 0 warnings)",
			`[0] ct-to-pacs-a: route to "outbound|11112||pacs-a.dicom.svc.cluster.local", rewrite called AE to "ORTHANC"`,
			`[1] mr-to-pacs-b: route to "outbound|4242||pacs-b.dicom.svc.cluster.local"`,
			"inspectTimeout: 5s",
			"default: deny",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", name, want, out)
			}
		}
	}
}

func TestCheckInvalidPolicyListsEveryError(t *testing.T) {
	file := filepath.Join(policyTestdata, "invalid.json")
	out, code := runCheckCmd(t, nil, file)
	if code != 2 {
		t.Fatalf("exit %d, want 2\n%s", code, out)
	}
	for _, want := range []string{
		file + `: error: mode: "dryrun" is not allowed; did you mean "dry-run"?`,
		file + `: error: rules[0].match.sourceCIDRs[0]: "10.0.0.0/33" is not a CIDR`,
		file + `: error: rules[1]: action "route" needs "cluster" or "service"`,
		file + `: error: rules[1].name: duplicate rule name "a"`,
		file + `: error: rules[2].name: is empty`,
		file + `: error: rules[2].rewriteCalledAETitle: only allowed with action "allow" or "route"`,
		"policy is invalid: 7 errors; the first: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "rules: ") {
		t.Errorf("summary printed for an invalid policy:\n%s", out)
	}
}

func TestCheckManifest(t *testing.T) {
	out, code := runCheckCmd(t, nil, filepath.Join(policyTestdata, "wasmplugin.yaml"))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{
		`(WasmPlugin dicomgate): warning: spec.pluginConfig.mode: "dry-run": decisions are only reported`,
		"(WasmPlugin dicomgate): policy is valid (2 rules, 1 warning)",
		"mode: dry-run",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	out, code = runCheckCmd(t, nil, filepath.Join(policyTestdata, "wasmplugin_invalid.yaml"))
	if code != 2 {
		t.Fatalf("invalid manifest: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		`error: spec.pluginConfig.rules[0].match.calledAETitle: unknown key "calledAETitle"; did you mean "calledAETitles"?`,
		`error: spec.pluginConfig.rules[0].match.sourceCIDRs[0]: "10.0.0.0/33" is not a CIDR`,
		`error: spec.pluginConfig.rules[0]: action "route" needs "cluster" or "service"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
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
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestCheckStdinAndWarningsExitZero(t *testing.T) {
	cfg := `{"rules":[{"name":"all","action":"deny"},{"name":"late","action":"allow"}]}`
	out, code := runCheckCmd(t, []byte(cfg), "-")
	if code != 0 {
		t.Fatalf("warnings must not fail check: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, `stdin: warning: rules[1]: unreachable: rules[0] ("all") matches every association`) {
		t.Errorf("warning not printed:\n%s", out)
	}
}

func TestCheckUnreadableFile(t *testing.T) {
	err := runCheck(nil, &bytes.Buffer{}, filepath.Join(t.TempDir(), "missing.json"), checkFlags{})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("err = %v", err)
	}
}
