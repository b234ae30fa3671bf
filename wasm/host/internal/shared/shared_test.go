package shared

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// cpp-host SharedData::get/set: a missing key is NOT_FOUND; a CAS of 0 always writes; any other CAS
// must be the key's current one; every write gets a new non-zero CAS; Get returns a copy; vm_ids are
// separate namespaces.
func TestStore_SharedDataCAS(t *testing.T) {
	s := New()
	_, _, ok := s.Get("vm", "k")
	require.False(t, ok, "a key never set was found")

	require.True(t, s.Set("vm", "k", []byte("v1"), 0))
	b, cas1, ok := s.Get("vm", "k")
	require.True(t, ok)
	require.Equal(t, "v1", string(b))
	require.NotZero(t, cas1)

	require.False(t, s.Set("vm", "k", []byte("v2"), cas1+1), "a stale CAS wrote")
	b, _, _ = s.Get("vm", "k")
	require.Equal(t, "v1", string(b), "a CAS mismatch changed the value")

	require.True(t, s.Set("vm", "k", []byte("v2"), cas1))
	b, cas2, _ := s.Get("vm", "k")
	require.Equal(t, "v2", string(b))
	require.NotEqual(t, cas1, cas2)

	b[0] = 'X' // the caller's copy
	b, _, _ = s.Get("vm", "k")
	require.Equal(t, "v2", string(b), "Get returned the stored bytes, not a copy")

	_, _, ok = s.Get("other-vm", "k")
	require.False(t, ok, "vm_ids share a namespace")
}

type owner struct{ ready []uint32 }

func (o *owner) QueueReady(token uint32) { o.ready = append(o.ready, token) }

// cpp-host SharedQueue: registration returns one token per (vm_id, name), re-registration moves the
// registrant; resolve of an unknown queue and any operation on an unknown token is NOT_FOUND; an
// empty queue is EMPTY; items come out in order and outlive a forgotten registrant.
func TestStore_SharedQueues(t *testing.T) {
	s := New()
	a, b := &owner{}, &owner{}
	tok := s.RegisterQueue("vm", "q", a)
	require.NotZero(t, tok)
	got, ok := s.ResolveQueue("vm", "q")
	require.True(t, ok)
	require.Equal(t, tok, got)
	_, ok = s.ResolveQueue("vm", "missing")
	require.False(t, ok)
	_, ok = s.ResolveQueue("other-vm", "q")
	require.False(t, ok, "vm_ids share queue names")

	_, found, empty := s.Dequeue(tok)
	require.True(t, found)
	require.True(t, empty)
	_, found, _ = s.Dequeue(tok + 100)
	require.False(t, found)
	_, found = s.Enqueue(tok+100, []byte("x"))
	require.False(t, found)

	o, found := s.Enqueue(tok, []byte("one"))
	require.True(t, found)
	require.Same(t, a, o.(*owner))
	require.Equal(t, tok, s.RegisterQueue("vm", "q", b), "re-registration changed the token")
	o, _ = s.Enqueue(tok, []byte("two"))
	require.Same(t, b, o.(*owner), "re-registration did not move the registrant")

	s.ForgetOwners(func(o Owner) bool { return o == Owner(b) })
	o, _ = s.Enqueue(tok, []byte("three"))
	require.Nil(t, o, "a forgotten registrant is still notified")
	for _, want := range []string{"one", "two", "three"} {
		item, found, empty := s.Dequeue(tok)
		require.True(t, found)
		require.False(t, empty)
		require.Equal(t, want, string(item))
	}
}
