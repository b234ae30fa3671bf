package oci

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// staticBinary builds a tiny static Linux program for the host's arch.
func staticBinary(t *testing.T) []byte {
	t.Helper()
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("GOARCH %s: the rejector image supports amd64 and arm64", runtime.GOARCH)
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n\ngo 1.22\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644))
	out := filepath.Join(dir, "x")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=", "GOWORK=off")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	bin, err := os.ReadFile(out)
	require.NoError(t, err)
	return bin
}

// TestBuildRejector: the image holds exactly /dicomgate (the bytes given,
// mode 0555), runs it as "dicomgate reject" as uid 65532 on linux/GOARCH,
// and the same binary gives the same digest.
func TestBuildRejector(t *testing.T) {
	bin := staticBinary(t)
	for _, format := range []Format{FormatOCI, FormatDocker} {
		img, err := BuildRejector(bin, format)
		require.NoError(t, err)
		cfg, err := img.ConfigFile()
		require.NoError(t, err)
		require.Equal(t, "linux", cfg.OS)
		require.Equal(t, runtime.GOARCH, cfg.Architecture)
		require.Equal(t, []string{"/dicomgate"}, cfg.Config.Entrypoint)
		require.Equal(t, []string{"reject"}, cfg.Config.Cmd)
		require.Equal(t, "65532:65532", cfg.Config.User)
		layers, err := img.Layers()
		require.NoError(t, err)
		require.Len(t, layers, 1)
		rc, err := layers[0].Uncompressed()
		require.NoError(t, err)
		tr := tar.NewReader(rc)
		hdr, err := tr.Next()
		require.NoError(t, err)
		require.Equal(t, "dicomgate", hdr.Name)
		require.Equal(t, int64(0o555), hdr.Mode)
		got, err := io.ReadAll(tr)
		require.NoError(t, err)
		require.True(t, bytes.Equal(bin, got), "the layer must hold the binary unchanged")
		_, err = tr.Next()
		require.ErrorIs(t, err, io.EOF, "the layer holds one file")
		rc.Close()

		again, err := BuildRejector(bin, format)
		require.NoError(t, err)
		d1, err := img.Digest()
		require.NoError(t, err)
		d2, err := again.Digest()
		require.NoError(t, err)
		require.Equal(t, d1, d2, "the build must be reproducible")
	}
}

func TestBuildRejectorRefusesOtherFiles(t *testing.T) {
	_, err := BuildRejector([]byte("\x00asm\x01\x00\x00\x00"), FormatOCI)
	require.ErrorContains(t, err, "not an ELF executable")
	// A dynamically linked executable: Debian's /bin/ls.
	ls, err := os.ReadFile("/bin/ls")
	require.NoError(t, err)
	_, err = CheckLinuxBinary(ls)
	require.ErrorContains(t, err, "dynamically linked")
}
