package properties

import "strings"

// fsEntry is one filter-state object of a connection (Envoy StreamInfo::FilterState): the value of
// a set_envoy_filter_state key, or the CelState of a set_property path under "wasm.<path>".
type fsEntry struct{ key, val string }

// FilterState is a connection's filter state. A filter sets a handful of keys, so they live in a
// slice backed by an array inside the Conn (no allocation, a linear scan beats hashing); once a
// guest sets more keys than the array holds, a map indexes the slice so lookups stay O(1).
// Setting an existing key replaces its value (Envoy FilterStateImpl::setData with
// StateType::Mutable, which is what both set_property and set_envoy_filter_state use).
type FilterState struct {
	entries []fsEntry      // in first-set order; nil until the first set
	index   map[string]int // key → position in entries; nil while len(entries) <= len(arr)
	arr     [8]fsEntry
}

// Get returns the value stored under key.
func (fs *FilterState) Get(key string) (string, bool) {
	if fs.index != nil {
		if i, ok := fs.index[key]; ok {
			return fs.entries[i].val, true
		}
		return "", false
	}
	for i := range fs.entries {
		if fs.entries[i].key == key {
			return fs.entries[i].val, true
		}
	}
	return "", false
}

// GetCel returns the CelState set_property stored for the top-level path segment name, i.e. the
// value of key CelStatePrefix+name (without building that key).
func (fs *FilterState) GetCel(name string) (string, bool) {
	if fs.index != nil {
		return fs.Get(CelStatePrefix + name)
	}
	for i := range fs.entries {
		k := fs.entries[i].key
		if len(k) == len(CelStatePrefix)+len(name) && k[len(CelStatePrefix):] == name && k[:len(CelStatePrefix)] == CelStatePrefix {
			return fs.entries[i].val, true
		}
	}
	return "", false
}

// Set stores val under key, replacing an earlier value.
func (fs *FilterState) Set(key, val string) {
	if fs.index != nil {
		if i, ok := fs.index[key]; ok {
			fs.entries[i].val = val
			return
		}
		fs.index[key] = len(fs.entries)
		fs.entries = append(fs.entries, fsEntry{key, val})
		return
	}
	for i := range fs.entries {
		if fs.entries[i].key == key {
			fs.entries[i].val = val
			return
		}
	}
	if fs.entries == nil {
		fs.entries = fs.arr[:0]
	}
	if len(fs.entries) == len(fs.arr) {
		fs.index = make(map[string]int, 2*len(fs.arr))
		for i := range fs.entries {
			fs.index[fs.entries[i].key] = i
		}
		fs.index[key] = len(fs.entries)
	}
	fs.entries = append(fs.entries, fsEntry{key, val})
}

// Len returns the number of keys.
func (fs *FilterState) Len() int { return len(fs.entries) }

// Snapshot returns the filter state as a new map for host.Conn.FilterState (NUL path separators of
// set_property keys shown as '.', see filterStateKeyForDisplay).
func (fs *FilterState) Snapshot() map[string]string {
	out := make(map[string]string, len(fs.entries))
	for _, e := range fs.entries {
		out[filterStateKeyForDisplay(e.key)] = e.val
	}
	return out
}

// filterStateKeyForDisplay renders a filter-state key for host.Conn.FilterState (NUL path separators of
// set_property keys shown as '.').
func filterStateKeyForDisplay(k string) string { return strings.ReplaceAll(k, "\x00", ".") }
