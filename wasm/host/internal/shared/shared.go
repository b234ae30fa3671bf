// Package shared is the proxy-wasm shared data and shared queues of one host.Engine: key/value pairs
// with compare-and-swap tokens and named FIFO queues, both keyed by vm_id and common to every VM of
// the Engine, as Envoy's are common to every VM of the process.
//
// It follows proxy-wasm-cpp-host src/shared_data.cc (SharedData::get/set, a CAS of 0 always writes,
// CAS tokens never 0) and src/shared_queue.cc (SharedQueue::registerQueue/resolveQueue/enqueue/
// dequeue: re-registration moves the ready callback to the latest registrant; queues and their items
// outlive their registrant). The proxy_* imports that use it (status codes, guest memory) are in
// package abi.
package shared

import "sync"

// Owner is the registrant of a queue: the VM whose root context gets proxy_on_queue_ready.
type Owner interface {
	// QueueReady is called (on its own goroutine, like Envoy's dispatcher post) after an enqueue.
	QueueReady(token uint32)
}

// Store holds the shared data and queues of one Engine. It is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	data    map[string]map[string]*value // vmID → key → value
	cas     uint32
	queues  map[uint32]*queue
	byName  map[string]uint32 // vmID + "\x00" + name → token
	nextTok uint32
}

type value struct {
	b   []byte
	cas uint32
}

type queue struct {
	items [][]byte
	owner Owner
}

// New returns an empty store.
func New() *Store {
	return &Store{data: map[string]map[string]*value{}, queues: map[uint32]*queue{}, byName: map[string]uint32{}}
}

// nextCAS returns the next CAS token (never 0: 0 means "no CAS" in set). Called with s.mu held.
func (s *Store) nextCAS() uint32 {
	s.cas++
	if s.cas == 0 {
		s.cas++
	}
	return s.cas
}

// Get returns a copy of the value of key in vmID's namespace and its CAS token; ok is false when
// the key was never set (NOT_FOUND).
func (s *Store) Get(vmID, key string) (b []byte, cas uint32, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[vmID][key]
	if !ok {
		return nil, 0, false
	}
	return append([]byte(nil), v.b...), v.cas, true
}

// Set stores b (kept, not copied) under key. A cas other than 0 must equal the key's current token,
// else nothing is written and Set returns false (CAS_MISMATCH).
func (s *Store) Set(vmID, key string, b []byte, cas uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.data[vmID]
	if m == nil {
		m = map[string]*value{}
		s.data[vmID] = m
	}
	if cur, ok := m[key]; ok {
		if cas != 0 && cas != cur.cas {
			return false
		}
		cur.b, cur.cas = b, s.nextCAS()
		return true
	}
	m[key] = &value{b: b, cas: s.nextCAS()}
	return true
}

// RegisterQueue returns the token of queue name in vmID's namespace, creating it on first use, and
// makes owner its registrant.
func (s *Store) RegisterQueue(vmID, name string, owner Owner) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := vmID + "\x00" + name
	tok, ok := s.byName[key]
	if !ok {
		s.nextTok++
		tok = s.nextTok
		s.byName[key] = tok
		s.queues[tok] = &queue{}
	}
	s.queues[tok].owner = owner
	return tok
}

// ResolveQueue returns the token of a registered queue; ok is false for an unknown one (NOT_FOUND).
func (s *Store) ResolveQueue(vmID, name string) (token uint32, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	token, ok = s.byName[vmID+"\x00"+name]
	return token, ok
}

// Dequeue removes and returns the oldest item of the queue. found is false for an unknown token
// (NOT_FOUND); empty is true when the queue holds nothing (EMPTY).
func (s *Store) Dequeue(token uint32) (item []byte, found, empty bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, found := s.queues[token]
	if !found {
		return nil, false, false
	}
	if len(q.items) == 0 {
		return nil, true, true
	}
	item, q.items = q.items[0], q.items[1:]
	return item, true, false
}

// Enqueue appends item (kept, not copied) to the queue and returns its registrant (nil once the
// registrant is gone); found is false for an unknown token (NOT_FOUND). The caller notifies the
// owner (Owner.QueueReady).
func (s *Store) Enqueue(token uint32, item []byte) (owner Owner, found bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, found := s.queues[token]
	if !found {
		return nil, false
	}
	q.items = append(q.items, item)
	return q.owner, true
}

// ForgetOwners drops every registrant for which gone returns true (a plugin being closed); the
// queues and their items stay, like cpp-host's process-wide SharedQueue.
func (s *Store) ForgetOwners(gone func(Owner) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.queues {
		if q.owner != nil && gone(q.owner) {
			q.owner = nil
		}
	}
}
