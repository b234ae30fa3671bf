// Command dicomgate is the dicomgate proxy-wasm NETWORK filter: it buffers
// the first PDU of every downstream connection until a complete DICOM
// A-ASSOCIATE-RQ is there, asks the policy (sdk/policy) what to do, and then
// lets the association through, routes it to another cluster (filter state
// envoy.tcp_proxy.cluster), rewrites its AE titles, or closes the
// connection. See README.md for the configuration and the Envoy/Istio
// requirements.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath.
// The package is a thin adapter: PDU framing and decoding live in sdk/pdu,
// decisions in sdk/policy; this package only talks to the host.
package main

import (
	"runtime/debug"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
)

// gcPercent is the guest's GOGC. Go's minimum heap goal is 4 MiB × GOGC/100,
// and in a reactor the GC only completes a cycle when the guest yields, so
// the default (100) lets a VM's linear memory reach ~8 MiB with a one-rule
// policy and ~10 MiB while loading a 1,000-rule one. 25 keeps both under
// 8 MiB (wasm/host TestWasmVMMemory1000Rules) for little CPU: the live heap
// is small.
const gcPercent = 25

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
