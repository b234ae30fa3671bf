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
	a := argsOf(v, s)
	raw, valuePtr, valueSize := a.view(), a.u32(), a.u32()
	if !a.ok() {
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
		okOut = v.CopyOutString(r.Str(), valuePtr, valueSize)
	} else {
		v.Scratch = r.AppendValue(v.Scratch[:0])
		okOut = v.CopyOut(v.Scratch, valuePtr, valueSize)
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
	a := argsOf(v, s)
	key, val := a.view(), a.view()
	if !a.ok() {
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
	a := argsOf(v, s)
	name, args, results, resultsSize := a.view(), a.view(), a.u32(), a.u32()
	if !a.ok() {
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
	if results != 0 && !v.Mem.WriteUint32Le(results, 0) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	if resultsSize != 0 && !v.Mem.WriteUint32Le(resultsSize, 0) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, st)
}
