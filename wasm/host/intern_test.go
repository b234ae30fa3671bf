package host

import (
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// intern and celStateKey must return exactly the bytes asked for whatever the cache holds
// (colliding slots, lengths around the hash's 4- and 8-byte cases, empty input), reuse the string of
// an earlier identical value, and not keep guest memory: the result must not change when the input
// buffer is overwritten.
func TestIntern_ReturnsEqualImmutableStrings(t *testing.T) {
	v := &vm{}
	var inputs []string
	for n := 0; n <= 20; n++ {
		inputs = append(inputs, strings.Repeat("x", n), strings.Repeat("y", n))
	}
	for i := 0; i < 500; i++ { // more than the cache holds: sets fill and entries are evicted
		inputs = append(inputs, "dicom.value."+strconv.Itoa(i))
	}
	inputs = append(inputs, strings.Repeat("long", 100)) // above maxInternedLen
	for round := 0; round < 2; round++ {
		for _, in := range inputs {
			buf := []byte(in)
			got := v.intern(buf)
			key := v.celStateKey(buf)
			for i := range buf {
				buf[i] = '!'
			}
			if got != in {
				t.Fatalf("intern(%q) = %q", in, got)
			}
			if key != celStatePrefix+in {
				t.Fatalf("celStateKey(%q) = %q", in, key)
			}
		}
	}
	a, b := v.intern([]byte("ANY-SCP")), v.intern([]byte("ANY-SCP"))
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatalf("a repeated value was not interned")
	}
	k1, k2 := v.celStateKey([]byte("dicom.rule")), v.celStateKey([]byte("dicom.rule"))
	if unsafe.StringData(k1) != unsafe.StringData(k2) {
		t.Fatalf("a repeated set_property key was not interned")
	}
	if len(v.interned) > maxInterned {
		t.Fatalf("intern table grew to %d entries", len(v.interned))
	}
}

// Interning saves the per-call allocation of repeated values: once a value was seen, interning it
// again allocates nothing (the cache and the table look up []byte without converting).
func TestIntern_RepeatedValueDoesNotAllocate(t *testing.T) {
	v := &vm{}
	key, val := []byte("dicom.calling_ae"), []byte("ECHOSCU")
	v.intern(val)
	v.celStateKey(key)
	if n := testing.AllocsPerRun(100, func() {
		v.intern(val)
		v.celStateKey(key)
	}); n != 0 {
		t.Fatalf("%v allocations per repeated intern", n)
	}
}

// Two values that hash to the same cache set (as "route" and "any-scp" did in a direct-mapped
// cache) both stay cached: alternating between them is answered without the table.
func TestIntern_TwoWaySetKeepsCollidingValues(t *testing.T) {
	a := "route"
	b := ""
	for i := 0; b == ""; i++ {
		if c := "rule-" + strconv.Itoa(i); internSlot([]byte(c)) == internSlot([]byte(a)) {
			b = c
		}
	}
	v := &vm{}
	sa, sb := v.intern([]byte(a)), v.intern([]byte(b))
	v.interned = nil // only the cache can return the same strings now
	for i := 0; i < 3; i++ {
		if x := v.intern([]byte(a)); unsafe.StringData(x) != unsafe.StringData(sa) {
			t.Fatalf("%q was evicted by %q (same set)", a, b)
		}
		if x := v.intern([]byte(b)); unsafe.StringData(x) != unsafe.StringData(sb) {
			t.Fatalf("%q was evicted by %q (same set)", b, a)
		}
	}
}
