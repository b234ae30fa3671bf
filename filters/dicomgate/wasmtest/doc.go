// Package wasmtest runs the compiled dicomgate filter (build/dicomgate.wasm,
// or a `make wasm` build of filters/dicomgate through internal/wasmbuild) in
// wasm/host, the Envoy-faithful proxy-wasm host. It holds tests only:
//
//   - TestFilterTableWasm: the behaviour table of internal/filtertable, the
//     same one filters/dicomgate runs natively under proxytest (every case
//     runs twice: in the test binary and in the module);
//   - TestWasmRoutedAssociationAllocatesNothing,
//     TestWasmRejectedAssociationAllocatesNothing: zero guest allocations per
//     association;
//   - TestWasmHostCalls, TestWasmDecisionHostCalls: exact host-call counts;
//   - TestImportRule: the import rule this package exists for.
//
// It is the one place where the filter and the host meet: filters/dicomgate's
// tests do not import wasm/host, and wasm/host's tests import nothing of
// filters/ (they load module bytes); TestImportRule checks both with
// `go list -test -deps`.
package wasmtest
