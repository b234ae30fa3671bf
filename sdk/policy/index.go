package policy

import (
	"net/netip"

	"github.com/dicomgate/dicomgate/sdk/internal/heapsort"
)

// The candidate filter: every rule is filed in each dimension (called AE,
// calling AE, source CIDR) whose condition can be indexed, and is marked
// "unconstrained" in the others. Evaluate computes, per dimension, the
// bitset of rules that dimension cannot exclude (unconstrained, or filed
// under a key the request hits), intersects the three, and checks the
// surviving rules fully in configuration order, so first-match-wins is
// preserved; the filter only skips rules that cannot match.

// aeIndex files rules by AE title: exact titles in a map, glob literal
// prefixes in a byte trie. Keys are upper-cased for every rule (a superset
// for case-sensitive rules, which the full check then filters).
type aeIndex struct {
	exact map[string][]int32
	// few replaces exact after finish when there are at most fewExact
	// keys: a short scan beats hashing the key, which Go's wasm build does
	// without hardware help.
	few  []exactKey
	trie []trieNode // glob literal prefixes; nil when there are none
	sfx  []trieNode // glob literal suffixes, reversed; nil when there are none
}

// trieNode is one node of the prefix trie; node 0 is the root (empty
// prefix, never holding rules).
type trieNode struct {
	keys []byte  // child edge bytes
	next []int32 // child node indexes, parallel to keys
	own  []int32 // rules whose glob prefix ends here
	cum  []int32 // rules whose glob prefix is a prefix of this node's path
}

// addExact files rule id under the exact (upper-cased) title key.
func (x *aeIndex) addExact(key string, id int32) {
	if x.exact == nil {
		x.exact = map[string][]int32{}
	}
	l := x.exact[key]
	if len(l) == 0 || l[len(l)-1] != id {
		x.exact[key] = append(l, id)
	}
}

// addPrefix files rule id under a non-empty (upper-cased) glob prefix.
func (x *aeIndex) addPrefix(prefix string, id int32) {
	x.trie = trieAdd(x.trie, prefix, false, id)
}

// addSuffix files rule id under a non-empty (upper-cased) glob suffix.
func (x *aeIndex) addSuffix(suffix string, id int32) {
	x.sfx = trieAdd(x.sfx, suffix, true, id)
}

// trieAdd inserts key (walked backwards when rev) and records id there.
func trieAdd(t []trieNode, key string, rev bool, id int32) []trieNode {
	if t == nil {
		t = []trieNode{{}}
	}
	n := int32(0)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if rev {
			c = key[len(key)-1-i]
		}
		nx := int32(-1)
		for k, kc := range t[n].keys {
			if kc == c {
				nx = t[n].next[k]
				break
			}
		}
		if nx < 0 {
			t = append(t, trieNode{})
			nx = int32(len(t) - 1)
			t[n].keys = append(t[n].keys, c)
			t[n].next = append(t[n].next, nx)
		}
		n = nx
	}
	own := t[n].own
	if len(own) == 0 || own[len(own)-1] != id {
		t[n].own = append(own, id)
	}
	return t
}

// exactKey is one exact title and its rules.
type exactKey struct {
	key string
	ids []int32
}

// fewExact is the largest number of exact titles kept in aeIndex.few.
const fewExact = 8

// finish computes the cumulative lists of the tries and moves a small
// exact-title map to a slice.
func (x *aeIndex) finish() {
	if len(x.exact) > 0 && len(x.exact) <= fewExact {
		x.few = make([]exactKey, 0, len(x.exact))
		for k, ids := range x.exact {
			x.few = append(x.few, exactKey{k, ids})
		}
		x.exact = nil
	}
	trieFinish(x.trie)
	trieFinish(x.sfx)
}

func trieFinish(t []trieNode) {
	if t == nil {
		return
	}
	var walk func(n int32, inherited []int32)
	walk = func(n int32, inherited []int32) {
		cum := mergeSorted(inherited, t[n].own)
		t[n].cum = cum
		for _, c := range t[n].next {
			walk(c, cum)
		}
	}
	walk(0, nil)
}

// trieWalk returns the cumulative list of the deepest node key reaches
// (walked backwards when rev).
func trieWalk(t []trieNode, key []byte, rev bool) []int32 {
	n := int32(0)
walk:
	for i := range key {
		c := key[i]
		if rev {
			c = key[len(key)-1-i]
		}
		node := &t[n]
		for k, kc := range node.keys {
			if kc == c {
				n = node.next[k]
				continue walk
			}
		}
		break
	}
	return t[n].cum
}

