package abi

import (
	"unsafe"

	"github.com/dicomgate/dicomgate/wasm/host/internal/properties"
	"github.com/dicomgate/dicomgate/wasm/host/internal/vm"
)

// The property, set_property and foreign-function imports over package properties.

// envGetProperty is cpp-host exports.cc get_property (on the current-or-effective context).
func envGetProperty(v *vm.VM, s []uint64) {
	// The path is only looked at, never kept, and is done with before copyOut runs the guest.
	raw, ok := v.View(u32(s, 0), u32(s, 1))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	var conn *properties.Conn
	if c := v.ContextOrEffective(); c.Stream != nil {
		conn = c.Stream.Props()
	}
	r := properties.Lookup(v.Plugin.Props, conn, unsafe.String(unsafe.SliceData(raw), len(raw)))
	if r.Status != properties.OK {
		ret(s, r.Status)
		return
	}
	var okOut bool
	if r.IsString() {
		okOut = v.CopyOutString(r.Str(), u32(s, 2), u32(s, 3))
	} else {
		v.Scratch = r.AppendValue(v.Scratch[:0])
		okOut = v.CopyOut(v.Scratch, u32(s, 2), u32(s, 3))
	}
	if !okOut {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

// envSetProperty is Envoy Context::setProperty: stores a CelState under filter-state key
// "wasm.<path>" on the connection's stream info; no stream info (root context) ⇒ NOT_FOUND.
func envSetProperty(v *vm.VM, s []uint64) {
	key, ok1 := v.View(u32(s, 0), u32(s, 1))
	val, ok2 := v.View(u32(s, 2), u32(s, 3))
	if !ok1 || !ok2 {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	c := v.ContextOrEffective()
	if c.Stream == nil {
		ret(s, statusNotFound)
		return
	}
	c.Stream.Props().FilterState.Set(v.Intern.CelStateKey(key), v.Intern.Intern(val))
	ret(s, statusOK)
}

// envCallForeignFunction is cpp-host exports.cc call_foreign_function. Only
// "set_envoy_filter_state" is registered (Envoy foreign.cc); other names ⇒ NOT_FOUND.
func envCallForeignFunction(v *vm.VM, s []uint64) {
	// Views of guest memory: only read before anything runs the guest again.
	name, ok1 := v.View(u32(s, 0), u32(s, 1))
	args, ok2 := v.View(u32(s, 2), u32(s, 3))
	if !ok1 || !ok2 {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	if string(name) != "set_envoy_filter_state" {
		ret(s, statusNotFound)
		return
	}
	var conn *properties.Conn
	if c := v.ContextOrEffective(); c != nil && c.Stream != nil {
		conn = c.Stream.Props()
	}
	st := properties.SetEnvoyFilterState(&v.Intern, conn, args)
	// The function never allocates a result: results ⇒ 0, results_size ⇒ 0.
	if p := u32(s, 4); p != 0 && !v.Mem.WriteUint32Le(p, 0) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	if p := u32(s, 5); p != 0 && !v.Mem.WriteUint32Le(p, 0) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, st)
}
