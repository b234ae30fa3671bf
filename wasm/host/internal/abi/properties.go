package abi

import (
	"unsafe"

	"github.com/dicomgate/dicomgate/wasm/host/internal/properties"
	"github.com/dicomgate/dicomgate/wasm/host/internal/vm"
)

// The property, set_property and foreign-function imports over package properties.

// envGetProperty is cpp-host exports.cc get_property (on the current-or-effective context).
func envGetProperty(v *vm.VM, s []uint64) uint32 {
	// The path is only looked at, never kept, and is done with before copyOut runs the guest.
	a := vm.ArgsOf(v, s)
	raw, valuePtr, valueSize := a.View(), a.U32(), a.U32()
	if !a.OK() {
		return statusInvalidMemoryAccess
	}
	var conn *properties.Conn
	if c := v.ContextOrEffective(); c.Stream != nil {
		conn = c.Stream.Props()
	}
	r := properties.Lookup(v.Plugin.Props, conn, unsafe.String(unsafe.SliceData(raw), len(raw)))
	if r.Status != properties.OK {
		return r.Status
	}
	if r.IsString() {
		return wrote(v.CopyOutString(r.Str(), valuePtr, valueSize))
	}
	v.Scratch = r.AppendValue(v.Scratch[:0])
	return wrote(v.CopyOut(v.Scratch, valuePtr, valueSize))
}

// envSetProperty is Envoy Context::setProperty: stores a CelState under filter-state key
// "wasm.<path>" on the connection's stream info; no stream info (root context) ⇒ NOT_FOUND.
func envSetProperty(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	key, val := a.View(), a.View()
	if !a.OK() {
		return statusInvalidMemoryAccess
	}
	c := v.ContextOrEffective()
	if c.Stream == nil {
		return statusNotFound
	}
	c.Stream.Props().FilterState.Set(v.Intern.CelStateKey(key), v.Intern.Intern(val))
	return statusOK
}

// envCallForeignFunction is cpp-host exports.cc call_foreign_function. Only
// "set_envoy_filter_state" is registered (Envoy foreign.cc); other names ⇒ NOT_FOUND.
func envCallForeignFunction(v *vm.VM, s []uint64) uint32 {
	// Views of guest memory: only read before anything runs the guest again.
	a := vm.ArgsOf(v, s)
	name, args, results, resultsSize := a.View(), a.View(), a.U32(), a.U32()
	if !a.OK() {
		return statusInvalidMemoryAccess
	}
	if string(name) != "set_envoy_filter_state" {
		return statusNotFound
	}
	var conn *properties.Conn
	if c := v.ContextOrEffective(); c != nil && c.Stream != nil {
		conn = c.Stream.Props()
	}
	st := properties.SetEnvoyFilterState(&v.Intern, conn, args)
	// The function never allocates a result: results ⇒ 0, results_size ⇒ 0.
	if results != 0 && !v.Mem.WriteUint32Le(results, 0) {
		return statusInvalidMemoryAccess
	}
	if resultsSize != 0 && !v.Mem.WriteUint32Le(resultsSize, 0) {
		return statusInvalidMemoryAccess
	}
	return st
}
