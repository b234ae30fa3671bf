package pdu

import (
	"errors"
	"strconv"
)

// Sentinel errors. Every error returned by this package's decoders is an
// *Error whose Err field is one of these, so callers can classify with
// errors.Is without parsing messages.
var (
	// ErrNeedMore reports that a buffer does not yet hold a complete PDU.
	// Framer.Peek never returns it (it reports need > 0 instead); Framer.Next
	// returns it bare so that callers can loop without allocating.
	ErrNeedMore = errors.New("need more data")
	// ErrUnknownType reports a PDU type byte other than 0x01-0x07.
	ErrUnknownType = errors.New("unknown PDU type")
	// ErrTooLarge reports a PDU length field above the configured maximum.
	ErrTooLarge = errors.New("PDU too large")
	// ErrTruncated reports a length field that runs past the end of its
	// container (PDU, item or sub-item) or of the buffer.
	ErrTruncated = errors.New("truncated")
	// ErrInvalid reports a value that breaks a DICOM PS3.8 rule (wrong fixed
	// length, bad reserved bits, items that do not tile their container, and
	// in strict mode everything listed in Decoder.Strict).
	ErrInvalid = errors.New("invalid")
	// ErrAmbiguous reports an A-ASSOCIATE-RQ field that DICOM stacks read
	// differently (a NUL inside an AE title or UID, a repeated user identity,
	// ...; see Decoder.AllowAmbiguous). It matches ErrInvalid too.
	ErrAmbiguous error = invalidKind("ambiguous: DICOM stacks read this field differently")
	// ErrNotDICOM reports bytes that are not DICOM Upper Layer traffic at all.
	// ErrTLS and ErrHTTP are more specific and both match ErrNotDICOM.
	ErrNotDICOM = errors.New("not DICOM")
	// ErrTLS reports a TLS record where a PDU was expected: the peer speaks
	// DICOM over TLS to a plain listener (or TLS was not terminated first).
	ErrTLS error = notDICOM("looks like a TLS record")
	// ErrHTTP reports an HTTP request line where a PDU was expected.
	ErrHTTP error = notDICOM("looks like HTTP")
)

// notDICOM is a sentinel that also matches ErrNotDICOM.
type notDICOM string

// Error returns the description, e.g. "looks like a TLS record".
func (e notDICOM) Error() string { return string(e) }

// Is makes errors.Is(ErrTLS, ErrNotDICOM) true.
func (e notDICOM) Is(target error) bool { return target == ErrNotDICOM }

// invalidKind is a sentinel that also matches ErrInvalid.
type invalidKind string

// Error returns the description.
func (e invalidKind) Error() string { return string(e) }

// Is makes errors.Is(ErrAmbiguous, ErrInvalid) true.
func (e invalidKind) Is(target error) bool { return target == ErrInvalid }

// Error is the error type of this package. It names the byte offset (from the
// first byte of the PDU, or of the command set for ReadCommandSet) and the
// field at which decoding failed.
type Error struct {
	// Offset is the byte offset of the offending field; negative when the
	// error is not tied to a position (for example ValidAETitle).
	Offset int
	// Field names the PDU, item or element, e.g.
	// "presentation context item 0x20".
	Field string
	// Err is the sentinel class: ErrTruncated, ErrInvalid, ErrAmbiguous,
	// ErrTooLarge, ErrUnknownType, ErrTLS or ErrHTTP.
	Err error
	// Msg is the human detail, e.g. "length 4660 exceeds remaining 12 bytes".
	Msg string
}

// Error formats as "pdu: offset 74: presentation context item 0x20: length
// 4660 exceeds remaining 12 bytes".
func (e *Error) Error() string {
	b := make([]byte, 0, 64+len(e.Field)+len(e.Msg))
	b = append(b, "pdu: "...)
	if e.Offset >= 0 {
		b = append(b, "offset "...)
		b = strconv.AppendInt(b, int64(e.Offset), 10)
		b = append(b, ": "...)
	}
	if e.Field != "" {
		b = append(b, e.Field...)
		b = append(b, ": "...)
	}
	if e.Msg != "" {
		b = append(b, e.Msg...)
	} else if e.Err != nil {
		b = append(b, e.Err.Error()...)
	}
	return string(b)
}

// Unwrap returns the sentinel class so errors.Is works.
func (e *Error) Unwrap() error { return e.Err }

// newErr, itoa and the hex helpers are not inlined: errors are built at
// over a hundred call sites, and inlined copies cost kilobytes of Wasm.
//
//go:noinline
func newErr(off int, field string, class error, msg string) *Error {
	return &Error{Offset: off, Field: field, Err: class, Msg: msg}
}

// itoa and hex helpers keep error construction free of fmt (smaller Wasm).
//
//go:noinline
func itoa(v int) string { return strconv.Itoa(v) }

//go:noinline
func hex8(v uint8) string {
	const digits = "0123456789abcdef"
	return string([]byte{'0', 'x', digits[v>>4], digits[v&15]})
}

//go:noinline
func hex16(v uint16) string {
	const digits = "0123456789abcdef"
	return string([]byte{'0', 'x', digits[v>>12], digits[v>>8&15], digits[v>>4&15], digits[v&15]})
}
