package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/dicomgate/dicomgate/internal/wasmbuild"
)

// runCLI runs a dicomgate command line in-process, exactly as main does, and
// returns what it printed on stdout and stderr and its exit status.
func runCLI(t *testing.T, stdin []byte, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, bytes.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// TestExitStatusConvention runs one command line per documented exit status
// case: 0 ok, 1 a negative answer, 2 usage or invalid input, for every
// command, with the message a user sees on stderr.
func TestExitStatusConvention(t *testing.T) {
	example := filepath.Join(policyTestdata, "example.json")
	invalidPolicy := filepath.Join(policyTestdata, "invalid.json")
	allowRQ := filepath.Join(evalCaptures, "uid_username.c2s.bin")
	denyRQ := filepath.Join(evalCaptures, "echo_default.c2s.bin")
	empty := writeTemp(t, "empty.bin", "")
	warned := writeTemp(t, "warned.json", `{"rules":[{"name":"all","action":"deny"},{"name":"late","action":"allow"}]}`)
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr []string // every string must appear on stderr
	}{
		{"eval allow", []string{"eval", example, allowRQ}, 0, nil},
		{"eval deny", []string{"eval", example, denyRQ}, 1, []string{"denied (default action, calling-ae-not-recognized)"}},
		{"eval unknown flag", []string{"eval", "--bogus"}, 2, []string{"unknown flag: --bogus", "Usage: dicomgate eval CONFIG STREAM", "Example:", "Run 'dicomgate eval --help'"}},
		{"eval positional and flag", []string{"eval", example, allowRQ, "--config", example}, 2, []string{"the policy is given twice"}},
		{"eval three arguments", []string{"eval", example, allowRQ, "x"}, 2, []string{`unexpected argument "x"`}},
		{"eval no stream", []string{"eval", example}, 2, []string{"missing STREAM", "second argument, or --stream"}},
		{"eval invalid policy", []string{"eval", invalidPolicy, allowRQ}, 2, []string{"policy is invalid: 7 errors"}},
		{"eval empty stream", []string{"eval", example, empty}, 2, []string{"the stream is empty"}},
		{"check valid", []string{"check", example}, 0, nil},
		{"check warnings", []string{"check", warned}, 0, nil},
		{"check warnings strict", []string{"check", "--strict", warned}, 1, []string{"policy is valid but has 1 warning (--strict)"}},
		{"check invalid", []string{"check", invalidPolicy}, 2, []string{"policy is invalid: 7 errors; the first: mode:"}},
		{"check no argument", []string{"check"}, 2, []string{"missing CONFIG", "Usage: dicomgate check CONFIG", "dicomgate check sdk/policy/testdata/example.json"}},
		{"check missing file", []string{"check", filepath.Join(t.TempDir(), "nope.json")}, 2, []string{"nope.json: no such file"}},
		{"manifest invalid policy", []string{"manifest", "--config", invalidPolicy, "--image", "oci://r.example/x:1"}, 2, []string{"policy is invalid: 7 errors"}},
		{"manifest argument", []string{"manifest", "x"}, 2, []string{`unexpected argument "x"`, "no arguments"}},
		{"decode empty", []string{"decode", empty}, 2, []string{"empty.bin: is empty; expected DICOM Upper Layer PDUs"}},
		{"decode empty stdin", []string{"decode"}, 2, []string{"stdin: is empty"}},
		{"push no argument", []string{"push"}, 2, []string{"missing WASM"}},
		{"unknown command", []string{"evaluate"}, 2, []string{`unknown command "evaluate"`, "Commands: bench, check"}},
		{"negative drain timeout", []string{"serve", "--drain-timeout", "-1s"}, 2, []string{"--drain-timeout -1s: a duration cannot be negative"}},
		{"negative idle timeout", []string{"serve", "--idle-timeout=-5m"}, 2, []string{"--idle-timeout -5m0s: a duration cannot be negative"}},
		{"json and yaml", []string{"eval", "--json", "-o", "yaml", example, allowRQ}, 2, []string{"--json and -o yaml contradict each other"}},
		{"bad format", []string{"decode", "-o", "xml"}, 2, []string{"-o takes the output format, one of text, json, yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, nil, tc.args...)
			require.Equal(t, tc.code, code, "stderr:\n%s", errOut)
			for _, w := range tc.stderr {
				require.Contains(t, errOut, w)
			}
			if tc.code == 0 {
				require.Empty(t, errOut)
			}
		})
	}
}

