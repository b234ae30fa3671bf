package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"
)

// fakeModule returns a small byte slice with a valid Wasm header and a body
// that depends on seed.
func fakeModule(seed string) []byte {
	b := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	for i := 0; i < 4096; i++ {
		b = append(b, seed[i%len(seed)]^byte(i))
	}
	return b
}

// startRegistry runs go-containerregistry's in-memory registry on an
// httptest server and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	return u.Host
}

func anonymous() PushOptions {
	return PushOptions{Insecure: true, Keychain: authn.NewMultiKeychain()}
}

func TestBuildIsReproducible(t *testing.T) {
	mod := fakeModule("dicomgate")
	for _, f := range []Format{FormatOCI, FormatDocker} {
		d1, err := Digest(mod, f)
		require.NoError(t, err)
		d2, err := Digest(append([]byte(nil), mod...), f)
		require.NoError(t, err)
		require.Equal(t, d1, d2, "%s: two builds of the same module differ", f)
		other, err := Digest(fakeModule("other"), f)
		require.NoError(t, err)
		require.NotEqual(t, d1, other, "%s: different modules gave the same digest", f)
	}
	oci, _ := Digest(mod, FormatOCI)
	docker, _ := Digest(mod, FormatDocker)
	require.NotEqual(t, oci, docker, "OCI and Docker formats must differ (different media types)")
}

func TestBuildLayoutMatchesIstioCompatRules(t *testing.T) {
	mod := fakeModule("x")
	for _, tc := range []struct {
		f               Format
		manifest, layer types.MediaType
	}{
		{FormatOCI, types.OCIManifestSchema1, types.OCILayer},
		{FormatDocker, types.DockerManifestSchema2, types.DockerLayer},
	} {
		t.Run(tc.f.String(), func(t *testing.T) {
			img, err := Build(mod, tc.f)
			require.NoError(t, err)
			m, err := img.Manifest()
			require.NoError(t, err)
			require.Equal(t, tc.manifest, m.MediaType, "%s: manifest media type", tc.f)
			require.Len(t, m.Layers, 1, "%s: want exactly one %s layer", tc.f, tc.layer)
			require.Equal(t, tc.layer, m.Layers[0].MediaType, "%s: layer media type", tc.f)
			// The tar entry has the fixed metadata that makes the build reproducible.
			l, _ := img.Layers()
			rc, err := l[0].Compressed()
			require.NoError(t, err)
			zr, err := gzip.NewReader(rc)
			require.NoError(t, err)
			require.True(t, zr.ModTime.IsZero() && zr.Name == "", "gzip header carries time %v / name %q", zr.ModTime, zr.Name)
			tr := tar.NewReader(zr)
			h, err := tr.Next()
			require.NoError(t, err)
			require.True(t, h.Name == PluginFileName && h.Uid == 0 && h.Gid == 0 && h.Mode == 0o444 && h.ModTime.Equal(Epoch) && h.Uname == "",
				"tar header %+v: want plugin.wasm, uid/gid 0, mode 0444, mtime epoch", h)
			got, _ := io.ReadAll(tr)
			require.True(t, bytes.Equal(got, mod), "plugin.wasm in the layer differs from the module")
			_, err = tr.Next()
			require.ErrorIs(t, err, io.EOF, "layer has more than one entry")
			cfg, err := img.ConfigFile()
			require.NoError(t, err)
			require.True(t, cfg.Created.Time.Equal(Epoch) && len(cfg.RootFS.DiffIDs) == 1, "config created=%v diffIDs=%v", cfg.Created, cfg.RootFS.DiffIDs)
		})
	}
}

func TestPushPullRoundTrip(t *testing.T) {
	host := startRegistry(t)
	ctx := context.Background()
	mod := fakeModule("roundtrip")
	for _, f := range []Format{FormatOCI, FormatDocker} {
		ref := "oci://" + host + "/dicomgate/filter:" + f.String()
		img, err := Build(mod, f)
		require.NoError(t, err)
		pushed, err := Push(ctx, img, ref, anonymous())
		require.NoError(t, err)
		want, _ := Digest(mod, f)
		require.Equal(t, want, pushed.Hex, "%s: pushed digest vs offline Digest", f)
		back, err := Pull(ctx, ref, anonymous())
		require.NoError(t, err)
		// The agent compares the WasmPlugin sha256 with this digest.
		got, err := back.Digest()
		require.NoError(t, err)
		require.Equal(t, want, got.Hex, "%s: pulled manifest digest", f)
		wasm, err := Extract(back)
		require.NoError(t, err, "%s: Istio rules reject the pushed image", f)
		s := sha256.Sum256(wasm)
		require.Equal(t, ModuleSHA256(mod), hex.EncodeToString(s[:]), "%s: extracted module differs from the pushed one", f)
		// Pull by digest works as well (url: oci://host/repo@sha256:...).
		_, err = Pull(ctx, "oci://"+host+"/dicomgate/filter@sha256:"+want, anonymous())
		require.NoError(t, err, "pull by digest")
	}
}

