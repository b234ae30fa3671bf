package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
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
		var out, errb bytes.Buffer
		err := runManifest(&out, &errb, manifestFlags{config: basePolicyPath, image: tc.image, wasm: wasm, docker: tc.docker, envoyFilter: true, namespace: "istio-ingress", name: "dicomgate", port: 11112})
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.image, err, errb.String())
		}
		if want := "sha256: " + tc.want(); !strings.Contains(out.String(), want) {
			t.Errorf("%s docker=%v: output lacks %q:\n%s", tc.image, tc.docker, want, out.String())
		}
		if !strings.Contains(out.String(), "kind: EnvoyFilter") {
			t.Error("--envoyfilter did not render the EnvoyFilter")
		}
	}
}

func TestManifestInvalidPolicyPrintsAllDiagnostics(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "bad.json", []byte(`{"defaultAction":"route","mode":"loud","rules":[{"name":"x","action":"route"}]}`))
	var out, errb bytes.Buffer
	err := runManifest(&out, &errb, manifestFlags{config: cfg, image: "oci://r.example/x:1", port: 11112})
	if exitCode(err) != 2 {
		t.Fatalf("exit code %d (err %v), want 2", exitCode(err), err)
	}
	for _, want := range []string{"defaultAction", "mode", "rules[0]"} {
		if !strings.Contains(errb.String(), cfg+": error: "+want) {
			t.Errorf("stderr lacks the diagnostic for %s:\n%s", want, errb.String())
		}
	}
	if out.Len() != 0 {
		t.Errorf("nothing may be rendered for an invalid policy, got:\n%s", out.String())
	}
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
		var out, errb bytes.Buffer
		err := runManifest(&out, &errb, tc.f)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.f, err, tc.want)
		}
	}
}

func TestManifestJSONPolicyAndOutputFile(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "p.json", []byte(`{"defaultAction":"deny","upstreamConnect":"immediate","rules":[{"name":"a","match":{"calledAETitles":["ORTHANC"]},"action":"allow"}]}`))
	outFile := filepath.Join(dir, "out.yaml")
	var out, errb bytes.Buffer
	if err := runManifest(&out, &errb, manifestFlags{config: cfg, image: "oci://r.example/x:1", sha: strings.Repeat("ab", 32), outputFile: outFile, namespace: "istio-ingress", name: "dicomgate", port: 11112}); err != nil {
		t.Fatal(err, errb.String())
	}
	b, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "upstreamConnect: immediate") || strings.Contains(string(b), "EnvoyFilter") {
		t.Errorf("unexpected output:\n%s", b)
	}
	if out.Len() != 0 {
		t.Error("with --output-file nothing goes to stdout")
	}
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
	if err := rootCmd.Execute(); err != nil {
		t.Fatal(err, errb.String())
	}
	for _, want := range []string{"name: dg-test", "name: dg-test-early-data", "namespace: istio-system", "number: 2762", "portNumber: 2762"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