// TestRootHelpDocumentsExitStatus: the exit statuses are documented once,
// in the root help.
func TestRootHelpDocumentsExitStatus(t *testing.T) {
	out, _, code := runCLI(t, nil, "--help")
	require.Equal(t, 0, code)
	for _, w := range []string{"Exit status, for every command:", "  0  success", "  1  a negative answer", "  2  usage or invalid input"} {
		require.Contains(t, out, w)
	}
	require.Equal(t, 0, exitOK)
	require.Equal(t, 1, exitNegative)
	require.Equal(t, 2, exitUsage)
}

// TestCheckFindingsOnStdoutVerdictOnStderr: with stdout discarded, stderr
// alone still says what is wrong.
func TestCheckFindingsOnStdoutVerdictOnStderr(t *testing.T) {
	file := filepath.Join(policyTestdata, "invalid.json")
	out, errOut, code := runCLI(t, nil, "check", file)
	require.Equal(t, 2, code)
	require.Contains(t, out, file+`: error: rules[0].match.sourceCIDRs[0]: "10.0.0.0/33" is not a CIDR`)
	require.NotContains(t, errOut, "listed above")
	require.Equal(t, "dicomgate: "+file+`: policy is invalid: 7 errors; the first: mode: "dryrun" is not allowed; did you mean "dry-run"? (allowed: "enforce", "dry-run")`+"\n", errOut)
}

// TestOutputFormats: every command that prints results takes -o
// text|json|yaml, and --json is -o json.
func TestOutputFormats(t *testing.T) {
	example := filepath.Join(policyTestdata, "example.json")
	rq := filepath.Join(evalCaptures, "uid_username.c2s.bin")
	echo := filepath.Join(evalCaptures, "echo_default.c2s.bin")

	// eval: the JSON object and the YAML document carry the same fields.
	js, _, code := runCLI(t, nil, "eval", example, rq, "-o", "json")
	require.Equal(t, 0, code)
	alias, _, _ := runCLI(t, nil, "eval", example, rq, "--json")
	require.Equal(t, js, alias)
	ys, _, code := runCLI(t, nil, "eval", example, rq, "-o", "yaml")
	require.Equal(t, 0, code)
	var fromJSON, fromYAML map[string]any
	require.NoError(t, json.Unmarshal([]byte(js), &fromJSON))
	require.NoError(t, yaml.Unmarshal([]byte(ys), &fromYAML))
	require.Equal(t, fromJSON, fromYAML)
	require.Equal(t, "alice-ct-store", fromJSON["rule"])

	// decode: one JSON object per line, one YAML document per PDU.
	js, _, code = runCLI(t, nil, "decode", "-o", "json", echo)
	require.Equal(t, 0, code)
	lines := strings.Split(strings.TrimSpace(js), "\n")
	ys, _, code = runCLI(t, nil, "decode", "-o", "yaml", echo)
	require.Equal(t, 0, code)
	docs, err := yamlDocsToJSON([]byte(ys))
	require.NoError(t, err)
	require.Len(t, docs, len(lines))
	require.Greater(t, len(lines), 2)
	for i := range lines {
		require.JSONEq(t, lines[i], string(docs[i]))
	}

	// check: one object with the verdict, the rules and the diagnostics.
	js, _, code = runCLI(t, nil, "check", "-o", "json", filepath.Join(policyTestdata, "wasmplugin.yaml"))
	require.Equal(t, 0, code)
	var cr checkResult
	require.NoError(t, json.Unmarshal([]byte(js), &cr))
	require.True(t, cr.Valid)
	require.Len(t, cr.Policies, 1)
	p := cr.Policies[0]
	require.Equal(t, "WasmPlugin dicomgate", p.Source)
	require.Equal(t, "dry-run", p.Mode)
	require.Equal(t, []checkRuleEntry{{"pacs-a", "allow"}, {"everything-else", "deny"}}, p.Rules)
	require.Equal(t, 1, p.Warnings)
	require.Equal(t, "spec.pluginConfig.mode", p.Diagnostics[0].Path)
	js, _, code = runCLI(t, nil, "check", "--json", filepath.Join(policyTestdata, "invalid.json"))
	require.Equal(t, 2, code)
	cr = checkResult{}
	require.NoError(t, json.Unmarshal([]byte(js), &cr))
	require.False(t, cr.Valid)
	require.Equal(t, 7, cr.Policies[0].Errors)

	// push: the digest as an object.
	wasm := writeFile(t, t.TempDir(), "m.wasm", testModule(9))
	js, _, code = runCLI(t, nil, "push", wasm, "--layout", filepath.Join(t.TempDir(), "oci"), "-o", "json")
	require.Equal(t, 0, code)
	var pr pushResult
	require.NoError(t, json.Unmarshal([]byte(js), &pr))
	require.Equal(t, "sha256:"+pr.SHA256, pr.Digest)
	require.Equal(t, "oci", pr.Format)
}

