// Package e2e holds the end-to-end tests of dicomgate: real DICOM peers (dcmtk's echoscu, storescu, findscu and
// storescp, and Orthanc) talking DICOM over TLS through `dicomgate serve`, which runs the compiled proxy-wasm filter
// build/dicomgate.wasm. Everything runs on 127.0.0.1 with ports picked at run time and a certificate authority,
// server and client certificates generated per run.
//
// Run it with `make e2e`, or standalone with `go test ./e2e/` (the suite builds the gateway binary and the filter
// itself when DICOMGATE_BIN / DICOMGATE_WASM are not set). Prerequisites that cannot be built (dcmtk, Orthanc) make
// the suite fail with the command that installs them; nothing is silently skipped. Every scenario also runs through
// a real Envoy ($ENVOY_BIN, else the pinned build/envoy from `make envoy`); only DICOMGATE_NO_ENVOY=1 skips that lane.
package e2e
