// Command wasip1bench runs a Go package's tests or benchmarks compiled for
// GOOS=wasip1 GOARCH=wasm under wazero (optimizing compiler, the runtime the
// wasm/host package uses), so that guest code (sdk/pdu, sdk/policy) can be
// measured the way the filter runs it, not natively:
//
//	go run ./wasm/internal/wasip1bench [-wasm x.wasm] PACKAGE-DIR [TEST FLAGS...]
//	go run ./wasm/internal/wasip1bench ./sdk/pdu -test.run='^$' -test.bench=DecodeAssociateRQ -test.benchmem
//
// It builds the package's test binary with `go test -c` for wasip1 (unless
// -wasm names a prebuilt one), mounts the package directory read-only as the
// guest's "/" with PWD=/ (so testdata/ resolves as in `go test`), and runs
// the binary's _start with the remaining arguments. The guest's stdout and
// stderr are passed through; the exit code is the guest's. Test flags need
// the "-test." prefix (the binary is run directly, not through go test).
// `make bench-wasip1` runs the SDK benchmarks this way.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

func main() {
	os.Exit(run())
}

func run() int {
	wasmPath := flag.String("wasm", "", "prebuilt wasip1 test binary (default: build PACKAGE-DIR with go test -c)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: wasip1bench [-wasm FILE] PACKAGE-DIR [-test.FLAG...]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 {
		flag.Usage()
		return 2
	}
	dir, err := filepath.Abs(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasip1bench:", err)
		return 2
	}
	bin := *wasmPath
	if bin == "" {
		tmp, err := os.MkdirTemp("", "wasip1bench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "wasip1bench:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		bin = filepath.Join(tmp, "pkg.test.wasm")
		// The toolchain that built this command (it runs through `go run`, on the machine that built
		// it), so the guest test binary is compiled by the same Go as the host side it is compared with.
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "test", "-c", "-o", bin, ".") //nolint:staticcheck // SA1019: the root of the toolchain that just built this binary is meaningful here
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "wasip1bench: building the wasip1 test binary of %s: %v\n", dir, err)
			return 1
		}
	}
	code, err := runModule(context.Background(), bin, dir, flag.Args()[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasip1bench:", err)
		return 1
	}
	return code
}

// runModule runs the command module at bin with args, dir mounted as "/".
func runModule(ctx context.Context, bin, dir string, args []string) (int, error) {
	code, err := os.ReadFile(bin)
	if err != nil {
		return 0, err
	}
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	compiled, err := r.CompileModule(ctx, code)
	if err != nil {
		return 0, err
	}
	if err := stubImports(ctx, r, compiled); err != nil {
		return 0, err
	}
	cfg := wazero.NewModuleConfig().
		WithArgs(append([]string{"pkg.test"}, args...)...).
		WithEnv("PWD", "/").
		WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(dir, "/")).
		WithStdout(os.Stdout).WithStderr(os.Stderr).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep()
	_, err = r.InstantiateModule(ctx, compiled, cfg)
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return int(exit.ExitCode()), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

// stubImports provides every imported function of a module other than
// wasi_snapshot_preview1 (e.g. proxy-wasm's "env" host calls, imported by a
// filter package's test binary) as a stub that returns zeros, so that
// benchmarks of code that never makes those calls can run.
func stubImports(ctx context.Context, r wazero.Runtime, m wazero.CompiledModule) error {
	builders := map[string]wazero.HostModuleBuilder{}
	for _, f := range m.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == wasi_snapshot_preview1.ModuleName {
			continue
		}
		b := builders[mod]
		if b == nil {
			b = r.NewHostModuleBuilder(mod)
			builders[mod] = b
		}
		nres := len(f.ResultTypes())
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
			for i := 0; i < nres; i++ {
				stack[i] = 0
			}
		}), f.ParamTypes(), f.ResultTypes()).Export(name)
	}
	for mod, b := range builders {
		if _, err := b.Instantiate(ctx); err != nil {
			return fmt.Errorf("stubbing the imports of %q: %w", mod, err)
		}
	}
	return nil
}
