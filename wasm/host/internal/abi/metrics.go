package abi

import "github.com/dicomgate/dicomgate/wasm/host/internal/vm"

// envDefineMetric is Envoy Context::defineMetric + cpp-host exports.cc define_metric: type > 2 ⇒
// BAD_ARGUMENT; every call returns a fresh id (type in the low 2 bits) for the same underlying stat.
func envDefineMetric(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	typ, name, idPtr := a.U32(), a.Str(), a.U32()
	if !a.OK() {
		return statusInvalidMemoryAccess
	}
	id, ok := v.MetricIDs.Define(v.Plugin.Metrics, typ, name)
	if !ok {
		return statusBadArgument
	}
	return wrote(v.Mem.WriteUint32Le(idPtr, id))
}

// envIncrementMetric is Envoy Context::incrementMetric: counter delta ≤ 0 ⇒ BAD_ARGUMENT; gauge
// adds/subtracts; histogram ⇒ BAD_ARGUMENT; unknown id ⇒ NOT_FOUND.
func envIncrementMetric(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	id, delta := a.U32(), int64(a.U64())
	x := v.MetricIDs.Lookup(id)
	switch {
	case x == nil:
		return statusNotFound
	case !x.Increment(delta):
		return statusBadArgument
	default:
		return statusOK
	}
}

// envRecordMetric is Envoy Context::recordMetric: counter add, gauge set, histogram record.
func envRecordMetric(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	id, value := a.U32(), a.U64()
	x := v.MetricIDs.Lookup(id)
	if x == nil {
		return statusNotFound
	}
	x.Record(value)
	return statusOK
}

// envGetMetric is Envoy Context::getMetric: histogram ⇒ BAD_ARGUMENT; unknown ⇒ NOT_FOUND.
func envGetMetric(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	id, valuePtr := a.U32(), a.U32()
	x := v.MetricIDs.Lookup(id)
	if x == nil {
		return statusNotFound
	}
	val, ok := x.Value()
	if !ok {
		return statusBadArgument
	}
	return wrote(v.Mem.WriteUint64Le(valuePtr, val))
}
