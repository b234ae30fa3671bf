package wasmbuild

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestDicomgateFromEnv(t *testing.T) {
	// The env path wins over a build: a file that is not a module proves it.
	p := filepath.Join(t.TempDir(), "x.wasm")
	if err := os.WriteFile(p, []byte("not a module"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DICOMGATE_WASM", p)
	b, src, err := Dicomgate()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "not a module" || src != "$DICOMGATE_WASM="+p {
		t.Errorf("Dicomgate() = %q from %q; want the bytes of %s (no build)", b, src, p)
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("module github.com/dicomgate/dicomgate\n")) {
		t.Errorf("%s/go.mod is not the dicomgate module", root)
	}
}
