package pdu

// AssociateRJ is a decoded A-ASSOCIATE-RJ PDU (type 0x03, always 10 bytes).
type AssociateRJ struct {
	// Result is 1 rejected-permanent or 2 rejected-transient.
	Result uint8
	// Source is 1 service-user, 2 service-provider (ACSE related) or 3
	// service-provider (presentation related).
	Source uint8
	// Reason is the reason/diagnostic; its meaning depends on Source (e.g.
	// source 1 reason 7 = called AE title not recognized).
	Reason uint8

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
	// Source is 0 service-user initiated or 2 service-provider initiated.
	Source uint8
	// Reason is meaningful for source 2 only: 0 not specified, 1
	// unrecognized PDU, 2 unexpected PDU, 4 unrecognized PDU parameter, 5
	// unexpected PDU parameter, 6 invalid PDU parameter value.
	Reason uint8
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
