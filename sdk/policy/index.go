package policy

import (
	"net/netip"
	"sort"
	"strings"
)

// The candidate index: each rule is filed under ONE dimension (called AE,
// calling AE, source CIDR) or, when it has no indexable condition, in the
// generic list that every evaluation scans. Evaluate merges the ascending
// candidate lists the request hits and checks the rules fully in
// configuration order, so first-match-wins is preserved; the index only
// skips rules that cannot match.

// aeIndex files rules by AE title: exact titles in a map, glob literal
// prefixes in a byte trie. Keys are upper-cased for every rule (a superset
// for case-sensitive rules, which the full check then filters).
type aeIndex struct {
	exact map[string][]int32
	trie  []trieNode // nil when no rule is filed by a glob prefix
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
	if x.trie == nil {
		x.trie = []trieNode{{}}
	}
	n := int32(0)
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		nx := int32(-1)
		for k, kc := range x.trie[n].keys {
			if kc == c {
				nx = x.trie[n].next[k]
				break
			}
		}
		if nx < 0 {
			x.trie = append(x.trie, trieNode{})
			nx = int32(len(x.trie) - 1)
			x.trie[n].keys = append(x.trie[n].keys, c)
			x.trie[n].next = append(x.trie[n].next, nx)
		}
		n = nx
	}
	own := x.trie[n].own
	if len(own) == 0 || own[len(own)-1] != id {
		x.trie[n].own = append(own, id)
	}
}

// finish computes the cumulative lists of the trie.
func (x *aeIndex) finish() {
	if x.trie == nil {
		return
	}
	var walk func(n int32, inherited []int32)
	walk = func(n int32, inherited []int32) {
		cum := mergeSorted(inherited, x.trie[n].own)
		x.trie[n].cum = cum
		for _, c := range x.trie[n].next {
			walk(c, cum)
		}
	}
	walk(0, nil)
}

// lookup returns the rules filed under the exact title up and under every
// glob prefix of up (up is the upper-cased trimmed title; nil yields none).
func (x *aeIndex) lookup(up []byte) (exact, prefix []int32) {
	if up == nil {
		return nil, nil
	}
	if x.exact != nil {
		exact = x.exact[string(up)]
	}
	if x.trie != nil {
		n := int32(0)
	walk:
		for _, c := range up {
			node := &x.trie[n]
			for k, kc := range node.keys {
				if kc == c {
					n = node.next[k]
					continue walk
				}
			}
			break
		}
		prefix = x.trie[n].cum
	}
	return exact, prefix
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
	sort.Slice(bounds, func(i, j int) bool { return bounds[i].Less(bounds[j]) })
	uniq := bounds[:1]
	for _, b := range bounds[1:] {
		if b != uniq[len(uniq)-1] {
			uniq = append(uniq, b)
		}
	}
	for _, b := range uniq {
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

// Dimensions a rule can be filed under.
const (
	dimGeneric = iota
	dimCalled
	dimCalling
	dimCIDR
)

// aeKeys returns the index keys of an AE condition: upper-cased exact titles
// and glob prefixes. ok is false when some pattern has no literal prefix
// (e.g. "*X" or "*"), which makes the condition unindexable.
func aeKeys(s *aeSet) (exact, prefixes []string, ok bool) {
	if s == nil || s.any {
		return nil, nil, false
	}
	for _, e := range s.exact {
		exact = append(exact, strings.ToUpper(e))
	}
	for _, g := range s.globs {
		p := literalPrefix(g)
		if p == "" {
			return nil, nil, false
		}
		prefixes = append(prefixes, strings.ToUpper(p))
	}
	return exact, prefixes, true
}

// chooseDims picks for every rule the dimension whose fullest bucket (among
// the rule's keys) is smallest, so that a request hits few candidates.
// Prefix and short-CIDR keys are penalised: they catch many requests.
func chooseDims(rules []*rule) []int {
	calledCount, callingCount := map[string]int{}, map[string]int{}
	cidrCount := map[netip.Prefix]int{}
	type keys struct {
		calledE, calledP, callingE, callingP []string
		calledOK, callingOK                  bool
	}
	ks := make([]keys, len(rules))
	for i, r := range rules {
		k := &ks[i]
		k.calledE, k.calledP, k.calledOK = aeKeys(r.called)
		k.callingE, k.callingP, k.callingOK = aeKeys(r.calling)
		if k.calledOK {
			for _, e := range k.calledE {
				calledCount["="+e]++
			}
			for _, p := range k.calledP {
				calledCount["^"+p]++
			}
		}
		if k.callingOK {
			for _, e := range k.callingE {
				callingCount["="+e]++
			}
			for _, p := range k.callingP {
				callingCount["^"+p]++
			}
		}
		for _, p := range r.cidrs {
			cidrCount[p]++
		}
	}
	broad := len(rules)/4 + 1
	aeCost := func(e, p []string, count map[string]int) int {
		c := 0
		for _, k := range e {
			c = max(c, count["="+k])
		}
		for _, k := range p {
			v := count["^"+k] + 1
			if len(k) < 2 {
				v += broad
			}
			c = max(c, v)
		}
		return c
	}
	dims := make([]int, len(rules))
	for i, r := range rules {
		k := &ks[i]
		best, bestCost := dimGeneric, int(^uint(0)>>1)
		if k.calledOK {
			best, bestCost = dimCalled, aeCost(k.calledE, k.calledP, calledCount)
		}
		if k.callingOK {
			if c := aeCost(k.callingE, k.callingP, callingCount); c < bestCost {
				best, bestCost = dimCalling, c
			}
		}
		if r.hasCIDRs && len(r.cidrs) > 0 {
			c := 0
			for _, p := range r.cidrs {
				v := cidrCount[p]
				if (p.Addr().Is4() && p.Bits() < 8) || (!p.Addr().Is4() && p.Bits() < 16) {
					v += broad
				}
				c = max(c, v)
			}
			if c < bestCost {
				best = dimCIDR
			}
		}
		dims[i] = best
	}
	return dims
}
