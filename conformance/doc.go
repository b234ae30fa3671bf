// Package conformance holds the tests that hold wasm/host (through gateway) to real Envoy: every case runs
// the same client byte script over real sockets through Envoy 1.40 (envoy.filters.network.wasm with the V8
// runtime in front of tcp_proxy) and through the in-process gateway built on wasm/host, with the probe module
// wasm/testdata/testfilter as the filter, and compares what the filter saw and did (its EVT/PROBE log lines,
// normalised), what the client received and how its connection ended, and what the backends received.
//
// The package has no non-test code besides this comment. Envoy comes from $ENVOY_BIN, else <repo>/build/envoy
// (`make envoy`); when neither exists the tests fail, and only DICOMGATE_NO_ENVOY=1 skips them.
// What the cases found is summarised in wasm/host/README.md ("Checked against real Envoy").
package conformance
