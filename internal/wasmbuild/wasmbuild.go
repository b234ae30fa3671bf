// Package wasmbuild gives tests and benchmarks the compiled dicomgate filter
// module: the bytes of $DICOMGATE_WASM when set (make sets it to
// build/dicomgate.wasm), otherwise a build of ./filters/dicomgate with exactly
// the `make wasm` command into a temporary directory, once per test binary.
//
// It only runs the go tool on the filter's source path; it never imports the
// filter, so wasm/ may use it.
package wasmbuild

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

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

var dicomgate = sync.OnceValues(func() ([]byte, error) {
	if p := os.Getenv("DICOMGATE_WASM"); p != "" {
		return os.ReadFile(p)
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "dicomgate-wasm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "dicomgate.wasm")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-buildmode=c-shared", "-trimpath",
		"-o", out, "./filters/dicomgate")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, errors.New("building filters/dicomgate (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath): " +
			err.Error() + "\n" + string(msg))
	}
	return os.ReadFile(out)
})

// moduleRoot is the directory of this repository's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "env", "GOMOD").Output()
	if err != nil {
		return "", errors.New("go env GOMOD: " + err.Error())
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the dicomgate module (go env GOMOD is empty)")
	}
	return filepath.Dir(mod), nil
}
