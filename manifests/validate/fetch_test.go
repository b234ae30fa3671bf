package validate

import (
	"bytes"
	"context"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/dicomgate/dicomgate/manifests/oci"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
	istiowasm "istio.io/istio/pkg/wasm"
)

// Istio's own image fetcher (the istio-agent code behind WasmPlugin oci://
// URLs, pkg/wasm/imagefetcher.go) accepts the image `dicomgate push` builds,
// reports the digest `dicomgate manifest --wasm` pins, and returns the module.
func TestIstioImageFetcherAcceptsPushedImage(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // the fetcher's default keychain: no credentials
	module := append([]byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}, bytes.Repeat([]byte("dicomgate"), 500)...)
	for _, f := range []oci.Format{oci.FormatOCI, oci.FormatDocker} {
		img, err := oci.Build(module, f)
		if err != nil {
			t.Fatal(err)
		}
		ref := u.Host + "/dicomgate:" + f.String()
		if _, err := oci.Push(context.Background(), img, "oci://"+ref, oci.PushOptions{Insecure: true, Keychain: authn.NewMultiKeychain()}); err != nil {
			t.Fatal(err)
		}
		fetcher := istiowasm.NewImageFetcher(context.Background(), istiowasm.ImageFetcherOption{Insecure: true})
		get, digest, err := fetcher.PrepareFetch(ref)
		if err != nil {
			t.Fatalf("%s: Istio's fetcher: %v", f, err)
		}
		want, err := oci.Digest(module, f)
		if err != nil {
			t.Fatal(err)
		}
		if digest != want {
			t.Errorf("%s: Istio sees digest %s, dicomgate pins %s (the WasmPlugin would fail its sha256 check)", f, digest, want)
		}
		got, err := get()
		if err != nil {
			t.Fatalf("%s: Istio cannot extract the module: %v", f, err)
		}
		if !bytes.Equal(got, module) {
			t.Errorf("%s: Istio extracted different bytes", f)
		}
	}
}
