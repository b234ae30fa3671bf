package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dicomgate/dicomgate/internal/wasmbuild"
	"github.com/stretchr/testify/require"
)

// peerCommands are the Debian-packaged programs the suite talks to (packages dcmtk and orthanc).
var peerCommands = []string{"echoscu", "storescu", "findscu", "storescp", "Orthanc"}

var (
	// workDir holds this run's certificates, configurations, peer logs and received files.
	workDir string
	// repoRoot is the module root (the parent of e2e/).
	repoRoot string
	// certs is the per-run PKI.
	certs *pki
	// gatewayBin and filterWasm are the gateway binary and compiled filter under test, resolved (or built) on
	// first use by artifacts(); artifactErr says why they are unusable (every gateway test then fails with it).
	gatewayBin, filterWasm string
	artifactErr            error
	artifactsOnce          sync.Once
)

// TestMain checks the prerequisites, prepares the per-run work directory and PKI, and stops every peer at the end.
// Missing dcmtk/Orthanc fail the whole suite with the command that installs them. The gateway binary and the filter
// come from DICOMGATE_BIN / DICOMGATE_WASM (set by `make e2e`); when unset they are built here so `go test ./e2e/`
// works standalone (built on first use, so tests that need no gateway do not wait for the build).
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var missing []string
	for _, c := range peerCommands {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: missing %s on PATH; install the peers with:\n"+
			"    sudo apt-get update && sudo apt-get install -y dcmtk orthanc\n(or, as root: make deps)\n",
			strings.Join(missing, ", "))
		return 1
	}
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = filepath.Dir(wd)
	if _, err := os.Stat(filepath.Join(repoRoot, "go.mod")); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: expected the module root at %s (run go test from the repository): %v\n", repoRoot, err)
		return 1
	}
	workDir, err = os.MkdirTemp("", "dicomgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	certs, err = newPKI(filepath.Join(workDir, "pki"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: generating test certificates:", err)
		return 1
	}
	code := m.Run()
	stopAllProcs()
	if envoySkipped() {
		// Said here too because go test hides t.Skip messages without -v.
		fmt.Fprintln(os.Stderr, "e2e: WARNING: the real-Envoy lane was NOT run (DICOMGATE_NO_ENVOY=1); unset it to run it")
	}
	if code != 0 || os.Getenv("E2E_KEEP") != "" {
		fmt.Fprintf(os.Stderr, "e2e: peer logs, configs and received files kept in %s\n", workDir)
	} else {
		_ = os.RemoveAll(workDir)
	}
	return code
}

// resolveArtifacts finds (or builds) the gateway binary and the filter module.
func resolveArtifacts() (bin, wasm string, err error) {
	bin, wasm = os.Getenv("DICOMGATE_BIN"), os.Getenv("DICOMGATE_WASM")
	if bin != "" || wasm != "" {
		for name, p := range map[string]string{"DICOMGATE_BIN": bin, "DICOMGATE_WASM": wasm} {
			if p == "" {
				return "", "", fmt.Errorf("%s is not set while the other artifact variable is; run `make e2e`, or unset both so the suite builds them", name)
			}
			if !filepath.IsAbs(p) {
				return "", "", fmt.Errorf("%s=%q must be an absolute path (go test runs in e2e/); run `make e2e`", name, p)
			}
			if _, err := os.Stat(p); err != nil {
				return "", "", fmt.Errorf("%s=%s: %v; run `make build` first (or `make e2e`)", name, p, err)
			}
		}
		return bin, wasm, nil
	}
	goTool, lerr := exec.LookPath("go")
	if lerr != nil {
		return "", "", fmt.Errorf("DICOMGATE_BIN/DICOMGATE_WASM unset and no go tool on PATH to build them: run `make build` and then `make e2e`")
	}
	out := filepath.Join(workDir, "build")
	bin, wasm = filepath.Join(out, "dicomgate"), filepath.Join(out, "dicomgate.wasm")
	build := func(env []string, args ...string) error {
		cmd := exec.Command(goTool, args...)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %v\n%s", strings.Join(env, " "), commandLine("go", args), err, b)
		}
		return nil
	}
	if err := build(nil, "build", "-trimpath", "-o", bin, "./cmd/dicomgate"); err != nil {
		return "", "", fmt.Errorf("building the gateway failed (fix it, then `make build`): %w", err)
	}
	if err := build([]string{"GOOS=wasip1", "GOARCH=wasm"}, wasmbuild.Args(wasm, wasmbuild.FilterPackage, false)...); err != nil {
		return "", "", fmt.Errorf("building the filter failed (fix it, then `make wasm`): %w", err)
	}
	return bin, wasm, nil
}

// artifacts resolves (building if needed) the gateway binary and the filter once per run.
func artifacts() error {
	artifactsOnce.Do(func() { gatewayBin, filterWasm, artifactErr = resolveArtifacts() })
	return artifactErr
}

// requireArtifacts fails the test (never skips) when the gateway binary or the filter is unusable.
func requireArtifacts(t testing.TB) {
	t.Helper()
	require.NoError(t, artifacts(), "gateway artifacts unavailable")
}

// shared is a peer started once and reused by every test that needs it; its start error is remembered.
type shared[T any] struct {
	once sync.Once
	v    T
	err  error
}

func (s *shared[T]) get(t testing.TB, start func() (T, error)) T {
	t.Helper()
	s.once.Do(func() { s.v, s.err = start() })
	require.NoError(t, s.err)
	return s.v
}
