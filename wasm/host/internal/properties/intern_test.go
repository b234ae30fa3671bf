package properties

import (
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
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
			require.Equal(t, in, got, "intern(%q)", in)
			require.Equal(t, CelStatePrefix+in, key, "celStateKey(%q)", in)
		}
	}
	a, b := v.Intern([]byte("ANY-SCP")), v.Intern([]byte("ANY-SCP"))
	require.Same(t, unsafe.StringData(a), unsafe.StringData(b), "a repeated value was not interned")
	k1, k2 := v.CelStateKey([]byte("dicom.rule")), v.CelStateKey([]byte("dicom.rule"))
	require.Same(t, unsafe.StringData(k1), unsafe.StringData(k2), "a repeated set_property key was not interned")
	require.LessOrEqual(t, len(v.table), maxInterned, "intern table grew to %d entries", len(v.table))
}

// Interning saves the per-call allocation of repeated values: once a value was seen, interning it
// again allocates nothing (the cache and the table look up []byte without converting).
func TestIntern_RepeatedValueDoesNotAllocate(t *testing.T) {
	v := &Interner{}
	key, val := []byte("dicom.calling_ae"), []byte("ECHOSCU")
	v.Intern(val)
	v.CelStateKey(key)
	n := testing.AllocsPerRun(100, func() {
		v.Intern(val)
		v.CelStateKey(key)
	})
	require.Zero(t, n, "allocations per repeated intern")
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
		require.Same(t, unsafe.StringData(sa), unsafe.StringData(v.Intern([]byte(a))), "%q was evicted by %q (same set)", a, b)
		require.Same(t, unsafe.StringData(sb), unsafe.StringData(v.Intern([]byte(b))), "%q was evicted by %q (same set)", b, a)
	}
}
