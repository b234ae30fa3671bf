;; The do-nothing proxy-wasm network filter written directly in WebAssembly text: no language runtime at all, only
;; the exports proxy-wasm-cpp-host looks for (src/wasm.cc WasmBase::getFunctions) answering every callback at once
;; (Continue, or true). envoyab -noop-wat runs it on the listener "watnoop" beside the Go "noop" filter:
;; watnoop − plain is what Envoy and V8 cost per connection for a filter that does nothing; noop − watnoop is what
;; the stock Go runtime and the SDK add to each callback. Built with wat2wasm (Debian package wabt).
(module
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 1024))
  ;; malloc: a bump allocator in the second page; wraps around (the filter never reads what the host returns).
  (func (export "malloc") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (i32.and (i32.add (local.get $size) (i32.const 7)) (i32.const -8))))
    (if (i32.gt_u (global.get $heap) (i32.const 131072)) (then (global.set $heap (i32.const 65536)) (local.set $p (i32.const 65536))))
    (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_new_connection") (param i32) (result i32) (i32.const 0))
  (func (export "proxy_on_downstream_data") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_upstream_data") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "proxy_on_downstream_connection_close") (param i32 i32))
  (func (export "proxy_on_upstream_connection_close") (param i32 i32))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32)))
