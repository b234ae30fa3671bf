// Package oci packages the dicomgate Wasm module as an OCI image that Istio's
// istio-agent can pull for a WasmPlugin `url: oci://…`, pushes it to a
// registry or writes it as an OCI image layout, and reads such images back
// with the same rules the agent applies.
//
// The image is the "compat" variant Istio accepts (istio/istio
// pkg/wasm/imagefetcher.go, PrepareFetch / extractOCIStandardImage /
// extractDockerImage): a single gzip-compressed tar layer holding the module
// as `plugin.wasm`, with OCI media types (application/vnd.oci.image.layer.v1.tar+gzip
// under an OCI manifest) or Docker media types
// (application/vnd.docker.image.rootfs.diff.tar.gzip under a Docker schema 2
// manifest).
//
// The build is reproducible: the tar entry, gzip header, config and history
// use fixed timestamps, owner and mode, so the same module bytes always give
// the same manifest digest (for a given dicomgate build; the deflate output
// of Go's compress/flate is part of the digest). That digest is what a
// WasmPlugin's `sha256` must hold for an oci:// URL: the agent compares it
// with the image MANIFEST digest, not with the digest of plugin.wasm.
package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PluginFileName is the file name Istio's agent looks for (by base name) in
// the image's last layer.
const PluginFileName = "plugin.wasm"

// URLScheme is the WasmPlugin URL scheme for registry images.
const URLScheme = "oci://"

// MaxModuleBytes bounds the module size accepted by [Build] and read back by
// [Extract] (Istio's agent caps a module at 256 MiB by default,
// features.MaxWasmBinarySizeBytes).
const MaxModuleBytes = 256 << 20

// Epoch is the fixed timestamp written into the tar entry, the image config
// and its history, so that builds are reproducible.
var Epoch = time.Unix(0, 0).UTC()

// Format selects the media types of the image.
type Format int

const (
	// FormatOCI uses an OCI image manifest and an
	// application/vnd.oci.image.layer.v1.tar+gzip layer (Istio's
	// "OCI compat" variant).
	FormatOCI Format = iota
	// FormatDocker uses a Docker schema 2 manifest and an
	// application/vnd.docker.image.rootfs.diff.tar.gzip layer (Istio's
	// "Docker compat" variant).
	FormatDocker
)

// String returns "oci" or "docker".
func (f Format) String() string {
	if f == FormatDocker {
		return "docker"
	}
	return "oci"
}

// wasmMagic is the 4-byte header of every Wasm binary; Istio's agent rejects
// a fetched module without it (pkg/wasm/cache.go isValidWasmBinary).
var wasmMagic = []byte{0x00, 'a', 's', 'm'}

// CheckModule reports whether b looks like a Wasm binary module: at least the
// 8-byte header (magic "\0asm" and version) and at most MaxModuleBytes.
func CheckModule(b []byte) error {
	if len(b) < 8 || !bytes.Equal(b[:4], wasmMagic) {
		return errors.New("not a WebAssembly module: it must start with the 8-byte header \"\\0asm\" + version (build it with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared)")
	}
	if len(b) > MaxModuleBytes {
		return fmt.Errorf("module is %d bytes, more than the %d bytes Istio's agent accepts", len(b), MaxModuleBytes)
	}
	return nil
}

// Build returns the reproducible compat image holding module as plugin.wasm.
// The same module and format always give the same manifest digest.
func Build(module []byte, format Format) (v1.Image, error) {
	if err := CheckModule(module); err != nil {
		return nil, err
	}
	layerBytes, err := layerTarGz(module)
	if err != nil {
		return nil, err
	}
	return singleLayerImage(layerBytes, format, v1.History{
		CreatedBy: "dicomgate push: COPY " + PluginFileName + " /" + PluginFileName,
		Comment:   "dicomgate proxy-wasm network filter",
	}, func(cfg *v1.ConfigFile) {
		cfg.OS = "wasip1"
		cfg.Architecture = "wasm"
	})
}

