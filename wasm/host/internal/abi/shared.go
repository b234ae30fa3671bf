package abi

import "github.com/dicomgate/dicomgate/wasm/host/internal/vm"

// The proxy_* shared data and shared queue imports over the Engine's shared.Store (cpp-host
// src/exports.cc get/set_shared_data, register/resolve/dequeue/enqueue_shared_queue).

// envGetSharedData is cpp-host exports.cc get_shared_data: NOT_FOUND if absent.
func envGetSharedData(v *vm.VM, s []uint64) {
	a := argsOf(v, s)
	key, valuePtr, valueSize, casPtr := a.str(), a.u32(), a.u32(), a.u32()
	if !a.ok() {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	val, cas, found := v.Plugin.Shared.Get(v.Plugin.VMID, key)
	if !found {
		ret(s, statusNotFound)
		return
	}
	if !v.CopyOut(val, valuePtr, valueSize) || !v.Mem.WriteUint32Le(casPtr, cas) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

// envSetSharedData is cpp-host SharedData::set: cas ≠ 0 and ≠ current ⇒ CAS_MISMATCH.
func envSetSharedData(v *vm.VM, s []uint64) {
	a := argsOf(v, s)
	key, val, cas := a.str(), a.bytes(), a.u32()
	if !a.ok() {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	if !v.Plugin.Shared.Set(v.Plugin.VMID, key, val, cas) {
		ret(s, statusCASMismatch)
		return
	}
	ret(s, statusOK)
}

// envRegisterSharedQueue is cpp-host SharedQueue::registerQueue: re-registration moves the
// on_queue_ready target to the latest registrant.
func envRegisterSharedQueue(v *vm.VM, s []uint64) {
	a := argsOf(v, s)
	name, tokenPtr := a.str(), a.u32()
	if !a.ok() {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	tok := v.Plugin.Shared.RegisterQueue(v.Plugin.VMID, name, v)
	if !v.Mem.WriteUint32Le(tokenPtr, tok) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

// envResolveSharedQueue: empty vm_id means the caller's own vm_id; unknown ⇒ NOT_FOUND.
func envResolveSharedQueue(v *vm.VM, s []uint64) {
	a := argsOf(v, s)
	vmID, name, tokenPtr := a.str(), a.str(), a.u32()
	if !a.ok() {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	if vmID == "" {
		vmID = v.Plugin.VMID
	}
	tok, ok := v.Plugin.Shared.ResolveQueue(vmID, name)
	if !ok {
		ret(s, statusNotFound)
		return
	}
	if !v.Mem.WriteUint32Le(tokenPtr, tok) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

// envDequeueSharedQueue: unknown token ⇒ NOT_FOUND; empty ⇒ EMPTY.
func envDequeueSharedQueue(v *vm.VM, s []uint64) {
	a := argsOf(v, s)
	tok, ptrPtr, sizePtr := a.u32(), a.u32(), a.u32()
	item, found, empty := v.Plugin.Shared.Dequeue(tok)
	switch {
	case !found:
		ret(s, statusNotFound)
	case empty:
		ret(s, statusEmpty)
	case !v.CopyOut(item, ptrPtr, sizePtr):
		ret(s, statusInvalidMemoryAccess)
	default:
		ret(s, statusOK)
	}
}

// envEnqueueSharedQueue posts proxy_on_queue_ready(root, token) to the registrant's worker
// (asynchronously, like Envoy's dispatcher post).
func envEnqueueSharedQueue(v *vm.VM, s []uint64) {
	a := argsOf(v, s)
	tok, data := a.u32(), a.bytes()
	if !a.ok() {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	owner, found := v.Plugin.Shared.Enqueue(tok, data)
	if !found {
		ret(s, statusNotFound)
		return
	}
	if owner != nil {
		go owner.QueueReady(tok)
	}
	ret(s, statusOK)
}
