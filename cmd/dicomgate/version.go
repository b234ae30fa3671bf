package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Module paths version reports the versions of.
const (
	wazeroModule = "github.com/tetratelabs/wazero"
	sdkModule    = "github.com/proxy-wasm/proxy-wasm-go-sdk"
)

// versionInfo is the -o json|yaml output of version. Field names are part of
// the CLI's contract (docs/cli.md).
type versionInfo struct {
	// Version is the dicomgate module version ("(devel)" for a build from a
	// source tree).
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from ("unknown"
	// without VCS stamping: go run, go test, -buildvcs=false).
	Commit string `json:"commit"`
	// CommitTime is the revision's commit time (RFC 3339), when stamped.
	CommitTime string `json:"commitTime,omitempty"`
	// Modified is true when the work tree had uncommitted changes.
	Modified bool `json:"modified"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
	// Wazero is the version of the WebAssembly runtime serve runs the
	// filter in.
	Wazero string `json:"wazero"`
	// Filter describes the filter module serve would load.
	Filter filterInfo `json:"filter"`
}

// filterInfo describes a filter module file.
type filterInfo struct {
	// Path is where the module was looked for or found.
	Path string `json:"path"`
	// Found is false when no module is there (serve would then build it,
	// or fail saying how to).
	Found bool `json:"found"`
	// SHA256 is the module file's sha256 (hex), what `make build` prints
	// and a WasmPlugin with an http(s):// or file:// url pins.
	SHA256 string `json:"sha256,omitempty"`
	// Size is the module's size in bytes.
	Size int `json:"size,omitempty"`
	// ProxyWasmGoSDK is the proxy-wasm-go-sdk version compiled into the
	// module (from its embedded Go build information), "unknown" when the
	// module carries none.
	ProxyWasmGoSDK string `json:"proxyWasmGoSDK,omitempty"`
}

func init() {
	var wasm string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the versions of dicomgate, Go, wazero and the filter module serve would load",
		Long: `Print the dicomgate version and VCS commit, the Go toolchain that built it,
the wazero version serve runs the filter in, and the filter module serve
would load: its path, sha256 (the value a WasmPlugin with an http(s):// or
file:// url pins) and the proxy-wasm-go-sdk version compiled into it.

Without --wasm the module is looked up where serve looks for it:
build/dicomgate.wasm in the working directory, else dicomgate.wasm next to
the dicomgate executable (where make build puts both).`,
		Example: `  dicomgate version
  dicomgate version -o json --wasm build/dicomgate.wasm`,
		Args: exactArgs(),
	}
	o := addOutputFlag(cmd, formatText, formatJSON, formatYAML)
	cmd.Flags().StringVar(&wasm, "wasm", "", "the filter module to describe (default: where serve looks: "+defaultWasmPath+", then next to the executable)")
	_ = cmd.MarkFlagFilename("wasm", "wasm")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		info, err := buildVersion(wasm)
		if err != nil {
			return err
		}
		return printVersion(cmd.OutOrStdout(), o.format(), info)
	}
	rootCmd.AddCommand(cmd)
}

// wasmLocation returns the module serve loads when --wasm is not given:
// defaultWasmPath if it exists, else dicomgate.wasm next to the
// executable if that exists, else defaultWasmPath (which serve then
// builds). It mirrors serveLoadWasm's lookup order.
func wasmLocation() string {
	if _, err := os.Stat(defaultWasmPath); err == nil {
		return defaultWasmPath
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), filepath.Base(defaultWasmPath))
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return defaultWasmPath
}

// buildVersion collects versionInfo; wasm is an explicit module path ("" =
// where serve looks). An explicit path that cannot be read is an error; a
// missing default module is reported as not found.
func buildVersion(wasm string) (versionInfo, error) {
	v := versionInfo{Version: "unknown", Commit: "unknown", GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, Wazero: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.CommitTime = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
		v.Wazero = depVersion(bi, wazeroModule)
	}
	explicit := wasm != ""
	if !explicit {
		wasm = wasmLocation()
	}
	v.Filter.Path = wasm
	b, err := os.ReadFile(wasm)
	switch {
	case err == nil:
		sum := sha256.Sum256(b)
		v.Filter.Found, v.Filter.SHA256, v.Filter.Size = true, hex.EncodeToString(sum[:]), len(b)
		v.Filter.ProxyWasmGoSDK = "unknown"
		if bi := moduleBuildInfo(b); bi != nil {
			v.Filter.ProxyWasmGoSDK = depVersion(bi, sdkModule)
		}
	case explicit || !errors.Is(err, os.ErrNotExist):
		return v, invalid(fmt.Errorf("--wasm: %w", err))
	}
	return v, nil
}

// depVersion returns the version of module path in bi ("unknown" when it
// is not a dependency), following a replace directive.
func depVersion(bi *debug.BuildInfo, path string) string {
	for _, d := range bi.Deps {
		if d.Path == path {
			if d.Replace != nil {
				return d.Replace.Version + " (replaced by " + d.Replace.Path + ")"
			}
			return d.Version
		}
	}
	return "unknown"
}

// Go wraps the module information it embeds in a binary (runtime/debug's
// modinfo) between these 16-byte markers (cmd/go/internal/modload's
// infoStart and infoEnd). A wasip1 module keeps them in its data segment,
// which debug/buildinfo cannot locate (it reads ELF, Mach-O, PE, XCOFF and
// Plan 9 only).
var (
	modinfoStart = []byte("0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6")
	modinfoEnd   = []byte("\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2")
)

// moduleBuildInfo extracts the Go build information embedded in a compiled
// Go module (any binary format), nil when there is none.
func moduleBuildInfo(b []byte) *debug.BuildInfo {
	i := bytes.Index(b, modinfoStart)
	if i < 0 {
		return nil
	}
	rest := b[i+len(modinfoStart):]
	j := bytes.Index(rest, modinfoEnd)
	if j < 0 {
		return nil
	}
	bi, err := debug.ParseBuildInfo(string(rest[:j]))
	if err != nil {
		return nil
	}
	return bi
}

// printVersion writes info in the output format.
func printVersion(w io.Writer, format string, v versionInfo) error {
	if format == formatJSON || format == formatYAML {
		return writeStructured(w, format, v)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "dicomgate %s\n", v.Version)
	commit := v.Commit
	switch {
	case commit == "unknown":
		commit += " (built without VCS stamping: go run, go test or -buildvcs=false)"
	case v.Modified:
		commit += " (with uncommitted changes)"
	}
	if v.CommitTime != "" {
		commit += ", " + v.CommitTime
	}
	fmt.Fprintf(&b, "  commit:            %s\n", commit)
	fmt.Fprintf(&b, "  go:                %s %s\n", v.GoVersion, v.Platform)
	fmt.Fprintf(&b, "  wazero:            %s\n", v.Wazero)
	if !v.Filter.Found {
		fmt.Fprintf(&b, "  filter module:     not found at %s (serve builds it when run in the source tree; or run make wasm)\n", v.Filter.Path)
	} else {
		fmt.Fprintf(&b, "  filter module:     %s (%d bytes)\n", v.Filter.Path, v.Filter.Size)
		fmt.Fprintf(&b, "    sha256:          %s\n", v.Filter.SHA256)
		fmt.Fprintf(&b, "    proxy-wasm-go-sdk: %s\n", v.Filter.ProxyWasmGoSDK)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
