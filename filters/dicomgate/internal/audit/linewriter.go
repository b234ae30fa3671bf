package audit

import "unsafe"

// The audit line is written with word-sized loads and stores instead of
// append and byte loops. In the guest, Go's wasm code turns every jump into
// a trip through a br_table dispatcher and every append into a call to
// runtime.memmove, which wazero runs as a call into the host's memmove that
// spills every register; straight-line 8-byte moves avoid both (the
// measurements are in bench/RESULTS.md §1.11).
//
// Every writer below takes the line buffer w and the write offset n, writes
// at w[n:] and returns the new offset. The caller reserves room first (see
// AppendLine): putFrag writes a whole fragSize-byte block, so w must have
// fragSize bytes at n even when the fragment is shorter; the bytes past the
// fragment are overwritten by the next write or fall outside the line.

// fragSize is the block a fragment is written as (at least its longest
// text).
const fragSize = 32

// fragPad follows every fragment's text: fragSize spaces, so that putFrag can
// load fragSize bytes from any fragment. A fragment is a constant string, not
// a value built at start-up: an init function that builds twenty of them
// costs ~2.8 KB of the module's size budget.
const fragPad = "                                "

// putFrag writes the fragment f (its text followed by fragPad) at w[n:] as
// four word loads and stores (no branch, no loop) and advances by the text's
// length.
func putFrag(w []byte, n int, f string) int {
	d := w[n : n+fragSize]
	_ = f[fragSize-1] // f holds at least fragSize bytes
	src := unsafe.Pointer(unsafe.StringData(f))
	dst := unsafe.Pointer(&d[0])
	*(*uint64)(dst) = *(*uint64)(src)
	*(*uint64)(unsafe.Add(dst, 8)) = *(*uint64)(unsafe.Add(src, 8))
	*(*uint64)(unsafe.Add(dst, 16)) = *(*uint64)(unsafe.Add(src, 16))
	*(*uint64)(unsafe.Add(dst, 24)) = *(*uint64)(unsafe.Add(src, 24))
	return n + len(f) - len(fragPad)
}

// SWAR tests on 8 (or 4) bytes at once; each is exact for "does any byte
// ...". From the well-known bit hacks (haszero, hasless, hasmore).
const (
	ones64  = 0x0101010101010101
	highs64 = 0x8080808080808080
	ones32  = 0x01010101
	highs32 = 0x80808080
)

// jsonPlain8 reports whether all 8 bytes of x are bytes appendJSONText
// copies as they are: printable ASCII (0x20-0x7e) except '"' and '\\'.
func jsonPlain8(x uint64) bool {
	ctl := (x - 0x20*ones64) & ^x & highs64 // a byte < 0x20
	high := ((x + ones64) | x) & highs64    // a byte ≥ 0x7f
	q := x ^ '"'*ones64
	bs := x ^ '\\'*ones64
	quote := (q - ones64) & ^q & highs64    // a '"'
	bslash := (bs - ones64) & ^bs & highs64 // a '\\'
	return ctl|high|quote|bslash == 0
}

// jsonPlain4 is jsonPlain8 for 4 bytes.
func jsonPlain4(x uint32) bool {
	ctl := (x - 0x20*ones32) & ^x & highs32
	high := ((x + ones32) | x) & highs32
	q := x ^ '"'*ones32
	bs := x ^ '\\'*ones32
	quote := (q - ones32) & ^q & highs32
	bslash := (bs - ones32) & ^bs & highs32
	return ctl|high|quote|bslash == 0
}

// putJSONText writes s as the inside of a JSON string, like appendJSONText.
// Texts without bytes to escape, the usual case, are checked and copied a
// word at a time; the last word overlaps the one before instead of a byte
// loop. Anything else goes through appendJSONText (w has the room).
func putJSONText(w []byte, n int, s string) int {
	m := len(s)
	switch {
	case m >= 8:
		d := w[n : n+m]
		src := unsafe.Pointer(unsafe.StringData(s))
		dst := unsafe.Pointer(&d[0])
		for i := 0; i < m-8; i += 8 {
			x := *(*uint64)(unsafe.Add(src, i))
			if !jsonPlain8(x) {
				return len(appendJSONText(w[:n], s))
			}
			*(*uint64)(unsafe.Add(dst, i)) = x
		}
		x := *(*uint64)(unsafe.Add(src, m-8))
		if !jsonPlain8(x) {
			return len(appendJSONText(w[:n], s))
		}
		*(*uint64)(unsafe.Add(dst, m-8)) = x
	case m >= 4:
		d := w[n : n+m]
		src := unsafe.Pointer(unsafe.StringData(s))
		dst := unsafe.Pointer(&d[0])
		x := *(*uint32)(src)
		y := *(*uint32)(unsafe.Add(src, m-4))
		if !jsonPlain4(x) || !jsonPlain4(y) {
			return len(appendJSONText(w[:n], s))
		}
		*(*uint32)(dst) = x
		*(*uint32)(unsafe.Add(dst, m-4)) = y
	case m > 0:
		d := w[n : n+m]
		for i := range d {
			c := s[i]
			if !jsonPlain[c] {
				return len(appendJSONText(w[:n], s))
			}
			d[i] = c
		}
	}
	return n + m
}