// TestManifestOutputFormatAndFile: -o is the format (a kind: List for
// json); a file name given to -o is refused with the flag that writes
// files, and no file named after the format is written.
func TestManifestOutputFormatAndFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cfg := writeFile(t, dir, "p.json", []byte(`{"defaultAction":"deny"}`))
	base := []string{"manifest", "--config", cfg, "--image", "oci://r.example/x:1", "--sha256", strings.Repeat("ab", 32), "--envoyfilter"}

	js, errOut, code := runCLI(t, nil, append(base, "-o", "json")...)
	require.Equal(t, 0, code, errOut)
	var list struct {
		Kind  string `json:"kind"`
		Items []struct {
			Kind string `json:"kind"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(js), &list))
	require.Equal(t, "List", list.Kind)
	require.Len(t, list.Items, 2)
	require.Equal(t, "WasmPlugin", list.Items[0].Kind)
	require.Equal(t, "EnvoyFilter", list.Items[1].Kind)
	_, err := os.Stat(filepath.Join(dir, "json"))
	require.ErrorIs(t, err, os.ErrNotExist, "-o json must not write a file named json")

	_, errOut, code = runCLI(t, nil, append(base, "-o", "out.yaml")...)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "to write the result to a file use --output-file out.yaml")

	out, errOut, code := runCLI(t, nil, append(base, "--output-file", "out.yaml")...)
	require.Equal(t, 0, code, errOut)
	require.Empty(t, out)
	b, err := os.ReadFile(filepath.Join(dir, "out.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(b), "kind: WasmPlugin")
}

// TestManifestAcceptsWasmPluginManifest: manifest --config reads a
// WasmPlugin manifest as check and eval do, and re-renders its
// pluginConfig; a diagnostic names the path inside the manifest.
func TestManifestAcceptsWasmPluginManifest(t *testing.T) {
	out, errOut, code := runCLI(t, nil, "manifest", "--config", filepath.Join(policyTestdata, "wasmplugin.yaml"), "--image", "oci://r.example/x:1")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "mode: dry-run")
	require.Contains(t, out, "name: everything-else")
	require.Contains(t, errOut, "wasmplugin.yaml: warning: spec.pluginConfig.mode:")

	_, errOut, code = runCLI(t, nil, "manifest", "--config", filepath.Join(policyTestdata, "wasmplugin_invalid.yaml"), "--image", "oci://r.example/x:1")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `error: spec.pluginConfig.rules[0].match.sourceCIDRs[0]: "10.0.0.0/33" is not a CIDR`)
}

// TestCompletion: the shells' completion scripts, and -o values completed.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, errOut, code := runCLI(t, nil, "completion", shell)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "dicomgate", shell)
		require.Greater(t, len(out), 1000, shell)
	}
	// bash loads the script and registers the completion function.
	script, _, _ := runCLI(t, nil, "completion", "bash")
	file := writeTemp(t, "dicomgate.bash", script)
	reg, err := exec.Command("bash", "-c", "source "+file+" && complete -p dicomgate").CombinedOutput()
	require.NoError(t, err, "%s", reg)
	require.Equal(t, "complete -o default -F __start_dicomgate dicomgate\n", string(reg))

	_, errOut, code := runCLI(t, nil, "completion", "tcsh")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `invalid argument "tcsh"`)
	out, _, code := runCLI(t, nil, "__complete", "check", "-o", "")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "text\njson\nyaml\n"), out)
	out, _, code = runCLI(t, nil, "__complete", "completion", "")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "bash\nzsh\nfish\npowershell\n"), out)
}

// TestVersion: the module version, Go and wazero versions, and the filter
// module's sha256 and proxy-wasm-go-sdk version.
func TestVersion(t *testing.T) {
	module, _, err := wasmbuild.Dicomgate()
	require.NoError(t, err)
	path := writeFile(t, t.TempDir(), "dicomgate.wasm", module)
	sum := sha256.Sum256(module)
	gomod, err := os.ReadFile("../../go.mod")
	require.NoError(t, err)
	sdk := regexp.MustCompile(`github.com/proxy-wasm/proxy-wasm-go-sdk (\S+)`).FindSubmatch(gomod)
	require.NotNil(t, sdk)
	wazero := regexp.MustCompile(`github.com/tetratelabs/wazero (\S+)`).FindSubmatch(gomod)
	require.NotNil(t, wazero)

	js, errOut, code := runCLI(t, nil, "version", "--wasm", path, "-o", "json")
	require.Equal(t, 0, code, errOut)
	var v versionInfo
	require.NoError(t, json.Unmarshal([]byte(js), &v))
	require.Equal(t, hex.EncodeToString(sum[:]), v.Filter.SHA256)
	require.Equal(t, len(module), v.Filter.Size)
	require.True(t, v.Filter.Found)
	require.Equal(t, string(sdk[1]), v.Filter.ProxyWasmGoSDK)
	require.Equal(t, string(wazero[1]), v.Wazero)
	require.True(t, strings.HasPrefix(v.GoVersion, "go1."), v.GoVersion)
	require.NotEmpty(t, v.Version)
	require.NotEmpty(t, v.Commit)

	text, _, code := runCLI(t, nil, "version", "--wasm", path)
	require.Equal(t, 0, code)
	require.Contains(t, text, "sha256:          "+hex.EncodeToString(sum[:]))
	require.Contains(t, text, "proxy-wasm-go-sdk: "+string(sdk[1]))

	// A module without Go build information, and a missing explicit one.
	other := writeFile(t, t.TempDir(), "m.wasm", testModule(2))
	js, _, code = runCLI(t, nil, "version", "--wasm", other, "-o", "json")
	require.Equal(t, 0, code)
	v = versionInfo{}
	require.NoError(t, json.Unmarshal([]byte(js), &v))
	require.Equal(t, "unknown", v.Filter.ProxyWasmGoSDK)
	_, errOut, code = runCLI(t, nil, "version", "--wasm", filepath.Join(t.TempDir(), "none.wasm"))
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--wasm: open")
}

// TestVersionLooksWhereServeLooks: without --wasm, version describes
// build/dicomgate.wasm in the working directory, and says so when absent.
func TestVersionLooksWhereServeLooks(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	out, _, code := runCLI(t, nil, "version")
	require.Equal(t, 0, code)
	require.Contains(t, out, "filter module:     not found at build/dicomgate.wasm")
	require.NoError(t, os.MkdirAll("build", 0o755))
	writeFile(t, dir, defaultWasmPath, testModule(3))
	sum := sha256.Sum256(testModule(3))
	out, _, code = runCLI(t, nil, "version")
	require.Equal(t, 0, code)
	require.Contains(t, out, "filter module:     build/dicomgate.wasm (")
	require.Contains(t, out, hex.EncodeToString(sum[:]))
}

// update rewrites docs/cli.md from the commands (go test ./cmd/dicomgate
// -run TestCLIReference -update).
var update = flag.Bool("update", false, "rewrite docs/cli.md from the commands' help")

// cliReferencePath is the generated CLI reference, relative to this package.
const cliReferencePath = "../../docs/cli.md"

// TestCLIReference fails when docs/cli.md differs from what `dicomgate docs`
// generates from the commands: a flag, a help text or an example changed
// without the reference.
func TestCLIReference(t *testing.T) {
	got, errOut, code := runCLI(t, nil, "docs")
	require.Equal(t, 0, code, errOut)
	if *update {
		require.NoError(t, os.WriteFile(cliReferencePath, []byte(got), 0o644))
	}
	want, err := os.ReadFile(cliReferencePath)
	require.NoError(t, err, "docs/cli.md is missing: go run ./cmd/dicomgate docs > docs/cli.md")
	require.Equal(t, string(want), got, "docs/cli.md is stale: regenerate it with `go run ./cmd/dicomgate docs > docs/cli.md` (or go test ./cmd/dicomgate -run TestCLIReference -update)")
	for _, c := range visibleCommands(rootCmd)[1:] {
		require.Contains(t, got, "\n## "+c.CommandPath()+"\n", "every command has a section")
	}
	for _, name := range []string{"check", "decode", "eval", "manifest", "push", "serve", "version", "completion"} {
		require.Contains(t, got, "\n## dicomgate "+name+"\n")
	}
	require.NotContains(t, got, "## dicomgate docs", "docs is a hidden maintenance command")
}

// TestHelpExamplesRun runs the examples of the commands that work on the
// repository's own files, from the repository root, as a user would paste
// them: each must exit as the help says (eval's example decides allow).
func TestHelpExamplesRun(t *testing.T) {
	t.Chdir("../..")
	ran := 0
	for _, name := range []string{"check", "decode", "eval"} {
		c, _, err := rootCmd.Find([]string{name})
		require.NoError(t, err)
		example := strings.ReplaceAll(c.Example, "\\\n", " ")
		for _, line := range strings.Split(example, "\n") {
			fields := strings.Fields(line)
			if len(fields) < 2 || fields[0] != "dicomgate" || strings.Contains(line, "policy.yaml") {
				continue // an example on the user's own file
			}
			_, errOut, code := runCLI(t, nil, fields[1:]...)
			require.Equal(t, 0, code, "%s\n%s", line, errOut)
			ran++
		}
	}
	require.GreaterOrEqual(t, ran, 5)
}
