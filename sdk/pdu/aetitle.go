package pdu

import "unsafe"

// TrimAETitle returns title without leading spaces and without trailing
// spaces and NULs, the form policies compare (PS3.5: leading and trailing
// spaces are not significant; dcmtk also accepts NUL padding). It aliases
// title. DecodeAssociateRQ refuses AE title fields holding a NUL or a leading
// space (stacks read those differently) unless Decoder.AllowAmbiguous is
// set, so on a decoded RQ it only drops the trailing space padding.
func TrimAETitle(title []byte) []byte {
	end := len(title)
	// Trailing padding 8 bytes at a time (a wire title is 16 bytes, usually
	// padded): compiled to Wasm, every byte-loop iteration is a trip through
	// Go's block dispatcher, and the filter trims both titles of every RQ. A
	// byte is a space or a NUL exactly when c&^0x20 == 0, so the word test is
	// the byte test on all 8 bytes, in any byte order.
	for end >= 8 && *(*uint64)(unsafe.Pointer(&title[end-8]))&^0x2020202020202020 == 0 {
		end -= 8
	}
	for end > 0 && title[end-1]&^0x20 == 0 {
		end--
	}
	start := 0
	for start < end && title[start] == ' ' {
		start++
	}
	return title[start:end:end]
}

// CalledAETitle returns the called AE title, trimmed as by TrimAETitle. It
// aliases the decoded buffer.
func (rq *AssociateRQ) CalledAETitle() []byte { return TrimAETitle(rq.CalledAETitleRaw) }

// CallingAETitle returns the calling AE title, trimmed as by TrimAETitle. It
// aliases the decoded buffer.
func (rq *AssociateRQ) CallingAETitle() []byte { return TrimAETitle(rq.CallingAETitleRaw) }

// CalledAETitle returns the AC's (echoed) called AE title, trimmed as by
// TrimAETitle.
func (ac *AssociateAC) CalledAETitle() []byte { return TrimAETitle(ac.CalledAETitleRaw) }

// CallingAETitle returns the AC's (echoed) calling AE title, trimmed as by
// TrimAETitle.
func (ac *AssociateAC) CallingAETitle() []byte { return TrimAETitle(ac.CallingAETitleRaw) }

// ValidAETitle checks an AE title (already trimmed, see TrimAETitle) against
// PS3.5: 1-16 characters of printable ASCII 0x20-0x7E, no backslash, not only
// spaces. The error is an *Error matching ErrInvalid and names the offending
// byte.
func ValidAETitle(title []byte) error {
	if len(title) == 0 {
		return newErr(-1, "AE title", ErrInvalid, "empty (an AE title needs 1-16 characters)")
	}
	if len(title) > AETitleLen {
		return newErr(-1, "AE title", ErrInvalid, itoa(len(title))+" characters, at most 16 are allowed")
	}
	allSpace := true
	for i, c := range title {
		switch {
		case c == '\\':
			return newErr(-1, "AE title", ErrInvalid, "backslash at position "+itoa(i)+" is not allowed")
		case c < 0x20 || c > 0x7e:
			return newErr(-1, "AE title", ErrInvalid, "byte "+hex8(c)+" at position "+itoa(i)+" is not printable ASCII (0x20-0x7e)")
		case c != ' ':
			allSpace = false
		}
	}
	if allSpace {
		return newErr(-1, "AE title", ErrInvalid, "only spaces (an AE title needs a non-space character)")
	}
	return nil
}

// PadAETitle writes title into dst[:16] padded with spaces, the wire form of
// an AE title field (for rewriting a decoded PDU in place). A title longer
// than 16 bytes is truncated, as dcmtk does; if dst is shorter than 16 bytes
// only len(dst) bytes are written.
func PadAETitle(dst []byte, title string) {
	if len(dst) > AETitleLen {
		dst = dst[:AETitleLen]
	}
	n := copy(dst, title)
	for i := n; i < len(dst); i++ {
		dst[i] = ' '
	}
}
