package pdu

// AssociateRJ is a decoded A-ASSOCIATE-RJ PDU (type 0x03, always 10 bytes).
type AssociateRJ struct {
	// Result is RJResultPermanent or RJResultTransient.
	Result RJResult
	// Source is the service user (1) or one of the service provider's
	// functions (2 ACSE, 3 presentation).
	Source RJSource
	// Reason is the reason/diagnostic; its meaning depends on Source (e.g.
	// source 1 reason 7 = called-AE-title-not-recognized): see Diagnostic.
	Reason RJReason

	hdrReserved uint8
	reserved    uint8 // byte 6
}

// ReleaseRQ is an A-RELEASE-RQ PDU (type 0x05, always 10 bytes).
type ReleaseRQ struct {
	// Reserved are bytes 6-9 as received (sent as zero, never tested).
	Reserved    [4]byte
	hdrReserved uint8
}

// ReleaseRP is an A-RELEASE-RP PDU (type 0x06, always 10 bytes).
type ReleaseRP struct {
	// Reserved are bytes 6-9 as received (sent as zero, never tested).
	Reserved    [4]byte
	hdrReserved uint8
}

// Abort is an A-ABORT PDU (type 0x07, always 10 bytes).
type Abort struct {
	// Source is AbortSourceServiceUser (0) or AbortSourceServiceProvider
	// (2).
	Source AbortSource
	// Reason is meaningful for a service-provider abort only (an
	// AbortReason constant); a service user sends 0.
	Reason AbortReason
	// Reserved are bytes 6-7 as received.
	Reserved    [2]byte
	hdrReserved uint8
}

// PDataTF is a decoded P-DATA-TF PDU (type 0x04).
type PDataTF struct {
	// PDVs are the presentation data value items in wire order. Decoding
	// into the same value again reuses the slice.
	PDVs        []PDV
	hdrReserved uint8
}

// PDV is one presentation data value item of a P-DATA-TF.
type PDV struct {
	// ContextID is the presentation context ID the fragment belongs to.
	ContextID uint8
	// MessageControlHeader: bit 0 set = command fragment, clear = data-set
	// fragment; bit 1 set = last fragment of that command or data set.
	MessageControlHeader uint8
	// Data is the message fragment; it aliases the decoded buffer (its
	// capacity is clipped so appending to it never overwrites the input).
	Data []byte
}

// IsCommand reports whether the PDV carries a command-set fragment.
func (p PDV) IsCommand() bool { return p.MessageControlHeader&0x01 != 0 }

// IsLast reports whether the PDV is the last fragment of its command set or
// data set.
func (p PDV) IsLast() bool { return p.MessageControlHeader&0x02 != 0 }

// Message control header bits.
const (
	// MCHCommand marks a command-set fragment.
	MCHCommand uint8 = 0x01
	// MCHLast marks the last fragment of a command set or data set.
	MCHLast uint8 = 0x02
)
