package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	if err := runPush(context.Background(), &out, []string{wasm, ref}, pushFlags{insecure: true}, popts); err != nil {
		t.Fatal(err)
	}
	want, _ := oci.Digest(mod, oci.FormatOCI)
	if !strings.Contains(out.String(), "WasmPlugin spec.sha256: "+want) {
		t.Fatalf("push output %q lacks the digest %s", out.String(), want)
	}
	// What was pushed is what Istio's agent would extract.
	img, err := oci.Pull(context.Background(), ref, popts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := oci.Extract(img)
	if err != nil || !bytes.Equal(got, mod) {
		t.Fatalf("pulled module differs (err %v)", err)
	}
	// `dicomgate manifest --wasm` pins the same digest without a registry.
	var mout, merr bytes.Buffer
	if err := runManifest(&mout, &merr, manifestFlags{config: basePolicyPath, image: ref, wasm: wasm, port: 11112, namespace: "istio-ingress", name: "dicomgate"}); err != nil {
		t.Fatal(err, merr.String())
	}
	if !strings.Contains(mout.String(), "sha256: "+want) {
		t.Errorf("manifest does not pin the pushed digest %s", want)
	}
}

func TestPushLayout(t *testing.T) {
	dir := t.TempDir()
	wasm := writeFile(t, dir, "dicomgate.wasm", testModule(3))
	lay := filepath.Join(dir, "layout")
	var out bytes.Buffer
	if err := runPush(context.Background(), &out, []string{wasm, "oci://registry.example/dicomgate:0.2.0"}, pushFlags{layout: lay, docker: true}, oci.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	idx, err := os.ReadFile(filepath.Join(lay, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Manifests []struct {
			MediaType   string            `json:"mediaType"`
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(idx, &index); err != nil {
		t.Fatal(err)
	}
	want, _ := oci.Digest(testModule(3), oci.FormatDocker)
	if len(index.Manifests) != 1 || index.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "0.2.0" ||
		index.Manifests[0].Digest != "sha256:"+want || index.Manifests[0].MediaType != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Errorf("index.json %s", idx)
	}
	if !strings.Contains(out.String(), "WasmPlugin spec.sha256: "+want) {
		t.Errorf("output %q lacks the digest", out.String())
	}
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
		err := runPush(context.Background(), &bytes.Buffer{}, tc.args, pushFlags{}, oci.PushOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != tc.code {
			t.Errorf("%v: err = %v (code %d), want %q code %d", tc.args, err, exitCode(err), tc.want, tc.code)
		}
	}
}
