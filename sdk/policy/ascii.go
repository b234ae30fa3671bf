package policy

// ASCII-only string helpers. Everything they are used on is ASCII by the
// time it gets here (validated AE titles, host and DNS names, JSON number
// literals), and DNS names compare case-insensitively in ASCII only
// (RFC 4343). They replace the Unicode-aware strings functions, whose
// case tables would otherwise be linked into the Wasm module.

// asciiUpper returns s with a-z mapped to A-Z (s itself when unchanged).
func asciiUpper(s string) string { return mapASCII(s, 'a', 'z', 'A') }

// asciiLower returns s with A-Z mapped to a-z (s itself when unchanged).
func asciiLower(s string) string { return mapASCII(s, 'A', 'Z', 'a') }

// mapASCII maps every byte in [lo, hi] to the same offset from to.
func mapASCII(s string, lo, hi, to byte) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= lo && c <= hi {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= lo && c <= hi {
					b[j] = c - lo + to
				}
			}
			return string(b)
		}
	}
	return s
}

// asciiEqualFold reports whether a and b are equal with ASCII letters
// compared case-insensitively; other bytes must be identical.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// containsByte reports whether s contains any byte of set (ASCII).
func containsByte(s, set string) bool {
	for i := 0; i < len(s); i++ {
		for j := 0; j < len(set); j++ {
			if s[i] == set[j] {
				return true
			}
		}
	}
	return false
}

// cutByte splits s at the first sep: before, after, and whether sep was
// found (after is "" when not).
func cutByte(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
