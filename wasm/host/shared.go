package host

// The proxy_* shared data and shared queue imports over the Engine's shared.Store (cpp-host
// src/exports.cc get/set_shared_data, register/resolve/dequeue/enqueue_shared_queue).

// QueueReady makes the VM a shared.Owner: proxy_on_queue_ready on its root context.
func (v *vm) QueueReady(token uint32) { v.p.queueReady(v, token) }

// envGetSharedData is cpp-host exports.cc get_shared_data: NOT_FOUND if absent.
func envGetSharedData(v *vm, s []uint64) {
	key, ok := v.readString(u32(s, 0), u32(s, 1))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	val, cas, found := v.p.engine.shared.Get(v.p.cfg.VMID, key)
	if !found {
		ret(s, statusNotFound)
		return
	}
	if !v.copyOut(val, u32(s, 2), u32(s, 3)) || !v.mem.WriteUint32Le(u32(s, 4), cas) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

// envSetSharedData is cpp-host SharedData::set: cas ≠ 0 and ≠ current ⇒ CAS_MISMATCH.
func envSetSharedData(v *vm, s []uint64) {
	key, ok1 := v.readString(u32(s, 0), u32(s, 1))
	val, ok2 := v.read(u32(s, 2), u32(s, 3))
	if !ok1 || !ok2 {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	if !v.p.engine.shared.Set(v.p.cfg.VMID, key, val, u32(s, 4)) {
		ret(s, statusCASMismatch)
		return
	}
	ret(s, statusOK)
}

// envRegisterSharedQueue is cpp-host SharedQueue::registerQueue: re-registration moves the
// on_queue_ready target to the latest registrant.
func envRegisterSharedQueue(v *vm, s []uint64) {
	name, ok := v.readString(u32(s, 0), u32(s, 1))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	tok := v.p.engine.shared.RegisterQueue(v.p.cfg.VMID, name, v)
	if !v.mem.WriteUint32Le(u32(s, 2), tok) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

// envResolveSharedQueue: empty vm_id means the caller's own vm_id; unknown ⇒ NOT_FOUND.
func envResolveSharedQueue(v *vm, s []uint64) {
	vmID, ok1 := v.readString(u32(s, 0), u32(s, 1))
	name, ok2 := v.readString(u32(s, 2), u32(s, 3))
	if !ok1 || !ok2 {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	if vmID == "" {
		vmID = v.p.cfg.VMID
	}
	tok, ok := v.p.engine.shared.ResolveQueue(vmID, name)
	if !ok {
		ret(s, statusNotFound)
		return
	}
	if !v.mem.WriteUint32Le(u32(s, 4), tok) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
}

// envDequeueSharedQueue: unknown token ⇒ NOT_FOUND; empty ⇒ EMPTY.
func envDequeueSharedQueue(v *vm, s []uint64) {
	item, found, empty := v.p.engine.shared.Dequeue(u32(s, 0))
	switch {
	case !found:
		ret(s, statusNotFound)
	case empty:
		ret(s, statusEmpty)
	case !v.copyOut(item, u32(s, 1), u32(s, 2)):
		ret(s, statusInvalidMemoryAccess)
	default:
		ret(s, statusOK)
	}
}

// envEnqueueSharedQueue posts proxy_on_queue_ready(root, token) to the registrant's worker
// (asynchronously, like Envoy's dispatcher post).
func envEnqueueSharedQueue(v *vm, s []uint64) {
	tok := u32(s, 0)
	data, ok := v.read(u32(s, 1), u32(s, 2))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	owner, found := v.p.engine.shared.Enqueue(tok, data)
	if !found {
		ret(s, statusNotFound)
		return
	}
	if owner != nil {
		go owner.QueueReady(tok)
	}
	ret(s, statusOK)
}
