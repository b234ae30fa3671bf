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
	"github.com/stretchr/testify/require"
	istiowasm "istio.io/istio/pkg/wasm"
)

// Istio's own image fetcher (the istio-agent code behind WasmPlugin oci://
// URLs, pkg/wasm/imagefetcher.go) accepts the image `dicomgate push` builds,
// reports the digest `dicomgate manifest --wasm` pins, and returns the module.
func TestIstioImageFetcherAcceptsPushedImage(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // the fetcher's default keychain: no credentials
	module := append([]byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}, bytes.Repeat([]byte("dicomgate"), 500)...)
	for _, f := range []oci.Format{oci.FormatOCI, oci.FormatDocker} {
		img, err := oci.Build(module, f)
		require.NoError(t, err)
		ref := u.Host + "/dicomgate:" + f.String()
		_, err = oci.Push(context.Background(), img, "oci://"+ref, oci.PushOptions{Insecure: true, Keychain: authn.NewMultiKeychain()})
		require.NoError(t, err)
		fetcher := istiowasm.NewImageFetcher(context.Background(), istiowasm.ImageFetcherOption{Insecure: true})
		get, digest, err := fetcher.PrepareFetch(ref)
		require.NoError(t, err, "%s: Istio's fetcher", f)
		want, err := oci.Digest(module, f)
		require.NoError(t, err)
		require.Equal(t, want, digest, "%s: the digest Istio sees differs from the one dicomgate pins (the WasmPlugin would fail its sha256 check)", f)
		got, err := get()
		require.NoError(t, err, "%s: Istio cannot extract the module", f)
		require.True(t, bytes.Equal(got, module), "%s: Istio extracted different bytes", f)
	}
}