// singleLayerImage is the reproducible one-layer image both images are made of: layerBytes (a .tar.gz)
// as its only layer, with history h, media types of format, every timestamp Epoch, and its config
// file completed by setConfig.
func singleLayerImage(layerBytes []byte, format Format, h v1.History, setConfig func(*v1.ConfigFile)) (v1.Image, error) {
	layerType, manifestType, configType := types.OCILayer, types.OCIManifestSchema1, types.OCIConfigJSON
	if format == FormatDocker {
		layerType, manifestType, configType = types.DockerLayer, types.DockerManifestSchema2, types.DockerConfigJSON
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(layerType))
	if err != nil {
		return nil, fmt.Errorf("building the image layer: %w", err)
	}
	h.Created = v1.Time{Time: Epoch}
	img := mutate.MediaType(empty.Image, manifestType)
	img = mutate.ConfigMediaType(img, configType)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: layerType, History: h})
	if err != nil {
		return nil, fmt.Errorf("adding the layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: Epoch}
	setConfig(cfg)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("setting the image config: %w", err)
	}
	return img, nil
}

// layerTarGz returns the plugin layer: module as /plugin.wasm (mode 0444),
// best compression.
func layerTarGz(module []byte) ([]byte, error) {
	return fileTarGz(PluginFileName, 0o444, module, gzip.BestCompression)
}

// fileTarGz returns a gzip-compressed tar holding one regular file with fixed
// metadata (mtime Epoch, uid/gid 0, no user or group names) and a gzip header
// without name or time: the same input always gives the same bytes.
func fileTarGz(name string, mode int64, data []byte, level int) ([]byte, error) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: mode, ModTime: Epoch, Format: tar.FormatUSTAR}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("writing the tar header: %w", err)
	}
	if _, err := tw.Write(data); err != nil {
		return nil, fmt.Errorf("writing %s into the tar: %w", name, err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing the tar: %w", err)
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, level)
	if err != nil {
		return nil, err
	}
	// gzip.Header zero value: no name, no comment, ModTime zero (written as 0),
	// OS 255 (unknown): nothing varies between builds.
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, fmt.Errorf("compressing the layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing the layer: %w", err)
	}
	return gz.Bytes(), nil
}

// Digest returns the hex sha256 of the manifest of the image [Build] makes
// from module: the value for a WasmPlugin `sha256` with an oci:// URL.
func Digest(module []byte, format Format) (string, error) {
	img, err := Build(module, format)
	if err != nil {
		return "", err
	}
	h, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("computing the manifest digest: %w", err)
	}
	return h.Hex, nil
}

// ModuleSHA256 returns the hex sha256 of the module bytes: the value for a
// WasmPlugin `sha256` with an http(s):// URL serving the raw module.
func ModuleSHA256(module []byte) string {
	s := sha256.Sum256(module)
	return hex.EncodeToString(s[:])
}

// ParseReference parses an image reference with or without the oci://
// scheme ("oci://registry.example/dicomgate:0.1.0",
// "registry.example/dicomgate@sha256:…"). insecure allows plain HTTP.
func ParseReference(ref string, insecure bool) (name.Reference, error) {
	r := strings.TrimPrefix(ref, URLScheme)
	if r == "" {
		return nil, fmt.Errorf("image reference %q is empty: use oci://REGISTRY/REPOSITORY:TAG", ref)
	}
	if strings.Contains(r, "://") {
		return nil, fmt.Errorf("image reference %q: only the oci:// scheme is supported (or none): use oci://REGISTRY/REPOSITORY:TAG", ref)
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	parsed, err := name.ParseReference(r, opts...)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w (use oci://REGISTRY/REPOSITORY:TAG)", ref, err)
	}
	return parsed, nil
}

// PushOptions configures [Push].
type PushOptions struct {
	// Insecure allows a registry served over plain HTTP.
	Insecure bool
	// Keychain resolves registry credentials; nil means
	// authn.DefaultKeychain (docker config, DOCKER_CONFIG, credential
	// helpers).
	Keychain authn.Keychain
	// Transport overrides the HTTP transport (tests); nil means the default.
	Transport remote.Option
}

// Push uploads img to ref ("oci://REGISTRY/REPOSITORY:TAG") and returns the
// pushed manifest digest.
func Push(ctx context.Context, img v1.Image, ref string, opts PushOptions) (v1.Hash, error) {
	r, err := ParseReference(ref, opts.Insecure)
	if err != nil {
		return v1.Hash{}, err
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if opts.Transport != nil {
		ropts = append(ropts, opts.Transport)
	}
	if err := remote.Write(r, img, ropts...); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", r.Name(), err)
	}
	return img.Digest()
}

// Pull fetches the image at ref ("oci://REGISTRY/REPOSITORY:TAG") the way
// Istio's agent does (remote.Get, then the image), for checking a push.
func Pull(ctx context.Context, ref string, opts PushOptions) (v1.Image, error) {
	r, err := ParseReference(ref, opts.Insecure)
	if err != nil {
		return nil, err
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if opts.Transport != nil {
		ropts = append(ropts, opts.Transport)
	}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, fmt.Errorf("fetching the manifest of %s: %w", r.Name(), err)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("reading %s as an image: %w", r.Name(), err)
	}
	return img, nil
}

// WriteLayout adds img to the OCI image layout in dir (created if missing),
// annotated with org.opencontainers.image.ref.name = refName when refName is
// not empty. An image with the same ref name already in the layout is
// replaced.
func WriteLayout(dir string, img v1.Image, refName string) (v1.Hash, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		if _, statErr := os.Stat(path.Join(dir, "index.json")); statErr == nil {
			return v1.Hash{}, fmt.Errorf("reading OCI layout %s: %w", dir, err)
		}
		p, err = layout.Write(dir, empty.Index)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("creating OCI layout %s: %w", dir, err)
		}
	}
	var lopts []layout.Option
	if refName != "" {
		lopts = append(lopts, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": refName,
		}))
		err = p.ReplaceImage(img, func(d v1.Descriptor) bool {
			return d.Annotations["org.opencontainers.image.ref.name"] == refName
		}, lopts...)
	} else {
		// Without a name the same image replaces its own untagged entry:
		// writing twice must not list it twice.
		var digest v1.Hash
		if digest, err = img.Digest(); err == nil {
			err = p.ReplaceImage(img, func(d v1.Descriptor) bool {
				return d.Digest == digest && d.Annotations["org.opencontainers.image.ref.name"] == ""
			})
		}
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing the image into OCI layout %s: %w", dir, err)
	}
	if err := normalizeLayoutModes(dir); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

