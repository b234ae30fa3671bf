// Package pdu decodes and encodes DICOM Upper Layer protocol data units
// (DICOM PS3.8 §9.3) without doing any I/O.
//
// The package is built for a proxy that sees a byte stream in arbitrary
// pieces: [Framer.Peek] looks at the bytes buffered so far and reports whether
// one complete PDU is present (peek-then-commit: nothing is consumed or
// copied), and the Decode functions fill caller-owned values that can be
// reused across calls without allocating in steady state. Decoded byte slices
// (AE titles, UIDs, user identity fields, and the reserved bytes of an
// A-ASSOCIATE-RQ/AC that AppendEncode reproduces) alias the input buffer: they
// are valid only while that buffer is neither modified nor reused.
//
// # Framing
//
// Append received bytes to a buffer that starts at a PDU boundary and call
// Peek: need > 0 asks for more bytes; need == 0 means buf[:h.Total()] is one
// PDU. The header is known after 6 bytes, so a proxy can decide (for example
// reject a 1 GiB length, or a TLS ClientHello on a plain port) before the
// body arrives. The type byte alone is checked from the first byte on.
//
// # Decoding
//
// A [Decoder] decodes exactly one whole PDU (header included) per call:
// DecodeAssociateRQ, DecodeAssociateAC, DecodeAssociateRJ, DecodePDataTF,
// DecodeReleaseRQ, DecodeReleaseRP and DecodeAbort. By default it is as
// lenient as dcmtk (unknown items are kept, item order is free, reserved
// fields are not tested, one trailing NUL of a UID is stripped) but it always
// rejects lengths that do not fit their container; Decoder.Strict adds the
// rules of the standard that real stacks do not enforce (see docs/internals.md, "PDU decoder leniency").
// AE titles are compared after [TrimAETitle] (CalledAETitle, CallingAETitle);
// [ValidAETitle] checks the PS3.5 character rules.
//
// Where allocation does not matter (tools, tests, a demo acceptor),
// [Decode] or [Decoder.Decode] decodes a PDU of any type into a new value
// and returns it as a [PDU]; the caller switches on its dynamic type
// (*AssociateRQ, *AssociateAC, *AssociateRJ, *PDataTF, *ReleaseRQ,
// *ReleaseRP, *Abort) instead of the type byte.
//
// The coded fields are typed: [RJResult], [RJSource] and [RJReason] of an
// A-ASSOCIATE-RJ (a reason means something only with its source:
// [RJDiagnostic] names the pair), [AbortSource] and [AbortReason] of an
// A-ABORT, [PCResult] of an A-ASSOCIATE-AC presentation context. Their
// String methods give the PS3.8 names.
//
// # Encoding
//
// Every PDU type has AppendEncode(dst) []byte. A decoded value re-encodes
// byte for byte (reserved fields, item order, unknown items and NUL padding
// are remembered), so a proxy can decode, edit and forward. For the common
// rewrite of an AE title, [PadAETitle] edits the PDU bytes in place instead.
//
// # DIMSE
//
// [ReadCommandSet] reads the group 0000 command set carried in command PDVs
// (implicit VR little endian) into a [CommandSet]; [CommandFieldName] names
// its CommandField.
//
// # Errors
//
// Every error is an [*Error] naming the byte offset (from the start of the
// PDU) and the field, and wrapping one sentinel for errors.Is: [ErrTruncated],
// [ErrInvalid], [ErrTooLarge], [ErrUnknownType], [ErrTLS] or [ErrHTTP] (both
// also match [ErrNotDICOM]). Nothing in this package panics on any input.
package pdu

// Type is the PDU type byte at offset 0 of every PDU.
type Type uint8

// The seven PDU types of DICOM PS3.8 §9.3.
const (
	TypeAssociateRQ Type = 0x01
	TypeAssociateAC Type = 0x02
	TypeAssociateRJ Type = 0x03
	TypePDataTF     Type = 0x04
	TypeReleaseRQ   Type = 0x05
	TypeReleaseRP   Type = 0x06
	TypeAbort       Type = 0x07
)

// HeaderLen is the size of the fixed PDU header: type, reserved, 32-bit length.
const HeaderLen = 6

// DefaultMaxPDULength is the largest PDU length field accepted by default
// (1 MiB, the cap dcmtk applies to A-ASSOCIATE PDUs).
const DefaultMaxPDULength = 1 << 20

// Byte offsets inside an A-ASSOCIATE-RQ/AC PDU, counted from the first byte
// of the PDU header.
const (
	OffsetProtocolVersion = 6
	OffsetCalledAETitle   = 10
	OffsetCallingAETitle  = 26
	OffsetVariableItems   = 74
	// AETitleLen is the fixed width of an AE title field on the wire.
	AETitleLen = 16
)

// Header is the 6-byte header that starts every PDU.
type Header struct {
	// Type is the PDU type byte.
	Type Type
	// Length is the PDU length field: the number of bytes after the header.
	Length uint32
}

// Total returns the size of the whole PDU, header included.
func (h Header) Total() int { return HeaderLen + int(h.Length) }

// Item types of the variable part of A-ASSOCIATE-RQ/AC PDUs (PS3.8 §9.3.2-3,
// Annex D).
const (
	ItemApplicationContext      uint8 = 0x10
	ItemPresentationContextRQ   uint8 = 0x20
	ItemPresentationContextAC   uint8 = 0x21
	ItemAbstractSyntax          uint8 = 0x30
	ItemTransferSyntax          uint8 = 0x40
	ItemUserInformation         uint8 = 0x50
	ItemMaxLength               uint8 = 0x51
	ItemImplementationClassUID  uint8 = 0x52
	ItemAsyncOperationsWindow   uint8 = 0x53
	ItemRoleSelection           uint8 = 0x54
	ItemImplementationVersion   uint8 = 0x55
	ItemSOPClassExtendedNeg     uint8 = 0x56
	ItemSOPClassCommonExtendNeg uint8 = 0x57
	ItemUserIdentityRQ          uint8 = 0x58
	ItemUserIdentityAC          uint8 = 0x59
)

// User identity types of the 0x58 sub-item.
const (
	UserIdentityUsername         uint8 = 1
	UserIdentityUsernamePasscode uint8 = 2
	UserIdentityKerberos         uint8 = 3
	UserIdentitySAML             uint8 = 4
	UserIdentityJWT              uint8 = 5
)
