package host

import (
	"sync"
)

// Process-wide shared data and shared queues keyed by vm_id (cpp-host src/shared_data.cc,
// src/shared_queue.cc). Istio leaves vm_id empty, so all plugins share one namespace.
var shared = struct {
	mu      sync.Mutex
	data    map[string]map[string]*sharedValue
	cas     uint32
	queues  map[uint32]*sharedQueue
	byName  map[string]uint32 // vmID + "\x00" + name → token
	nextTok uint32
}{data: map[string]map[string]*sharedValue{}, queues: map[uint32]*sharedQueue{}, byName: map[string]uint32{}}

type sharedValue struct {
	value []byte
	cas   uint32
}

type sharedQueue struct {
	items [][]byte
	owner *vm // registrant: receives proxy_on_queue_ready on its root context
}

func nextCAS() uint32 {
	shared.cas++
	if shared.cas == 0 {
		shared.cas++
	}
	return shared.cas
}

// envGetSharedData is cpp-host exports.cc get_shared_data: NOT_FOUND if absent.
func envGetSharedData(v *vm, s []uint64) {
	key, ok := v.readString(u32(s, 0), u32(s, 1))
	if !ok {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	shared.mu.Lock()
	var val []byte
	var cas uint32
	sv, found := shared.data[v.p.cfg.VMID][key]
	if found {
		val, cas = append([]byte(nil), sv.value...), sv.cas
	}
	shared.mu.Unlock()
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
	cas := u32(s, 4)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	m := shared.data[v.p.cfg.VMID]
	if m == nil {
		m = map[string]*sharedValue{}
		shared.data[v.p.cfg.VMID] = m
	}
	if cur, ok := m[key]; ok {
		if cas != 0 && cas != cur.cas {
			ret(s, statusCASMismatch)
			return
		}
		cur.value = val
		cur.cas = nextCAS()
	} else {
		m[key] = &sharedValue{value: val, cas: nextCAS()}
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
	shared.mu.Lock()
	key := v.p.cfg.VMID + "\x00" + name
	tok, exists := shared.byName[key]
	if !exists {
		shared.nextTok++
		tok = shared.nextTok
		shared.byName[key] = tok
		shared.queues[tok] = &sharedQueue{}
	}
	shared.queues[tok].owner = v
	shared.mu.Unlock()
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
	shared.mu.Lock()
	tok, ok := shared.byName[vmID+"\x00"+name]
	shared.mu.Unlock()
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
	shared.mu.Lock()
	q, ok := shared.queues[u32(s, 0)]
	var item []byte
	empty := true
	if ok && len(q.items) > 0 {
		item, q.items = q.items[0], q.items[1:]
		empty = false
	}
	shared.mu.Unlock()
	if !ok {
		ret(s, statusNotFound)
		return
	}
	if empty {
		ret(s, statusEmpty)
		return
	}
	if !v.copyOut(item, u32(s, 1), u32(s, 2)) {
		ret(s, statusInvalidMemoryAccess)
		return
	}
	ret(s, statusOK)
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
	shared.mu.Lock()
	q, found := shared.queues[tok]
	var owner *vm
	if found {
		q.items = append(q.items, data)
		owner = q.owner
	}
	shared.mu.Unlock()
	if !found {
		ret(s, statusNotFound)
		return
	}
	if owner != nil {
		go owner.p.queueReady(owner, tok)
	}
	ret(s, statusOK)
}

// releaseSharedQueues forgets p's VMs as queue registrants (queues and their items stay, like
// cpp-host's process-wide SharedQueue).
func releaseSharedQueues(p *Plugin) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for _, q := range shared.queues {
		if q.owner != nil && q.owner.p == p {
			q.owner = nil
		}
	}
}
