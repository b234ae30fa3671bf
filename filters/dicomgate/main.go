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

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// main is never called in a c-shared (reactor) build; it exists because the
// package must be main.
func main() {}

// init registers the plugin factory. It must not call host functions other
// than logging: the host runs _initialize in a restricted phase (proxy-wasm
// cpp-host src/wasm.cc WasmBase::startVm).
func init() {
	proxywasm.SetPluginContext(newPlugin)
}
