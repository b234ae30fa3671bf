package properties

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// Envoy FilterStateImpl::setData (StateType::Mutable, as set_property and set_envoy_filter_state
// use it) replaces an existing object; getDataReadOnly finds every key set so far. Exercised below
// and above the inline capacity, where the slice gets a map index.
func TestFilterState_SetReplacesAndGetFindsEveryKey(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 40} {
		var fs FilterState
		for i := 0; i < n; i++ {
			fs.Set("k"+strconv.Itoa(i), "v"+strconv.Itoa(i))
		}
		for i := 0; i < n; i += 2 { // replace every other key
			fs.Set("k"+strconv.Itoa(i), "w"+strconv.Itoa(i))
		}
		require.Equal(t, n, fs.Len(), "n=%d: keys after replacing", n)
		for i := 0; i < n; i++ {
			want := "v" + strconv.Itoa(i)
			if i%2 == 0 {
				want = "w" + strconv.Itoa(i)
			}
			got, ok := fs.Get("k" + strconv.Itoa(i))
			require.True(t, ok, "n=%d: get(k%d) found nothing", n, i)
			require.Equal(t, want, got, "n=%d: get(k%d)", n, i)
		}
		_, ok := fs.Get("k" + strconv.Itoa(n))
		require.False(t, ok, "n=%d: get of a key never set succeeded", n)
		m := fs.Snapshot()
		require.Len(t, m, n, "n=%d: snapshot keys", n)
		for k, v := range m {
			got, _ := fs.Get(k)
			require.Equal(t, v, got, "n=%d: get(%s) differs from snapshot[%s]", n, k, k)
		}
	}
}

// Envoy Context::getProperty falls back to the CelState filter state "wasm.<first segment>"
// (context.cc findValue → getFilterState(CelStateKeyPrefix + part)); getCel must find exactly
// those keys, below and above the inline capacity.
func TestFilterState_CelStateLookup(t *testing.T) {
	for _, extra := range []int{0, 10} {
		var fs FilterState
		fs.Set("dicom.decision", "not a CelState")
		fs.Set(CelStatePrefix+"dicom.decision", "route")
		fs.Set(CelStatePrefix+"a\x00b", "nested")
		for i := 0; i < extra; i++ {
			fs.Set("other"+strconv.Itoa(i), "x")
		}
		got, ok := fs.GetCel("dicom.decision")
		require.True(t, ok, "extra=%d: getCel(dicom.decision) found nothing", extra)
		require.Equal(t, "route", got, "extra=%d: getCel(dicom.decision)", extra)
		got, ok = fs.GetCel("a\x00b")
		require.True(t, ok, "extra=%d: getCel(a NUL b) found nothing", extra)
		require.Equal(t, "nested", got, "extra=%d: getCel(a NUL b)", extra)
		for _, miss := range []string{"dicom", "dicom.decisio", "wasm.dicom.decision", ""} {
			got, ok := fs.GetCel(miss)
			require.False(t, ok, "extra=%d: getCel(%q) = %q, want not found", extra, miss, got)
		}
		m := fs.Snapshot()
		require.Equal(t, "nested", m["wasm.a.b"], "extra=%d: snapshot = %v", extra, m)
		require.Equal(t, "not a CelState", m["dicom.decision"], "extra=%d: snapshot = %v", extra, m)
	}
}
