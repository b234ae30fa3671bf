package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/manifests/oci"
)

// testModule returns bytes with a valid Wasm header.
func testModule(seed byte) []byte {
	b := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	for i := 0; i < 2048; i++ {
		b = append(b, seed+byte(i*7))
	}
	return b
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

const basePolicyPath = "../../manifests/base/policy.yaml"

func TestManifestPinsImageDigest(t *testing.T) {
	dir := t.TempDir()
	mod := testModule(1)
	wasm := writeFile(t, dir, "dicomgate.wasm", mod)
	for _, tc := range []struct {
		image  string
		docker bool
		want   func() string
	}{
		{"oci://registry.example/dicomgate:0.1.0", false, func() string { d, _ := oci.Digest(mod, oci.FormatOCI); return d }},
		{"oci://registry.example/dicomgate:0.1.0", true, func() string { d, _ := oci.Digest(mod, oci.FormatDocker); return d }},
		{"https://files.example/dicomgate.wasm", false, func() string { return oci.ModuleSHA256(mod) }},
	} {
		t.Run(fmt.Sprintf("%s/docker=%v", tc.image, tc.docker), func(t *testing.T) {
			var out, errb bytes.Buffer
			err := runManifest(&out, &errb, manifestFlags{config: basePolicyPath, image: tc.image, wasm: wasm, docker: tc.docker, envoyFilter: true, namespace: "istio-ingress", name: "dicomgate", port: 11112})
			require.NoError(t, err, "%s\n%s", tc.image, errb.String())
			require.Contains(t, out.String(), "sha256: "+tc.want(), "%s docker=%v: output", tc.image, tc.docker)
			require.Contains(t, out.String(), "kind: EnvoyFilter", "--envoyfilter did not render the EnvoyFilter")
		})
	}
}

func TestManifestInvalidPolicyPrintsAllDiagnostics(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "bad.json", []byte(`{"defaultAction":"route","mode":"loud","rules":[{"name":"x","action":"route"}]}`))
	var out, errb bytes.Buffer
	err := runManifest(&out, &errb, manifestFlags{config: cfg, image: "oci://r.example/x:1", port: 11112})
	require.Equal(t, 2, exitCode(err), "exit code (err %v)", err)
	requireContainsAll(t, "stderr (the diagnostic for defaultAction, mode, rules[0])", errb.String(),
		cfg+": error: defaultAction", cfg+": error: mode", cfg+": error: rules[0]")
	require.Zero(t, out.Len(), "nothing may be rendered for an invalid policy, got:\n%s", out.String())
}

func TestManifestFlagErrors(t *testing.T) {
	dir := t.TempDir()
	notWasm := writeFile(t, dir, "x.wasm", []byte("not wasm at all"))
	for _, tc := range []struct {
		f    manifestFlags
		want string
	}{
		{manifestFlags{image: "oci://r/x:1"}, "--config is required"},
		{manifestFlags{config: basePolicyPath}, "--image is required"},
		{manifestFlags{config: basePolicyPath, image: "oci://r/x:1", wasm: notWasm}, "not a WebAssembly module"},
		{manifestFlags{config: basePolicyPath, image: "oci://r/x:1", wasm: notWasm, sha: "ab"}, "mutually exclusive"},
		{manifestFlags{config: filepath.Join(dir, "missing.json"), image: "oci://r/x:1"}, "--config"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := runManifest(&out, &errb, tc.f)
			require.ErrorContains(t, err, tc.want, "%+v", tc.f)
		})
	}
}

func TestManifestJSONPolicyAndOutputFile(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "p.json", []byte(`{"defaultAction":"deny","upstreamConnect":"immediate","rules":[{"name":"a","match":{"calledAETitles":["ORTHANC"]},"action":"allow"}]}`))
	outFile := filepath.Join(dir, "out.yaml")
	var out, errb bytes.Buffer
	err := runManifest(&out, &errb, manifestFlags{config: cfg, image: "oci://r.example/x:1", sha: strings.Repeat("ab", 32), outputFile: outFile, namespace: "istio-ingress", name: "dicomgate", port: 11112})
	require.NoError(t, err, errb.String())
	b, err := os.ReadFile(outFile)
	require.NoError(t, err)
	require.Contains(t, string(b), "upstreamConnect: immediate", "unexpected output")
	require.NotContains(t, string(b), "EnvoyFilter", "unexpected output")
	require.Zero(t, out.Len(), "with --output-file nothing goes to stdout")
}

// The cobra wiring: flags reach runManifest (non-default name, namespace and
// port show up in the output).
func TestManifestCommandFlags(t *testing.T) {
	dir := t.TempDir()
	wasm := writeFile(t, dir, "m.wasm", testModule(5))
	var out, errb bytes.Buffer
	rootCmd.SetArgs([]string{"manifest", "--config", basePolicyPath, "--image", "oci://registry.example/dg:1",
		"--wasm", wasm, "--name", "dg-test", "--namespace", "istio-system", "--port", "2762", "--envoyfilter"})
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&errb)
	defer func() { rootCmd.SetOut(nil); rootCmd.SetErr(nil); rootCmd.SetArgs(nil) }()
	require.NoError(t, rootCmd.Execute(), errb.String())
	requireContainsAll(t, "output", out.String(), "name: dg-test", "name: dg-test-early-data", "namespace: istio-system", "number: 2762", "portNumber: 2762")
}
