package properties

import (
	"encoding/binary"
	"math/bits"
)

// Interner turns the filter-state keys and values a guest sets (set_envoy_filter_state,
// set_property) into strings, reusing the string of an earlier identical value: most repeat across
// connections (the same keys, mostly the same values), and interning saves their allocations. One
// per VM; the zero value is ready to use. It is not safe for concurrent use.
type Interner struct {
	// table holds the interned strings (bounded, see maxInterned); cache and celKeyCache are
	// 2-way set-associative caches in front of it (Intern, CelStateKey).
	table       map[string]string
	cache       internCache
	celKeyCache internCache
	scratch     []byte // builds CelStateKey's key
}

// maxInterned bounds the intern table of a VM (a guest writing ever-new values must not grow it
// without bound; past the limit values are simply allocated).
const maxInterned = 4096

// maxInternedLen is the longest string the intern table and its caches keep.
const maxInternedLen = 256

// internCache is a 2-way set-associative cache of interned strings in front of the intern table:
// the strings a filter sets on every connection (the same keys, mostly the same values) are found
// with one cheap hash and one or two comparisons. Entries may carry a fixed prefix that the lookup
// skips (CelStateKey keeps "wasm."+path under the hash of path).
type internCache [2 * internSets]string

// internSets is the number of sets of an internCache (a power of two: internSlot takes the top bits).
const internSets = 1 << internSetBits

const internSetBits = 6

// lookup returns the cached string equal to prefix+b (prefix of length pre, not compared: a cache
// holds one prefix only) from set.
func (c *internCache) lookup(set int, b []byte, pre int) (string, bool) {
	i := 2 * set
	if s := c[i]; len(s) == pre+len(b) && s[pre:] == string(b) {
		return s, true
	}
	if s := c[i+1]; len(s) == pre+len(b) && s[pre:] == string(b) {
		c[i], c[i+1] = s, c[i] // most recently used first
		return s, true
	}
	return "", false
}

// insert makes s the most recently used entry of set, evicting the least recently used one.
func (c *internCache) insert(set int, s string) {
	if len(s) > maxInternedLen {
		return // keep the cache from pinning large strings
	}
	i := 2 * set
	c[i+1] = c[i]
	c[i] = s
}

// Intern returns b as a string, reusing an earlier identical string when there is one (cache, then
// the bounded table).
func (in *Interner) Intern(b []byte) string {
	set := internSlot(b)
	if s, ok := in.cache.lookup(set, b, 0); ok {
		return s
	}
	s := in.internTable(b)
	in.cache.insert(set, s)
	return s
}

// internTable is Intern without the cache.
func (in *Interner) internTable(b []byte) string {
	if s, ok := in.table[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(in.table) < maxInterned && len(b) <= maxInternedLen {
		if in.table == nil {
			in.table = map[string]string{}
		}
		in.table[s] = s
	}
	return s
}

// CelStateKey returns the filter-state key CelStatePrefix+path of a set_property path, interned
// like Intern.
func (in *Interner) CelStateKey(path []byte) string {
	set := internSlot(path)
	if k, ok := in.celKeyCache.lookup(set, path, len(CelStatePrefix)); ok {
		return k
	}
	in.scratch = append(append(in.scratch[:0], CelStatePrefix...), path...)
	k := in.internTable(in.scratch)
	in.celKeyCache.insert(set, k)
	return k
}

// internSlot hashes b (its length and up to 16 bytes from both ends) to an internCache set.
func internSlot(b []byte) int {
	n := len(b)
	var x uint64
	switch {
	case n >= 8:
		x = binary.LittleEndian.Uint64(b) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(b[n-8:]), 31)
	case n >= 4:
		x = uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint32(b[n-4:]))<<32
	case n > 0:
		x = uint64(b[0]) | uint64(b[n/2])<<8 | uint64(b[n-1])<<16
	}
	x = (x ^ uint64(n)) * 0x9e3779b97f4a7c15
	return int(x >> (64 - internSetBits))
}
