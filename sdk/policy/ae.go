package policy

import "unsafe"

// Wildcards inside a compiled glob. Both are control characters, which can
// never occur in an AE title, so a literal '*' or '?' (written \* or \? in
// the configuration) stays itself.
const (
	wStar byte = 0x01 // any run of characters, including none
	wOne  byte = 0x02 // exactly one character
)

// aeMaxLen is the longest AE title (PS3.5 AE value representation).
const aeMaxLen = 16

// foldBufLen bounds the AE title length that is case-folded for the index
// and case-insensitive rules: titles on the wire are at most 16 bytes. A
// longer (hand-built) title skips the index and matches no
// case-insensitive rule.
const foldBufLen = aeMaxLen

// compileAEPattern validates one AE title pattern from the configuration and
// returns its compiled form: leading and trailing spaces trimmed, wildcards
// encoded as wStar/wOne, upper-cased when fold is set. msg is non-empty when
// the pattern is invalid and says what is allowed.
func compileAEPattern(s string, fold bool) (pat string, glob bool, msg string) {
	t := trimSpaces(s)
	if t == "" {
		if s == "" {
			return "", false, `is empty; an AE title pattern is 1 to 16 characters, "*" matches any title`
		}
		return "", false, quote(s) + " is only spaces; an AE title pattern is 1 to 16 characters, \"*\" matches any title"
	}
	out := make([]byte, 0, len(t))
	chars := 0
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '\\':
			if i+1 < len(t) && (t[i+1] == '*' || t[i+1] == '?') {
				i++
				out = append(out, t[i])
				chars++
				continue
			}
			return "", false, quote(s) + `: a backslash is only allowed before * or ? (to match them literally); AE titles cannot contain a backslash`
		case c == '*':
			glob = true
			if len(out) > 0 && out[len(out)-1] == wStar {
				continue // "**" is "*"
			}
			out = append(out, wStar)
		case c == '?':
			glob = true
			out = append(out, wOne)
			chars++
		case c < 0x20 || c > 0x7e:
			return "", false, quote(s) + " contains the byte 0x" + hex2(c) + "; AE titles allow printable ASCII (0x20-0x7E) except backslash"
		default:
			if fold {
				c = upper(c)
			}
			out = append(out, c)
			chars++
		}
	}
	if chars > aeMaxLen && !glob {
		return "", false, quote(s) + " has " + itoa(chars) + " characters; AE titles have at most 16, so it can never match"
	}
	if chars > aeMaxLen {
		return "", false, quote(s) + " needs at least " + itoa(chars) + " characters but AE titles have at most 16, so it can never match"
	}
	return string(out), glob, ""
}

// validateAETitle checks a literal AE title used as a rewrite target.
func validateAETitle(s string) string {
	switch {
	case s == "":
		return "is empty; an AE title is 1 to 16 characters"
	case len(s) > aeMaxLen:
		return quote(s) + " has " + itoa(len(s)) + " characters; AE titles have at most 16"
	case trimSpaces(s) == "":
		return quote(s) + " is only spaces; an AE title needs at least one non-space character"
	case s[0] == ' ' || s[len(s)-1] == ' ':
		return quote(s) + " has leading or trailing spaces, which peers strip or treat inconsistently; remove them"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '\\' {
			return quote(s) + " contains the byte 0x" + hex2(c) + "; AE titles allow printable ASCII (0x20-0x7E) except backslash"
		}
	}
	return ""
}

// literalPrefix returns the part of a compiled glob before its first
// wildcard.
func literalPrefix(pat string) string {
	for i := 0; i < len(pat); i++ {
		if pat[i] == wStar || pat[i] == wOne {
			return pat[:i]
		}
	}
	return pat
}

// literalSuffix returns the part of a compiled glob after its last
// wildcard.
func literalSuffix(pat string) string {
	for i := len(pat) - 1; i >= 0; i-- {
		if pat[i] == wStar || pat[i] == wOne {
			return pat[i+1:]
		}
	}
	return pat
}

