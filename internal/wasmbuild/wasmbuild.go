// Package wasmbuild gives tests and benchmarks the compiled dicomgate filter
// module: the bytes of $DICOMGATE_WASM when set (make sets it to
// build/dicomgate.wasm), otherwise a build of ./filters/dicomgate with exactly
// the `make wasm` command into a temporary directory, once per test binary.
// That module has no name section (-ldflags=-s); DicomgateWithNames builds
// one that has it, for tests that find guest functions by name. TestFilter
// builds the probe module wasm/testdata/testfilter the same way.
// CompilationCache is the on-disk wazero cache the tests share, so that each
// module is compiled once per machine rather than once per host.Engine.
//
// It also holds the one build recipe of a proxy-wasm module (Args, Command):
// `make wasm`, `dicomgate serve`'s fallback build, the tests and the
// benchmarks use it; TestMakefileRecipe keeps the Makefile's copy equal.
//
// It only runs the go tool on the filter's source path; it never imports the
// filter, so wasm/ may use it.
package wasmbuild

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
)

// CompilationCache returns the wazero compilation cache of tests and
// benchmarks (os.TempDir()/dicomgate-wasmhost-test-cache), opened once per
// test binary; pass it as host.EngineConfig.CompilationCache. A test that
// compiles with function listeners must not use it (a module compiled with
// listeners would be cached under the same key as one without).
func CompilationCache() wazero.CompilationCache { return compilationCache() }

var compilationCache = sync.OnceValue(func() wazero.CompilationCache {
	dir := filepath.Join(os.TempDir(), "dicomgate-wasmhost-test-cache")
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		panic("wasmbuild: compilation cache " + dir + ": " + err.Error() + " (set TMPDIR to a writable directory)")
	}
	return c
})

// FilterPackage is the dicomgate filter's package, relative to the module
// root.
const FilterPackage = "./filters/dicomgate"

// Args returns the go command arguments that build the Go package pkg into the
// proxy-wasm module out: `go build -buildmode=c-shared -trimpath
// -ldflags=-s -o out pkg`, run with Env. A reactor (c-shared) is what
// proxy-wasm hosts instantiate; -trimpath keeps the module independent of
// the build directory; -ldflags=-s drops the name section (~68 KB, see
// filters/dicomgate/README.md "Module size"). keepNames keeps it, for tests
// that find guest functions by name. extra goes before -o (e.g. "-tags", t).
func Args(out, pkg string, keepNames bool, extra ...string) []string {
	args := []string{"build", "-buildmode=c-shared", "-trimpath"}
	if !keepNames {
		args = append(args, "-ldflags=-s")
	}
	args = append(args, extra...)
	return append(args, "-o", out, pkg)
}

// Env is the environment Args runs in: the current one with GOOS=wasip1 and
// GOARCH=wasm.
func Env() []string { return append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm") }

// Command returns the command that builds pkg into out (Args, Env) with the
// go tool goBin in directory dir (the module root; "" for the current one).
func Command(ctx context.Context, goBin, dir, out, pkg string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, goBin, Args(out, pkg, false)...)
	cmd.Dir, cmd.Env = dir, Env()
	return cmd
}

// Dicomgate returns the filter module and where it came from
// ("$DICOMGATE_WASM=PATH" or "built from filters/dicomgate").
func Dicomgate() ([]byte, string, error) {
	b, err := dicomgate()
	return b, source(), err
}

func source() string {
	if p := os.Getenv("DICOMGATE_WASM"); p != "" {
		return "$DICOMGATE_WASM=" + p
	}
	return "built from filters/dicomgate"
}

// DicomgateWithNames returns the filter module built like `make wasm` but
// keeping the Wasm name section (function names, which `make wasm` strips to
// stay in the module size budget), for tests that attach wazero function
// listeners by name. It always builds from the source tree, once per test
// binary.
func DicomgateWithNames() ([]byte, error) { return dicomgateWithNames() }

var dicomgate = sync.OnceValues(func() ([]byte, error) {
	if p := os.Getenv("DICOMGATE_WASM"); p != "" {
		return os.ReadFile(p)
	}
	return buildPackage(FilterPackage, "dicomgate.wasm", false)
})

var dicomgateWithNames = sync.OnceValues(func() ([]byte, error) { return buildPackage(FilterPackage, "dicomgate.wasm", true) })

// buildPackage builds the package at pkg (a path relative to the module root)
// with Args into a temporary directory and returns the module.
func buildPackage(pkg, file string, keepNames bool, extra ...string) ([]byte, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "dicomgate-wasm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, file)
	args := Args(out, pkg, keepNames, extra...)
	cmd := exec.Command(GoTool(), args...)
	cmd.Dir, cmd.Env = root, Env()
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, errors.New("building " + pkg + " (GOOS=wasip1 GOARCH=wasm go " + strings.Join(args, " ") + "): " +
			err.Error() + "\n" + string(msg))
	}
	return os.ReadFile(out)
}

// GoTool is the go command the builds run: the one on PATH, as `make`
// runs it, else "go" (the error then names it).
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// moduleRoot is the directory of this repository's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command(GoTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", errors.New("go env GOMOD: " + err.Error())
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the dicomgate module (go env GOMOD is empty)")
	}
	return filepath.Dir(mod), nil
}

// TestFilter returns wasm/testdata/testfilter (the configuration-driven probe
// module of the wasm/host and conformance tests) built for wasip1 as a
// c-shared module with the given build tags ("" for none), once per tag set
// per test binary.
func TestFilter(tags string) ([]byte, error) {
	testFilterMu.Lock()
	defer testFilterMu.Unlock()
	if r, ok := testFilters[tags]; ok {
		return r.b, r.err
	}
	var extra []string
	if tags != "" {
		extra = append(extra, "-tags", tags)
	}
	b, err := buildPackage("./wasm/testdata/testfilter", "testfilter.wasm", true, extra...)
	testFilters[tags] = builtModule{b, err}
	return b, err
}

type builtModule struct {
	b   []byte
	err error
}

var (
	testFilterMu sync.Mutex
	testFilters  = map[string]builtModule{}
)
