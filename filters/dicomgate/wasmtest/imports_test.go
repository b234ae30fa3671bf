//go:build !wasip1

package wasmtest

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/dicomgate/dicomgate/"

// testDeps returns the packages (import paths, test variants folded into
// their package) that the given packages and their tests depend on,
// themselves included: `go list -test -deps` with the go on PATH (as
// internal/wasmbuild builds the module).
func testDeps(t *testing.T, pkgs ...string) map[string]bool {
	t.Helper()
	args := append([]string{"list", "-test", "-deps", "-f", "{{.ImportPath}}"}, pkgs...)
	out, err := exec.Command("go", args...).CombinedOutput()
	require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), out)
	deps := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// "p [p.test]" is p compiled for its own test binary; "p.test" the binary.
		path, _, _ := strings.Cut(line, " ")
		deps[strings.TrimSuffix(path, ".test")] = true
	}
	return deps
}

// under returns the packages of deps whose import path starts with prefix.
func under(deps map[string]bool, prefix string) []string {
	var found []string
	for p := range deps {
		if strings.HasPrefix(p, prefix) {
			found = append(found, p)
		}
	}
	return found
}

// TestImportRule pins issue 12's rooms for the filter and the host: the
// filter's tests run natively (proxytest) and do not import the host, and
// the host's tests load the filter as module bytes (internal/wasmbuild) and
// import nothing of filters/. This package is where the two meet. A test
// that needs both belongs here, not in filters/dicomgate or wasm/host.
func TestImportRule(t *testing.T) {
	// The probe: this package's own tests import wasm/host, so the query
	// sees test imports.
	self := testDeps(t, module+"filters/dicomgate/wasmtest")
	require.True(t, self[module+"wasm/host"], "go list -test -deps of filters/dicomgate/wasmtest lists no wasm/host: the check below cannot see test imports")

	filter := testDeps(t, module+"filters/dicomgate", module+"filters/dicomgate/internal/...")
	require.True(t, filter[module+"filters/dicomgate"], "go list -test -deps of filters/dicomgate did not list the package itself")
	require.Empty(t, under(filter, module+"wasm/"),
		"filters/dicomgate (tests included) imports the host; tests that run the compiled module in wasm/host go in filters/dicomgate/wasmtest")

	host := testDeps(t, module+"wasm/host/...")
	require.True(t, host[module+"wasm/host"], "go list -test -deps of wasm/host/... did not list wasm/host itself")
	require.Empty(t, under(host, module+"filters/"),
		"wasm/host (tests included) imports the filter; load the module's bytes with internal/wasmbuild, or put the test in filters/dicomgate/wasmtest")
}
