//go:build !wasip1

package main

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/dicomgate/dicomgate/internal/wasmbuild"
	"github.com/stretchr/testify/require"
)

// moduleSizeBudget is the product requirement for the compiled filter
// (build/dicomgate.wasm as `make wasm` builds it): 3 MiB. Istio fetches the
// module into every gateway, and Envoy keeps a compiled copy per worker.
const moduleSizeBudget = 3 << 20

// TestModuleSizeBudget builds the module with the `make wasm` command (or
// takes $DICOMGATE_WASM) and fails when it exceeds the budget, so that a
// new import (fmt, encoding/json, reflect, sort, time formatting in an
// interface...) cannot grow it past 3 MiB unnoticed. README.md ("module
// size budget") lists what the module is made of and how to look.
func TestModuleSizeBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Wasm module; skipped with -short")
	}
	wasm, src, err := wasmbuild.Dicomgate()
	require.NoError(t, err)
	size := len(wasm)
	if size > moduleSizeBudget {
		require.FailNowf(t, "over the budget", "the filter module is %s bytes, over the %s-byte (3 MiB) budget by %s (%s); "+
			"find what grew with `go build -ldflags=-dumpdep` (why a package is linked) and drop the import or move the code out of the filter's reach",
			strconv.Itoa(size), strconv.Itoa(moduleSizeBudget), strconv.Itoa(size-moduleSizeBudget), src)
	}
	// sdk/pdu's strict mode (~22 KB) is reachable only through
	// pdu.Decoder.Strict, which the filter never calls: its messages all end
	// in "(strict)", so finding one means the checks are linked again.
	if i := bytes.Index(wasm, []byte("(strict)")); i >= 0 {
		require.FailNowf(t, "strict mode linked", "the filter module links sdk/pdu's strict mode (%q at byte %d): a strict check is reachable without pdu.Decoder.Strict; call it only through the strictChecks interface",
			wasm[max(0, i-60):i+8], i)
	}
	t.Logf("module %s bytes, %s bytes (%.1f%%) under the 3 MiB budget (%s)",
		strconv.Itoa(size), strconv.Itoa(moduleSizeBudget-size), 100*float64(moduleSizeBudget-size)/moduleSizeBudget, src)
}
