package properties

import (
	"strconv"
	"testing"
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
		if fs.Len() != n {
			t.Fatalf("n=%d: %d keys after replacing, want %d", n, fs.Len(), n)
		}
		for i := 0; i < n; i++ {
			want := "v" + strconv.Itoa(i)
			if i%2 == 0 {
				want = "w" + strconv.Itoa(i)
			}
			if got, ok := fs.Get("k" + strconv.Itoa(i)); !ok || got != want {
				t.Fatalf("n=%d: get(k%d) = %q, %v; want %q", n, i, got, ok, want)
			}
		}
		if _, ok := fs.Get("k" + strconv.Itoa(n)); ok {
			t.Fatalf("n=%d: get of a key never set succeeded", n)
		}
		m := fs.Snapshot()
		if len(m) != n {
			t.Fatalf("n=%d: snapshot has %d keys", n, len(m))
		}
		for k, v := range m {
			if got, _ := fs.Get(k); got != v {
				t.Fatalf("n=%d: snapshot[%s] = %q, get = %q", n, k, v, got)
			}
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
		if got, ok := fs.GetCel("dicom.decision"); !ok || got != "route" {
			t.Fatalf("extra=%d: getCel(dicom.decision) = %q, %v", extra, got, ok)
		}
		if got, ok := fs.GetCel("a\x00b"); !ok || got != "nested" {
			t.Fatalf("extra=%d: getCel(a NUL b) = %q, %v", extra, got, ok)
		}
		for _, miss := range []string{"dicom", "dicom.decisio", "wasm.dicom.decision", ""} {
			if got, ok := fs.GetCel(miss); ok {
				t.Fatalf("extra=%d: getCel(%q) = %q, want not found", extra, miss, got)
			}
		}
		if m := fs.Snapshot(); m["wasm.a.b"] != "nested" || m["dicom.decision"] != "not a CelState" {
			t.Fatalf("extra=%d: snapshot = %v", extra, m)
		}
	}
}
