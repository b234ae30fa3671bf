package pdu

import (
	"encoding/binary"
	"unicode/utf8"
)

// Ambiguity checks of A-ASSOCIATE-RQ decoding.
//
// A gateway that decides by the RQ must read every field exactly as the
// acceptor behind it will. Where real stacks read a field differently from
// this decoder (or from each other), DecodeAssociateRQ refuses the PDU with
// an *Error matching ErrAmbiguous (and ErrInvalid) unless
// Decoder.AllowAmbiguous is set. The readings these checks are built on
// (DCMTK 3.6.7, dcmnet/libsrc/dulparse.cc parseAssociate, parseSubItem,
// parseUserInfo; dulfsm.cc AE_6_ExamineAssociateRQ; dcuserid.cc
// UserIdentityNegotiationSubItemRQ::parseFromBuffer; pynetdicom pdu.py and
// pdu_items.py) are listed in docs/SECURITY.md, "Refused ambiguous inputs".
//
// Invariant: a value this file accepts reads the same in this decoder, in
// dcmtk and in pynetdicom: an accepted AE title field holds only printable
// ASCII without backslash, starts with a non-space character and is padded
// with spaces only, so TrimAETitle, dcmtk (strncpy to the first NUL, trailing
// spaces trimmed) and pynetdicom (str.strip) all read the same title; an
// accepted UID holds only digits and dots (after one trailing NUL that all
// three strip), so no reader can cut it short.

// The SWAR constants: every byte 0x01, every byte's high bit, every byte 0x7f.
const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
	swarLow7 = 0x7f7f7f7f7f7f7f7f
)

// swarNotEq returns the word whose byte i has its high bit set when byte i
// of w differs from c. w must have no byte with its high bit set (then no
// sum carries into the next byte).
func swarNotEq(w uint64, c byte) uint64 {
	return ((w ^ uint64(c)*swarOnes) + swarLow7) & swarHigh
}

// swarPack gathers the high bits of the 8 bytes of h (byte i of a
// little-endian load at bit 8i+7) into bits 0-7 (byte i at bit i). The
// multiplication places every product term at a distinct bit, so nothing
// carries.
func swarPack(h uint64) uint64 {
	return ((h >> 7) * 0x0102040810204080) >> 56
}

// aeWordOK reports whether all 8 bytes of w (a little-endian load of an AE
// title field) are 0x20-0x7e and not a backslash. A byte at or above 0x80
// fails through ^w; only then could a sum carry into the next byte, which
// cannot turn the failed verdict into a pass.
func aeWordOK(w uint64) bool {
	ge20 := w + (0x80-0x20)*swarOnes // high bit: byte >= 0x20
	ge7f := w + (0x80-0x7f)*swarOnes // high bit: byte >= 0x7f
	return ^w&ge20&^ge7f&swarNotEq(w, '\\')&swarHigh == swarHigh
}

// aeFieldOK reports whether the 16-byte AE title field f is unambiguous:
// printable ASCII without backslash (no NUL, no control character, which
// also excludes NUL padding), and a first byte that is not a space (dcmtk
// keeps leading spaces, pynetdicom and TrimAETitle drop them; it also
// excludes a field of only spaces).
func aeFieldOK(f []byte) bool {
	if len(f) != AETitleLen {
		return false
	}
	return f[0] != ' ' && aeWordOK(binary.LittleEndian.Uint64(f[0:8])) && aeWordOK(binary.LittleEndian.Uint64(f[8:16]))
}

// aeFieldError describes why the AE title field f at off (named field) is
// ambiguous. It is called only when aeFieldOK(f) is false.
//
//go:noinline
func aeFieldError(f []byte, off int, field string) error {
	allSpace := true
	for _, c := range f {
		allSpace = allSpace && c == ' '
	}
	if allSpace {
		return newErr(off, field, ErrAmbiguous, "only spaces (PS3.5: an AE title needs a non-space character)")
	}
	for i, c := range f {
		switch {
		case i == 0 && c == ' ':
			return newErr(off, field, ErrAmbiguous,
				"leading space: dcmtk keeps leading spaces, other stacks drop them (send the title left-aligned, padded with trailing spaces)")
		case c == 0:
			return newErr(off+i, field, ErrAmbiguous, "NUL at position "+itoa(i)+
				": dcmtk reads the title only up to the first NUL, other stacks keep it (pad AE titles with spaces)")
		case c == '\\':
			return newErr(off+i, field, ErrAmbiguous, "backslash at position "+itoa(i)+" (PS3.5 excludes it from AE titles)")
		case c < 0x20 || c > 0x7e:
			return newErr(off+i, field, ErrAmbiguous, "byte "+hex8(c)+" at position "+itoa(i)+
				" is not printable ASCII 0x20-0x7e (PS3.5 AE: default character repertoire, no control characters)")
		}
	}
	return newErr(off, field, ErrAmbiguous, "not a valid AE title field") // unreachable when aeFieldOK(f) is false
}