func TestWriteLayout(t *testing.T) {
	dir := t.TempDir()
	mod := fakeModule("layout")
	img, err := Build(mod, FormatOCI)
	require.NoError(t, err)
	d1, err := WriteLayout(dir, img, "0.1.0")
	require.NoError(t, err)
	// Writing again under the same ref name replaces, not duplicates.
	_, err = WriteLayout(dir, img, "0.1.0")
	require.NoError(t, err)
	p, err := layout.FromPath(dir)
	require.NoError(t, err)
	idx, err := p.ImageIndex()
	require.NoError(t, err)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1, "layout index manifests")
	require.True(t, im.Manifests[0].Digest == d1 && im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] == "0.1.0",
		"index entry %+v", im.Manifests[0])
	back, err := idx.Image(d1)
	require.NoError(t, err)
	wasm, err := Extract(back)
	require.NoError(t, err)
	require.True(t, bytes.Equal(wasm, mod), "module read from the layout differs")
}

func TestExtractAppliesIstioRules(t *testing.T) {
	mod := fakeModule("rules")
	tgz, err := layerTarGz(mod)
	require.NoError(t, err)
	mk := func(manifest types.MediaType, layers ...v1.Layer) v1.Image {
		img := mutate.MediaType(empty.Image, manifest)
		for _, l := range layers {
			img, err = mutate.AppendLayers(img, l)
			require.NoError(t, err)
		}
		return img
	}
	otherTgz := func(name string, body []byte) []byte {
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write(body)
		_ = tw.Close()
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write(tb.Bytes())
		_ = zw.Close()
		return gz.Bytes()
	}
	cases := []struct {
		name    string
		img     v1.Image
		wantErr string
	}{
		{"oci ok", mk(types.OCIManifestSchema1, static.NewLayer(tgz, types.OCILayer)), ""},
		{"nested path ok (base name rule)", mk(types.OCIManifestSchema1, static.NewLayer(otherTgz("usr/lib/plugin.wasm", mod), types.OCILayer)), ""},
		{"docker manifest with OCI layer", mk(types.DockerManifestSchema2, static.NewLayer(tgz, types.OCILayer)), "needs application/vnd.docker.image.rootfs.diff.tar.gzip"},
		{"oci manifest with docker layer", mk(types.OCIManifestSchema1, static.NewLayer(tgz, types.DockerLayer)), "needs application/vnd.oci.image.layer.v1.tar+gzip"},
		{"only the last layer counts", mk(types.OCIManifestSchema1, static.NewLayer(tgz, types.OCILayer), static.NewLayer(otherTgz("README", []byte("x")), types.OCILayer)), "no file named plugin.wasm"},
		{"wrong file name", mk(types.OCIManifestSchema1, static.NewLayer(otherTgz("filter.wasm", mod), types.OCILayer)), "no file named plugin.wasm"},
		{"not wasm", mk(types.OCIManifestSchema1, static.NewLayer(otherTgz("plugin.wasm", []byte("#!/bin/sh\necho hi\n")), types.OCILayer)), "not a WebAssembly module"},
		{"no layers", mk(types.OCIManifestSchema1), "no layers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Extract(tc.img)
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.True(t, bytes.Equal(got, mod), "wrong module bytes")
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestBuildRejectsNonWasm(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("\x00asm"), []byte("ELF\x7f....")} {
		t.Run(fmt.Sprintf("%q", b), func(t *testing.T) {
			_, err := Build(b, FormatOCI)
			require.ErrorContains(t, err, "not a WebAssembly module", "Build(%q)", b)
		})
	}
}

func TestParseReference(t *testing.T) {
	for _, tc := range []struct {
		in, want, wantErr string
	}{
		{"oci://registry.example/dicomgate:0.1.0", "registry.example/dicomgate:0.1.0", ""},
		{"registry.example:5000/a/b:t", "registry.example:5000/a/b:t", ""},
		{"https://registry.example/dicomgate:1", "", "only the oci:// scheme"},
		{"oci://", "", "empty"},
		{"oci://Registry/UPPER:tag", "", "use oci://REGISTRY/REPOSITORY:TAG"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, err := ParseReference(tc.in, false)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr, "ParseReference(%q)", tc.in)
				return
			}
			require.NoError(t, err, "ParseReference(%q)", tc.in)
			require.Equal(t, tc.want, r.Name(), "ParseReference(%q)", tc.in)
		})
	}
}

// TestWriteLayoutUntaggedTwiceAndModes: writing the same image without a
// ref name twice lists it once; a second image is added beside it; every
// file of the layout is 0644 and every directory 0755 (go-containerregistry
// alone leaves a blob 0600 and index.json 0755).
func TestWriteLayoutUntaggedTwiceAndModes(t *testing.T) {
	dir := t.TempDir()
	img1, err := Build(fakeModule("one"), FormatOCI)
	require.NoError(t, err)
	img2, err := Build(fakeModule("two"), FormatOCI)
	require.NoError(t, err)
	d1, err := WriteLayout(dir, img1, "")
	require.NoError(t, err)
	_, err = WriteLayout(dir, img1, "")
	require.NoError(t, err)
	d2, err := WriteLayout(dir, img2, "")
	require.NoError(t, err)

	p, err := layout.FromPath(dir)
	require.NoError(t, err)
	idx, err := p.ImageIndex()
	require.NoError(t, err)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	var digests []v1.Hash
	for _, m := range im.Manifests {
		digests = append(digests, m.Digest)
	}
	require.ElementsMatch(t, []v1.Hash{d1, d2}, digests)

	n := 0
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		st, err := os.Stat(p)
		require.NoError(t, err)
		want := fs.FileMode(0o644)
		if d.IsDir() {
			want = 0o755
		}
		require.Equal(t, want, st.Mode().Perm(), p)
		n++
		return nil
	}))
	require.GreaterOrEqual(t, n, 9, "dir, oci-layout, index.json, blobs, blobs/sha256 and 2 x (manifest, config, layer)")
}
