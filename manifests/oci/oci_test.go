package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
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
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func anonymous() PushOptions {
	return PushOptions{Insecure: true, Keychain: authn.NewMultiKeychain()}
}

func TestBuildIsReproducible(t *testing.T) {
	mod := fakeModule("dicomgate")
	for _, f := range []Format{FormatOCI, FormatDocker} {
		d1, err := Digest(mod, f)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := Digest(append([]byte(nil), mod...), f)
		if err != nil {
			t.Fatal(err)
		}
		if d1 != d2 {
			t.Fatalf("%s: two builds of the same module differ: %s vs %s", f, d1, d2)
		}
		other, err := Digest(fakeModule("other"), f)
		if err != nil {
			t.Fatal(err)
		}
		if other == d1 {
			t.Fatalf("%s: different modules gave the same digest %s", f, d1)
		}
	}
	oci, _ := Digest(mod, FormatOCI)
	docker, _ := Digest(mod, FormatDocker)
	if oci == docker {
		t.Fatal("OCI and Docker formats must differ (different media types)")
	}
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
		img, err := Build(mod, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.MediaType != tc.manifest {
			t.Errorf("%s: manifest media type %q, want %q", tc.f, m.MediaType, tc.manifest)
		}
		if len(m.Layers) != 1 || m.Layers[0].MediaType != tc.layer {
			t.Fatalf("%s: layers %+v, want exactly one %s", tc.f, m.Layers, tc.layer)
		}
		// The tar entry has the fixed metadata that makes the build reproducible.
		l, _ := img.Layers()
		rc, err := l[0].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		if !zr.ModTime.IsZero() || zr.Name != "" {
			t.Errorf("gzip header carries time %v / name %q", zr.ModTime, zr.Name)
		}
		tr := tar.NewReader(zr)
		h, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != PluginFileName || h.Uid != 0 || h.Gid != 0 || h.Mode != 0o444 || !h.ModTime.Equal(Epoch) || h.Uname != "" {
			t.Errorf("tar header %+v: want plugin.wasm, uid/gid 0, mode 0444, mtime epoch", h)
		}
		got, _ := io.ReadAll(tr)
		if !bytes.Equal(got, mod) {
			t.Error("plugin.wasm in the layer differs from the module")
		}
		if _, err := tr.Next(); err != io.EOF {
			t.Errorf("layer has more than one entry: %v", err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.Created.Time.Equal(Epoch) || len(cfg.RootFS.DiffIDs) != 1 {
			t.Errorf("config created=%v diffIDs=%v", cfg.Created, cfg.RootFS.DiffIDs)
		}
	}
}

func TestPushPullRoundTrip(t *testing.T) {
	host := startRegistry(t)
	ctx := context.Background()
	mod := fakeModule("roundtrip")
	for _, f := range []Format{FormatOCI, FormatDocker} {
		ref := "oci://" + host + "/dicomgate/filter:" + f.String()
		img, err := Build(mod, f)
		if err != nil {
			t.Fatal(err)
		}
		pushed, err := Push(ctx, img, ref, anonymous())
		if err != nil {
			t.Fatal(err)
		}
		want, _ := Digest(mod, f)
		if pushed.Hex != want {
			t.Fatalf("%s: pushed digest %s, offline Digest %s", f, pushed.Hex, want)
		}
		back, err := Pull(ctx, ref, anonymous())
		if err != nil {
			t.Fatal(err)
		}
		// The agent compares the WasmPlugin sha256 with this digest.
		got, err := back.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if got.Hex != want {
			t.Fatalf("%s: pulled manifest digest %s, want %s", f, got.Hex, want)
		}
		wasm, err := Extract(back)
		if err != nil {
			t.Fatalf("%s: Istio rules reject the pushed image: %v", f, err)
		}
		s := sha256.Sum256(wasm)
		if hex.EncodeToString(s[:]) != ModuleSHA256(mod) {
			t.Fatalf("%s: extracted module differs from the pushed one", f)
		}
		// Pull by digest works as well (url: oci://host/repo@sha256:...).
		if _, err := Pull(ctx, "oci://"+host+"/dicomgate/filter@sha256:"+want, anonymous()); err != nil {
			t.Fatalf("pull by digest: %v", err)
		}
	}
}

func TestWriteLayout(t *testing.T) {
	dir := t.TempDir()
	mod := fakeModule("layout")
	img, err := Build(mod, FormatOCI)
	if err != nil {
		t.Fatal(err)
	}
	d1, err := WriteLayout(dir, img, "0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	// Writing again under the same ref name replaces, not duplicates.
	if _, err := WriteLayout(dir, img, "0.1.0"); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("layout index has %d manifests, want 1", len(im.Manifests))
	}
	if im.Manifests[0].Digest != d1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "0.1.0" {
		t.Fatalf("index entry %+v", im.Manifests[0])
	}
	back, err := idx.Image(d1)
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := Extract(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wasm, mod) {
		t.Fatal("module read from the layout differs")
	}
}

func TestExtractAppliesIstioRules(t *testing.T) {
	mod := fakeModule("rules")
	tgz, err := layerTarGz(mod)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(manifest types.MediaType, layers ...v1.Layer) v1.Image {
		img := mutate.MediaType(empty.Image, manifest)
		for _, l := range layers {
			img, err = mutate.AppendLayers(img, l)
			if err != nil {
				t.Fatal(err)
			}
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
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, mod) {
					t.Fatal("wrong module bytes")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestBuildRejectsNonWasm(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("\x00asm"), []byte("ELF\x7f....")} {
		if _, err := Build(b, FormatOCI); err == nil || !strings.Contains(err.Error(), "not a WebAssembly module") {
			t.Errorf("Build(%q) err = %v", b, err)
		}
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
		r, err := ParseReference(tc.in, false)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseReference(%q) err = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || r.Name() != tc.want {
			t.Errorf("ParseReference(%q) = %v, %v; want %s", tc.in, r, err, tc.want)
		}
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
