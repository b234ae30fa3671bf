package abi

import "github.com/dicomgate/dicomgate/wasm/host/internal/vm"

// The proxy_* shared data and shared queue imports over the Engine's shared.Store (cpp-host
// src/exports.cc get/set_shared_data, register/resolve/dequeue/enqueue_shared_queue).

// envGetSharedData is cpp-host exports.cc get_shared_data: NOT_FOUND if absent.
func envGetSharedData(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	key, valuePtr, valueSize, casPtr := a.Str(), a.U32(), a.U32(), a.U32()
	if !a.OK() {
		return statusInvalidMemoryAccess
	}
	val, cas, found := v.Plugin.Shared.Get(v.Plugin.VMID, key)
	if !found {
		return statusNotFound
	}
	return wrote(v.CopyOut(val, valuePtr, valueSize) && v.Mem.WriteUint32Le(casPtr, cas))
}

// envSetSharedData is cpp-host SharedData::set: cas ≠ 0 and ≠ current ⇒ CAS_MISMATCH.
func envSetSharedData(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	key, val, cas := a.Str(), a.Bytes(), a.U32()
	if !a.OK() {
		return statusInvalidMemoryAccess
	}
	if !v.Plugin.Shared.Set(v.Plugin.VMID, key, val, cas) {
		return statusCASMismatch
	}
	return statusOK
}

// envRegisterSharedQueue is cpp-host SharedQueue::registerQueue: re-registration moves the
// on_queue_ready target to the latest registrant.
func envRegisterSharedQueue(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	name, tokenPtr := a.Str(), a.U32()
	if !a.OK() {
		return statusInvalidMemoryAccess
	}
	tok := v.Plugin.Shared.RegisterQueue(v.Plugin.VMID, name, v)
	return wrote(v.Mem.WriteUint32Le(tokenPtr, tok))
}

// envResolveSharedQueue: empty vm_id means the caller's own vm_id; unknown ⇒ NOT_FOUND.
func envResolveSharedQueue(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	vmID, name, tokenPtr := a.Str(), a.Str(), a.U32()
	if !a.OK() {
		return statusInvalidMemoryAccess
	}
	if vmID == "" {
		vmID = v.Plugin.VMID
	}
	tok, ok := v.Plugin.Shared.ResolveQueue(vmID, name)
	if !ok {
		return statusNotFound
	}
	return wrote(v.Mem.WriteUint32Le(tokenPtr, tok))
}

// envDequeueSharedQueue: unknown token ⇒ NOT_FOUND; empty ⇒ EMPTY.
func envDequeueSharedQueue(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	tok, ptrPtr, sizePtr := a.U32(), a.U32(), a.U32()
	item, found, empty := v.Plugin.Shared.Dequeue(tok)
	switch {
	case !found:
		return statusNotFound
	case empty:
		return statusEmpty
	case !v.CopyOut(item, ptrPtr, sizePtr):
		return statusInvalidMemoryAccess
	default:
		return statusOK
	}
}

// envEnqueueSharedQueue posts proxy_on_queue_ready(root, token) to the registrant's worker
// (asynchronously, like Envoy's dispatcher post).
func envEnqueueSharedQueue(v *vm.VM, s []uint64) uint32 {
	a := vm.ArgsOf(v, s)
	tok, data := a.U32(), a.Bytes()
	if !a.OK() {
		return statusInvalidMemoryAccess
	}
	owner, found := v.Plugin.Shared.Enqueue(tok, data)
	if !found {
		return statusNotFound
	}
	if owner != nil {
		go owner.QueueReady(tok)
	}
	return statusOK
}
