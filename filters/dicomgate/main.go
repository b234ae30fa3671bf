// Command dicomgate is the dicomgate proxy-wasm NETWORK filter: it buffers
// the first PDU of every downstream connection until a complete DICOM
// A-ASSOCIATE-RQ is there, asks the policy (sdk/policy) what to do, and then
// lets the association through, routes it to another cluster (filter state
// envoy.tcp_proxy.cluster), rewrites its AE titles, or closes the
// connection. See README.md for the configuration and the Envoy/Istio
// requirements.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-s (make wasm).
// The package is a thin adapter: PDU framing and decoding live in sdk/pdu,
// decisions in sdk/policy; this package only talks to the host.
package main

import (
	"runtime/debug"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// gcPercent is the guest's GOGC. Go's minimum heap goal is 4 MiB × GOGC/100,
// and in a reactor a GC cycle only completes when the guest yields or a
// mutator assist finishes it, so with the default (100) a VM's linear memory
// reaches ~8 MiB with a one-rule policy and 9.5–11 MiB with a 1,000-rule one
// (policy.Load of such a policy allocates ~5 MB, ~1 MB of it live). 25 still
// left that peak at the 8 MiB budget in 1 of 6 runs; 15 keeps it at 7.5 MiB
// (wasm/host TestWasmVMMemory1000Rules). Measured CPU cost per association:
// none (1- and 1,000-rule policies, 15 vs 25 vs 100). With a much larger live
// heap (thousands of rules) a low GOGC means more frequent marking of it.
const gcPercent = 15

// main is never called in a c-shared (reactor) build; it exists because the
// package must be main.
func main() {}

// init registers the plugin factory. It must not call host functions other
// than logging: the host runs _initialize in a restricted phase (proxy-wasm
// cpp-host src/wasm.cc WasmBase::startVm).
func init() {
	debug.SetGCPercent(gcPercent)
	proxywasm.SetPluginContext(newPlugin)
}
