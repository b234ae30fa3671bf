package properties

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
	v := &Interner{}
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
			got := v.Intern(buf)
			key := v.CelStateKey(buf)
			for i := range buf {
				buf[i] = '!'
			}
			if got != in {
				t.Fatalf("intern(%q) = %q", in, got)
			}
			if key != CelStatePrefix+in {
				t.Fatalf("celStateKey(%q) = %q", in, key)
			}
		}
	}
	a, b := v.Intern([]byte("ANY-SCP")), v.Intern([]byte("ANY-SCP"))
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatalf("a repeated value was not interned")
	}
	k1, k2 := v.CelStateKey([]byte("dicom.rule")), v.CelStateKey([]byte("dicom.rule"))
	if unsafe.StringData(k1) != unsafe.StringData(k2) {
		t.Fatalf("a repeated set_property key was not interned")
	}
	if len(v.table) > maxInterned {
		t.Fatalf("intern table grew to %d entries", len(v.table))
	}
}

// Interning saves the per-call allocation of repeated values: once a value was seen, interning it
// again allocates nothing (the cache and the table look up []byte without converting).
func TestIntern_RepeatedValueDoesNotAllocate(t *testing.T) {
	v := &Interner{}
	key, val := []byte("dicom.calling_ae"), []byte("ECHOSCU")
	v.Intern(val)
	v.CelStateKey(key)
	if n := testing.AllocsPerRun(100, func() {
		v.Intern(val)
		v.CelStateKey(key)
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
	v := &Interner{}
	sa, sb := v.Intern([]byte(a)), v.Intern([]byte(b))
	v.table = nil // only the cache can return the same strings now
	for i := 0; i < 3; i++ {
		if x := v.Intern([]byte(a)); unsafe.StringData(x) != unsafe.StringData(sa) {
			t.Fatalf("%q was evicted by %q (same set)", a, b)
		}
		if x := v.Intern([]byte(b)); unsafe.StringData(x) != unsafe.StringData(sb) {
			t.Fatalf("%q was evicted by %q (same set)", b, a)
		}
	}
}