// globMatch reports whether the compiled glob pat matches all of s. It runs
// in O(len(pat)*len(s)) worst case without allocating (single-star
// backtracking: a later '*' supersedes an earlier one).
func globMatch(pat string, s []byte) bool {
	px, sx := 0, 0
	nextPx, nextSx := 0, 0
	for px < len(pat) || sx < len(s) {
		if px < len(pat) {
			switch c := pat[px]; c {
			case wStar:
				nextPx, nextSx = px, sx+1
				px++
				continue
			case wOne:
				if sx < len(s) {
					px++
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if 0 < nextSx && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

// upper upper-cases one ASCII byte.
func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// trimSpaces removes leading and trailing ASCII spaces (only 0x20: AE titles
// are space padded, other white space is significant).
func trimSpaces(s string) string {
	i, j := 0, len(s)
	for i < j && s[i] == ' ' {
		i++
	}
	for j > i && s[j-1] == ' ' {
		j--
	}
	return s[i:j]
}

// foldInto upper-cases b into buf and returns the folded slice, or nil when
// b does not fit (no valid AE title is that long).
//
// Titles of 4 bytes or more are folded a word at a time (the last word
// overlapping the one before; folding is idempotent): compiled to Wasm, each
// iteration of a byte loop costs a trip through Go's block dispatcher, and
// this runs twice per association.
func foldInto(buf *[foldBufLen]byte, b []byte) []byte {
	n := len(b)
	if n > len(buf) {
		return nil
	}
	dst := unsafe.Pointer(buf)
	switch {
	case n >= 8:
		src := unsafe.Pointer(unsafe.SliceData(b))
		for i := 0; i < n-8; i += 8 {
			*(*uint64)(unsafe.Add(dst, i)) = upper8(*(*uint64)(unsafe.Add(src, i)))
		}
		*(*uint64)(unsafe.Add(dst, n-8)) = upper8(*(*uint64)(unsafe.Add(src, n-8)))
	case n >= 4:
		src := unsafe.Pointer(unsafe.SliceData(b))
		*(*uint32)(dst) = upper4(*(*uint32)(src))
		*(*uint32)(unsafe.Add(dst, n-4)) = upper4(*(*uint32)(unsafe.Add(src, n-4)))
	default:
		for i, c := range b {
			buf[i] = upper(c)
		}
	}
	return buf[:n]
}

// upper8 applies upper to each byte of x: bytes 'a'-'z' lose 0x20, all
// others (including non-ASCII) are kept. No addition carries across bytes.
func upper8(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	h := x &^ highs                  // each byte's low 7 bits
	geA := h + (0x80-'a')*ones       // high bit: byte ≥ 'a'
	gtZ := h + (0x80-'z'-1)*ones     // high bit: byte > 'z'
	lower := geA &^ gtZ &^ x & highs // and the byte is ASCII
	return x - lower>>2
}

// upper4 is upper8 for 4 bytes.
func upper4(x uint32) uint32 {
	const ones, highs = 0x01010101, 0x80808080
	h := x &^ highs
	geA := h + (0x80-'a')*ones
	gtZ := h + (0x80-'z'-1)*ones
	lower := geA &^ gtZ &^ x & highs
	return x - lower>>2
}

// aeSet is the compiled AE title condition of one rule (calledAETitles or
// callingAETitles): exact titles and globs, any of which may match.
type aeSet struct {
	fold     bool
	any      bool // a bare "*" was listed: every title matches
	exact    []string
	exactMap map[string]struct{} // set when there are many exact titles
	globs    []string
	source   []string // the patterns as written, for Summary and Explain
}

// aeSetMapThreshold is the number of exact titles above which a map beats a
// linear scan.
const aeSetMapThreshold = 8

// match reports whether the trimmed title v (and its upper-cased copy vUp,
// nil if unavailable) satisfies the set.
func (s *aeSet) match(v, vUp []byte) bool {
	if s.any {
		return true
	}
	in := v
	if s.fold {
		if vUp == nil {
			return false
		}
		in = vUp
	}
	if s.exactMap != nil {
		if _, ok := s.exactMap[string(in)]; ok {
			return true
		}
	} else {
		for _, e := range s.exact {
			if e == string(in) {
				return true
			}
		}
	}
	for _, g := range s.globs {
		if globMatch(g, in) {
			return true
		}
	}
	return false
}

// whichMatch returns the configured pattern that matches, for Explain.
func (s *aeSet) whichMatch(v, vUp []byte) string {
	for _, src := range s.source {
		one := aeSet{fold: s.fold}
		pat, glob, msg := compileAEPattern(src, s.fold)
		if msg != "" {
			continue
		}
		if pat == string(wStar) {
			one.any = true
		} else if glob {
			one.globs = []string{pat}
		} else {
			one.exact = []string{pat}
		}
		if one.match(v, vUp) {
			return src
		}
	}
	return ""
}

// hex2 renders a byte as two lower-case hex digits.
func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}
