package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/manifests/oci"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
)

func TestPushPrintsTheDigestManifestPins(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	dir := t.TempDir()
	mod := testModule(9)
	wasm := writeFile(t, dir, "dicomgate.wasm", mod)
	ref := "oci://" + u.Host + "/dicomgate:test"
	popts := oci.PushOptions{Insecure: true, Keychain: authn.NewMultiKeychain()}

	var out bytes.Buffer
	require.NoError(t, runPush(context.Background(), &out, []string{wasm, ref}, pushFlags{insecure: true}, popts))
	want, _ := oci.Digest(mod, oci.FormatOCI)
	require.Contains(t, out.String(), "WasmPlugin spec.sha256: "+want, "push output lacks the digest")
	// What was pushed is what Istio's agent would extract.
	img, err := oci.Pull(context.Background(), ref, popts)
	require.NoError(t, err)
	got, err := oci.Extract(img)
	require.NoError(t, err, "extracting the pulled module")
	require.Equal(t, mod, got, "pulled module differs")
	// `dicomgate manifest --wasm` pins the same digest without a registry.
	var mout, merr bytes.Buffer
	err = runManifest(&mout, &merr, manifestFlags{config: basePolicyPath, image: ref, wasm: wasm, port: 11112, namespace: "istio-ingress", name: "dicomgate"})
	require.NoError(t, err, merr.String())
	require.Contains(t, mout.String(), "sha256: "+want, "manifest does not pin the pushed digest %s", want)
}

func TestPushLayout(t *testing.T) {
	dir := t.TempDir()
	wasm := writeFile(t, dir, "dicomgate.wasm", testModule(3))
	lay := filepath.Join(dir, "layout")
	var out bytes.Buffer
	require.NoError(t, runPush(context.Background(), &out, []string{wasm, "oci://registry.example/dicomgate:0.2.0"}, pushFlags{layout: lay, docker: true}, oci.PushOptions{}))
	idx, err := os.ReadFile(filepath.Join(lay, "index.json"))
	require.NoError(t, err)
	var index struct {
		Manifests []struct {
			MediaType   string            `json:"mediaType"`
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	require.NoError(t, json.Unmarshal(idx, &index))
	want, _ := oci.Digest(testModule(3), oci.FormatDocker)
	require.Len(t, index.Manifests, 1, "index.json %s", idx)
	m := index.Manifests[0]
	require.Equal(t, "0.2.0", m.Annotations["org.opencontainers.image.ref.name"], "index.json %s", idx)
	require.Equal(t, "sha256:"+want, m.Digest, "index.json %s", idx)
	require.Equal(t, "application/vnd.docker.distribution.manifest.v2+json", m.MediaType, "index.json %s", idx)
	require.Contains(t, out.String(), "WasmPlugin spec.sha256: "+want, "output lacks the digest")
}

func TestPushArgumentErrors(t *testing.T) {
	dir := t.TempDir()
	wasm := writeFile(t, dir, "dicomgate.wasm", testModule(4))
	notWasm := writeFile(t, dir, "x.txt", []byte("hello"))
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{wasm}, "--layout", 2},
		{[]string{wasm, "https://r.example/x:1"}, "only the oci:// scheme", 2},
		{[]string{notWasm, "oci://r.example/x:1"}, "not a WebAssembly module", 2},
		{[]string{filepath.Join(dir, "missing.wasm"), "oci://r.example/x:1"}, "missing.wasm", 2},
	} {
		t.Run(tc.want, func(t *testing.T) {
			err := runPush(context.Background(), &bytes.Buffer{}, tc.args, pushFlags{}, oci.PushOptions{})
			require.ErrorContains(t, err, tc.want, "%v", tc.args)
			require.Equal(t, tc.code, exitCode(err), "%v: exit status, err = %v", tc.args, err)
		})
	}
}