// uidOK reports whether b is a UID by PS3.5 §9.1: 1-64 characters, only
// digits and dots, no empty component, no component with a leading zero
// (a component "0" is allowed). It reads 8 bytes at a time (a trip through
// the loop per byte is what a Wasm guest pays most for), with the word
// checks written out in the loop (a call per word cost more than the
// checks); TestUIDOKMatchesNaiveRule and FuzzUIDOK check it against the
// byte-by-byte rule.
func uidOK(b []byte) bool {
	n := len(b)
	if n == 0 || n > maxUIDLen {
		return false
	}
	// Most UIDs on the wire start with the DICOM root "1.2.840.10008.":
	// b is a UID exactly when what follows that prefix (which ends with a
	// dot) is one, so only the rest is checked. Two overlapping loads
	// compare the 14-byte prefix.
	full := b // b stays a suffix of full
	if n > len(dicomRoot) && binary.LittleEndian.Uint64(b) == dicomRoot0 && binary.LittleEndian.Uint64(b[6:]) == dicomRoot6 {
		b = b[len(dicomRoot):]
		n = len(b)
	}
	var dots, zeros, bad uint64 // bit i: b[i] is '.' / '0'; bad: some high bit marks a wrong byte
	for i := 0; i < n; i += 8 {
		var w uint64
		if r := n - i; r >= 8 {
			w = binary.LittleEndian.Uint64(b[i:])
		} else {
			// The last r bytes at the low end of w (one load of the last 8
			// bytes of full, which b ends with, when there are 8), the
			// bytes above them '1' (a digit that is neither '.' nor '0':
			// they pass unnoticed).
			if f := len(full); f >= 8 {
				w = binary.LittleEndian.Uint64(full[f-8:]) >> (8 * (8 - r))
			} else {
				for j := n - 1; j >= 0; j-- {
					w = w<<8 | uint64(b[j])
				}
			}
			w |= 0x3131313131313131 &^ (1<<(8*r) - 1)
		}
		// A byte with its high bit set is wrong; only then can a sum below
		// carry into the next byte, and the verdict is false anyway.
		ge2e := w + (0x80-0x2e)*swarOnes // high bit: byte >= '.'
		ge3a := w + (0x80-0x3a)*swarOnes // high bit: byte > '9'
		bad |= (w | ^ge2e | ge3a | (swarNotEq(w, '/') ^ swarHigh)) & swarHigh
		dots |= swarPack(swarNotEq(w, '.')^swarHigh) << i
		zeros |= swarPack(swarNotEq(w, '0')^swarHigh) << i
	}
	last := uint64(1) << (n - 1)
	switch {
	case bad != 0:
		return false
	case dots&1 != 0, dots&last != 0, dots&(dots>>1) != 0:
		return false // empty component
	case zeros&(dots<<1|1)&^(dots>>1)&(last-1) != 0:
		return false // a component starting with '0' and going on
	}
	return true
}

// dicomRoot is the UID root of the DICOM standard; dicomRoot0 and
// dicomRoot6 are its bytes 0-7 ("1.2.840.") and 6-13 ("0.10008.") as
// little-endian loads (TestDICOMRootConstants checks them).
const (
	dicomRoot  = "1.2.840.10008."
	dicomRoot0 = 0x2e3034382e322e31
	dicomRoot6 = 0x2e38303030312e30
)

// maxUIDLen is the longest UID PS3.5 allows (dcmtk refuses longer
// sub-items, or cuts role selection UIDs to this length).
const maxUIDLen = 64

// uidAmbError builds the error for the UID of the (sub-)item at off, named
// field (what names the UID inside it, e.g. "context 3 abstract syntax"),
// which is not a PS3.5 UID after one trailing NUL was stripped.
//
//go:noinline
func uidAmbError(off int, field, what string, uid []byte) error {
	msg := uidProblem(uid)
	for i, c := range uid {
		if c == 0 {
			msg = "UID " + quote(uid) + " has a NUL at position " + itoa(i) +
				": dcmtk reads it only up to the NUL, this decoder would read all of it"
			break
		}
	}
	if what != "" {
		msg = what + ": " + msg
	}
	return newErr(off, field, ErrAmbiguous, msg+" (PS3.5: 1-64 digits and dots, no leading zeros, at most one trailing NUL)")
}

// checkUIDAmb checks the UID of the sub-item at sub (type typ).
func checkUIDAmb(sub int, typ uint8, uid []byte) error {
	if uidOK(uid) {
		return nil
	}
	return uidAmbError(sub, itemName(typ), "", uid)
}

// usernameProblem describes why the username of a type 1 or 2 user
// identity is ambiguous, or returns "". A PACS reading it as a C string
// stops at a NUL; one that trims whitespace drops leading and trailing
// spaces and control characters; PS3.7 D.3.3.7 makes it a UTF-8 string.
//
//go:noinline
func usernameProblem(name []byte) string {
	for i, c := range name {
		if c < 0x20 || c == 0x7f {
			return "byte " + hex8(c) + " at position " + itoa(i) +
				" of the username is a control character (a PACS reading a C string stops at a NUL, one that trims drops the others)"
		}
	}
	if len(name) > 0 && (name[0] == ' ' || name[len(name)-1] == ' ') {
		return "the username " + quote(name) + " has a leading or trailing space (a PACS that trims reads another name)"
	}
	if !utf8.Valid(name) {
		return "the username " + quote(name) + " is not UTF-8 (PS3.7 D.3.3.7)"
	}
	return ""
}

