package wasmbuild

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
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

// The Makefile's `make wasm` recipe is the one Args builds: the module the
// tests and the size budget measure is the one `make wasm` ships.
func TestMakefileRecipe(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	want := "\tGOOS=wasip1 GOARCH=wasm $(GO) " + strings.Join(Args("$(WASM)", FilterPackage, false), " ") + "\n"
	if !bytes.Contains(mk, []byte(want)) {
		t.Errorf("the Makefile's $(WASM) recipe is not the build recipe of package wasmbuild; want the line\n%q", want)
	}
}
