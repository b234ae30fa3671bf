package abi

import "github.com/dicomgate/dicomgate/wasm/host/internal/vm"

// envDefineMetric is Envoy Context::defineMetric + cpp-host exports.cc define_metric: type > 2 ⇒
// BAD_ARGUMENT; every call returns a fresh id (type in the low 2 bits) for the same underlying stat.
func envDefineMetric(v *vm.VM, s []uint64) {
	a := argsOf(v, s)
	typ, name, idPtr := a.u32(), a.str(), a.u32()
	if !a.ok() {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	id, ok := v.MetricIDs.Define(v.Plugin.Metrics, typ, name)
	if !ok {
		ret(s, statusBadArgument)
		return
	}
	if !v.Mem.WriteUint32Le(idPtr, id) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

// envIncrementMetric is Envoy Context::incrementMetric: counter delta ≤ 0 ⇒ BAD_ARGUMENT; gauge
// adds/subtracts; histogram ⇒ BAD_ARGUMENT; unknown id ⇒ NOT_FOUND.
func envIncrementMetric(v *vm.VM, s []uint64) {
	a := argsOf(v, s)
	id, delta := a.u32(), int64(a.u64())
	x := v.MetricIDs.Lookup(id)
	switch {
	case x == nil:
		ret(s, statusNotFound)
	case !x.Increment(delta):
		ret(s, statusBadArgument)
	default:
		ret(s, statusOK)
	}
}

// envRecordMetric is Envoy Context::recordMetric: counter add, gauge set, histogram record.
func envRecordMetric(v *vm.VM, s []uint64) {
	a := argsOf(v, s)
	id, value := a.u32(), a.u64()
	x := v.MetricIDs.Lookup(id)
	if x == nil {
		ret(s, statusNotFound)
		return
	}
	x.Record(value)
	ret(s, statusOK)
}

// envGetMetric is Envoy Context::getMetric: histogram ⇒ BAD_ARGUMENT; unknown ⇒ NOT_FOUND.
func envGetMetric(v *vm.VM, s []uint64) {
	a := argsOf(v, s)
	id, valuePtr := a.u32(), a.u32()
	x := v.MetricIDs.Lookup(id)
	if x == nil {
		ret(s, statusNotFound)
		return
	}
	val, ok := x.Value()
	if !ok {
		ret(s, statusBadArgument)
		return
	}
	if !v.Mem.WriteUint64Le(valuePtr, val) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}
