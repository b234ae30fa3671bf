package wasmbuild

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDicomgateFromEnv(t *testing.T) {
	// The env path wins over a build: a file that is not a module proves it.
	p := filepath.Join(t.TempDir(), "x.wasm")
	require.NoError(t, os.WriteFile(p, []byte("not a module"), 0o644))
	t.Setenv("DICOMGATE_WASM", p)
	b, src, err := Dicomgate()
	require.NoError(t, err)
	require.Equal(t, "not a module", string(b), "Dicomgate() from %q; want the bytes of %s (no build)", src, p)
	require.Equal(t, "$DICOMGATE_WASM="+p, src, "Dicomgate() source; want the bytes of %s (no build)", p)
}

func TestModuleRoot(t *testing.T) {
	root, err := moduleRoot()
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	require.Contains(t, string(b), "module github.com/dicomgate/dicomgate\n", "%s/go.mod is not the dicomgate module", root)
}

// The Makefile's `make wasm` recipe is the one Args builds: the module the
// tests and the size budget measure is the one `make wasm` ships.
func TestMakefileRecipe(t *testing.T) {
	root, err := moduleRoot()
	require.NoError(t, err)
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	want := "\tGOOS=wasip1 GOARCH=wasm $(GO) " + strings.Join(Args("$(WASM)", FilterPackage, false), " ") + "\n"
	require.True(t, strings.Contains(string(mk), want), "the Makefile's $(WASM) recipe is not the build recipe of package wasmbuild; want the line\n%q", want)
}