// lookup returns the rules filed under the exact title up, under every
// glob prefix of up, and under every glob suffix of up (up is the
// upper-cased trimmed title; nil yields none).
func (x *aeIndex) lookup(up []byte) (exact, prefix, suffix []int32) {
	if up == nil {
		return nil, nil, nil
	}
	if x.exact != nil {
		exact = x.exact[string(up)]
	} else {
		for i := range x.few {
			if k := &x.few[i]; len(k.key) == len(up) && k.key == string(up) {
				exact = k.ids
				break
			}
		}
	}
	if x.trie != nil {
		prefix = trieWalk(x.trie, up, false)
	}
	if x.sfx != nil {
		suffix = trieWalk(x.sfx, up, true)
	}
	return exact, prefix, suffix
}

// cidrIndex files rules by source prefix: the address space is cut into
// elementary intervals, each holding the sorted rules whose prefixes cover
// it, so a lookup is one binary search.
type cidrIndex struct {
	v4, v6 cidrTable
}

// cidrTable covers one address family: interval i is [starts[i],
// starts[i+1]).
type cidrTable struct {
	starts []netip.Addr
	lists  [][]int32
}

// build creates the tables from prefix → rule ids.
func (x *cidrIndex) build(m map[netip.Prefix][]int32) {
	x.v4 = buildTable(m, true)
	x.v6 = buildTable(m, false)
}

func buildTable(m map[netip.Prefix][]int32, v4 bool) cidrTable {
	var t cidrTable
	zero := netip.IPv6Unspecified()
	if v4 {
		zero = netip.IPv4Unspecified()
	}
	bounds := []netip.Addr{zero}
	any := false
	for p := range m {
		if p.Addr().Is4() != v4 {
			continue
		}
		any = true
		bounds = append(bounds, p.Addr())
		if nx := lastAddr(p).Next(); nx.IsValid() {
			bounds = append(bounds, nx)
		}
	}
	if !any {
		return t
	}
	for _, b := range sortedUnique(bounds) { // starting with zero, the least address
		var list []int32
		for bits := 0; bits <= b.BitLen(); bits++ {
			p, _ := b.Prefix(bits)
			list = mergeSorted(list, m[p])
		}
		t.starts = append(t.starts, b)
		t.lists = append(t.lists, list)
	}
	return t
}

// lookup returns the rules whose prefixes contain a (an unmapped address).
func (x *cidrIndex) lookup(a netip.Addr) []int32 {
	t := &x.v6
	if a.Is4() {
		t = &x.v4
	}
	lo, hi := 0, len(t.starts) // find the last start <= a
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if t.starts[mid].Compare(a) <= 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return nil
	}
	return t.lists[lo-1]
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	if a.Is4() {
		b := a.As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

// mergeSorted returns the sorted union of two ascending lists (a new slice).
func mergeSorted(a, b []int32) []int32 {
	out := make([]int32, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j >= len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, a[i])
			i++
		case i >= len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// aeKeys returns the index keys of an AE condition, all upper-cased: exact
// titles, glob literal prefixes, and (for globs starting with a wildcard)
// glob literal suffixes. ok is false when some pattern has neither (such as
// "*" or "*X*"), which makes the condition unindexable.
func aeKeys(s *aeSet) (exact, prefixes, suffixes []string, ok bool) {
	if s == nil || s.any {
		return nil, nil, nil, false
	}
	for _, e := range s.exact {
		exact = append(exact, asciiUpper(e))
	}
	for _, g := range s.globs {
		if p := literalPrefix(g); p != "" {
			prefixes = append(prefixes, asciiUpper(p))
		} else if sf := literalSuffix(g); sf != "" {
			suffixes = append(suffixes, asciiUpper(sf))
		} else {
			return nil, nil, nil, false
		}
	}
	return exact, prefixes, suffixes, true
}

// fileAE files rule id under every key of an indexable AE condition and
// reports whether it could.
func fileAE(x *aeIndex, s *aeSet, id int32) bool {
	exact, prefixes, suffixes, ok := aeKeys(s)
	if !ok {
		return false
	}
	for _, e := range exact {
		x.addExact(e, id)
	}
	for _, p := range prefixes {
		x.addPrefix(p, id)
	}
	for _, sf := range suffixes {
		x.addSuffix(sf, id)
	}
	return true
}

// bitset helpers over []uint64 (bit i = rule i).

func setBit(b []uint64, i int32) { b[i>>6] |= 1 << (uint(i) & 63) }

func setBits(b []uint64, ids []int32) {
	for _, i := range ids {
		b[i>>6] |= 1 << (uint(i) & 63)
	}
}

// sortedUnique returns the distinct addresses of a in ascending order (a
// heap sort of their indexes, sdk/internal/heapsort; a is not changed).
func sortedUnique(a []netip.Addr) []netip.Addr {
	order := make([]int32, len(a))
	for i := range order {
		order[i] = int32(i)
	}
	heapsort.Indexes(order, func(i, j int32) bool { return a[i].Less(a[j]) })
	uniq := make([]netip.Addr, 0, len(a))
	for _, i := range order {
		if len(uniq) == 0 || a[i] != uniq[len(uniq)-1] {
			uniq = append(uniq, a[i])
		}
	}
	return uniq
}
