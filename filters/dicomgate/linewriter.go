package main

import "unsafe"

// The audit line is written with word-sized loads and stores instead of
// append and byte loops. In the guest, Go's wasm code turns every jump into
// a trip through a br_table dispatcher and every append into a call to
// runtime.memmove, which wazero runs as a call into the host's memmove that
// spills every register: measured under wazero, a 10-iteration empty loop
// costs ~37 ns, one append of a 16-byte literal ~27 ns, a 16-byte byte-wise
// scan ~70 ns. Straight-line 8-byte moves cost a few ns.
//
// Every writer below takes the line buffer w and the write offset n, writes
// at w[n:] and returns the new offset. The caller reserves room first (see
// appendAuditLine): frag writes a whole fragSize-byte block, so w must have
// fragSize bytes at n even when the fragment is shorter; the bytes past the
// fragment are overwritten by the next write or fall outside the line.

// fragSize is the block a frag is written as (its longest text plus padding).
const fragSize = 32

// frag is a constant fragment of the audit line (a key with its
// punctuation) pre-split into the little-endian words it is stored as.
type frag struct {
	w [fragSize / 8]uint64
	n int
}

// newFrag makes the frag of s (at most fragSize bytes). Not inlined: it
// runs once per fragment at start-up, and twenty inlined copies would cost
// kilobytes of the module's size budget.
//
//go:noinline
func newFrag(s string) frag {
	if len(s) > fragSize {
		panic("dicomgate: audit fragment longer than fragSize: " + s)
	}
	var b [fragSize]byte
	copy(b[:], s)
	var f frag
	for i := range f.w {
		// loaded the way putFrag stores it, so byte order does not matter
		f.w[i] = *(*uint64)(unsafe.Pointer(&b[i*8]))
	}
	f.n = len(s)
	return f
}

// putFrag writes f at w[n:] as four word stores (no branch, no loop).
func putFrag(w []byte, n int, f *frag) int {
	d := w[n : n+fragSize]
	p := unsafe.Pointer(&d[0])
	*(*uint64)(p) = f.w[0]
	*(*uint64)(unsafe.Add(p, 8)) = f.w[1]
	*(*uint64)(unsafe.Add(p, 16)) = f.w[2]
	*(*uint64)(unsafe.Add(p, 24)) = f.w[3]
	return n + f.n
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