// normalizeLayoutModes gives every file of the layout mode 0644 and every
// directory 0755: go-containerregistry writes some blobs 0600 (through a
// temporary file) and index.json and oci-layout 0755, while a layout is data
// meant to be read by other users (a registry, a web server) and never run.
func normalizeLayoutModes(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		if err := os.Chmod(p, mode); err != nil {
			return fmt.Errorf("OCI layout %s: %w", dir, err)
		}
		return nil
	})
}

// Extract returns plugin.wasm from img using the rules of Istio's agent
// (pkg/wasm/imagefetcher.go): a Docker schema 2 manifest needs a last layer of
// type application/vnd.docker.image.rootfs.diff.tar.gzip; any other manifest
// needs a last layer of type application/vnd.oci.image.layer.v1.tar+gzip;
// that layer must be a tar.gz holding a file whose base name is plugin.wasm,
// and the file must start with the Wasm header. (Istio's third variant, the
// two-layer solo.io artifact, is not produced by this package and not
// accepted here.)
func Extract(img v1.Image) ([]byte, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	want := types.OCILayer
	if m.MediaType == types.DockerManifestSchema2 {
		want = types.DockerLayer
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the layers: %w", err)
	}
	if len(layers) == 0 {
		return nil, errors.New("image has no layers: Istio needs a last layer holding plugin.wasm")
	}
	last := layers[len(layers)-1]
	mt, err := last.MediaType()
	if err != nil {
		return nil, fmt.Errorf("reading the last layer's media type: %w", err)
	}
	if mt != want {
		return nil, fmt.Errorf("last layer has media type %s; with manifest type %q Istio's agent needs %s", mt, m.MediaType, want)
	}
	rc, err := last.Compressed()
	if err != nil {
		return nil, fmt.Errorf("reading the last layer: %w", err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return nil, fmt.Errorf("last layer is not gzip: %w", err)
	}
	tr := tar.NewReader(io.LimitReader(zr, MaxModuleBytes+1<<20))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("last layer holds no file named %s", PluginFileName)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the layer's tar: %w", err)
		}
		if path.Base(h.Name) != PluginFileName {
			continue
		}
		if h.Size > MaxModuleBytes {
			return nil, fmt.Errorf("%s in the layer is %d bytes, more than %d", h.Name, h.Size, MaxModuleBytes)
		}
		b := make([]byte, h.Size)
		if _, err := io.ReadFull(tr, b); err != nil {
			return nil, fmt.Errorf("reading %s from the layer: %w", h.Name, err)
		}
		if err := CheckModule(b); err != nil {
			return nil, fmt.Errorf("%s in the layer: %w", h.Name, err)
		}
		return b, nil
	}
}