// checkUserIdentityAmb applies the ambiguity rules to the user identity
// sub-item at sub: a known type (1-5); no secondary field unless type 2
// (dcmtk consumes the secondary field only for type 2 and parses its bytes
// as further sub-items otherwise); a username without NUL, control
// characters, surrounding spaces or invalid UTF-8.
//
//go:noinline
func checkUserIdentityAmb(sub int, ui *UserIdentity) error {
	name := itemName(ItemUserIdentityRQ)
	switch {
	case ui.Type < UserIdentityUsername || ui.Type > UserIdentityJWT:
		return newErr(sub+4, name, ErrAmbiguous, "user identity type "+itoa(int(ui.Type))+
			" is not 1-5 (PS3.7 D.3.3.7; stacks differ on unknown types)")
	case ui.Type != UserIdentityUsernamePasscode && len(ui.Secondary) != 0:
		return newErr(sub+4, name, ErrAmbiguous, "type "+itoa(int(ui.Type))+" carries a "+itoa(len(ui.Secondary))+
			"-byte secondary field: only type 2 has one, and dcmtk parses those bytes as further sub-items")
	case ui.Type <= UserIdentityUsernamePasscode:
		if msg := usernameProblem(ui.Primary); msg != "" {
			return newErr(sub+8, name, ErrAmbiguous, msg)
		}
	}
	return nil
}

// checkVersionNameAmb checks an implementation version name: at most 16
// bytes (dcmtk keeps 16 and drops the rest) of printable ASCII (dcmtk reads
// it as a C string).
//
//go:noinline
func checkVersionNameAmb(sub int, v []byte) error {
	name := itemName(ItemImplementationVersion)
	if len(v) > 16 {
		return newErr(sub, name, ErrAmbiguous, "length "+itoa(len(v))+" is over 16 characters (dcmtk keeps only the first 16)")
	}
	for i, c := range v {
		if c < 0x20 || c > 0x7e {
			return newErr(sub+4+i, name, ErrAmbiguous, "byte "+hex8(c)+" at position "+itoa(i)+
				" is not printable ASCII 0x20-0x7e (dcmtk reads the name only up to a NUL)")
		}
	}
	return nil
}

// ambSubItemError reports a user-information sub-item at sub that stacks
// read differently: kind is ambRepeated (a second singleton: dcmtk keeps
// the last, pynetdicom the first), ambLen4 (0x51/0x53 of length n, not 4:
// dcmtk reads 4 bytes anyway) or ambUIDResponse (0x59 in an RQ: dcmtk parses
// it as a user identity request).
//
//go:noinline
func ambSubItemError(sub int, typ uint8, kind, n int) error {
	switch kind {
	case ambRepeated:
		return newErr(sub, itemName(typ), ErrAmbiguous, "repeated sub-item: dcmtk uses the last one, pynetdicom the first (send it once)")
	case ambLen4:
		return newErr(sub, itemName(typ), ErrAmbiguous, "length "+itoa(n)+" is not 4 (dcmtk reads 4 bytes regardless)")
	}
	return newErr(sub, itemName(typ), ErrAmbiguous, "a user identity response in an A-ASSOCIATE-RQ: dcmtk parses it as a user identity request")
}

// Kinds of ambSubItemError.
const (
	ambRepeated = iota
	ambLen4
	ambUIDResponse
)

// ambItemError reports a variable item of an A-ASSOCIATE-RQ at off that
// stacks read differently: a second application context or user
// information item (dcmtk keeps the last, pynetdicom the first), or a 0x21
// item (dcmtk parses it as a proposed presentation context; this decoder
// and pynetdicom do not).
//
//go:noinline
func ambItemError(off int, typ uint8) error {
	if typ == ItemPresentationContextAC {
		return newErr(off, itemName(typ), ErrAmbiguous, "an A-ASSOCIATE-AC presentation context in an A-ASSOCIATE-RQ: dcmtk reads it as a proposed context")
	}
	return newErr(off, itemName(typ), ErrAmbiguous, "repeated item: dcmtk uses the last one, pynetdicom the first (send it once)")
}

// noAbstractSyntaxError reports a presentation context at off without an
// abstract syntax sub-item (PS3.8 §9.3.2.2 requires exactly one).
//
//go:noinline
func noAbstractSyntaxError(off int, id uint8) error {
	return newErr(off, itemName(ItemPresentationContextRQ), ErrAmbiguous,
		"context "+itoa(int(id))+" has no abstract syntax sub-item 0x30 (PS3.8 requires exactly one)")
}

// printable reports whether every byte of v is printable ASCII 0x20-0x7e.
func printable(v []byte) bool {
	for _, c := range v {
		if c-0x20 > 0x7e-0x20 {
			return false
		}
	}
	return true
}
