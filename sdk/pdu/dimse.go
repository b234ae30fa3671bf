package pdu

import "encoding/binary"

// CommandSet is a decoded DIMSE command set (DICOM PS3.7 §9.3, §10.3): the
// group 0000 data set, always implicit VR little endian, that starts every
// DIMSE message. Byte-slice fields alias the buffer given to ReadCommandSet,
// with padding removed (UIDs: trailing NULs and spaces; AE titles: leading
// and trailing spaces). Has* flags report which numeric elements were
// present.
type CommandSet struct {
	// CommandGroupLength is (0000,0000).
	CommandGroupLength uint32
	// AffectedSOPClassUID is (0000,0002).
	AffectedSOPClassUID []byte
	// RequestedSOPClassUID is (0000,0003) (N-services).
	RequestedSOPClassUID []byte
	// CommandField is (0000,0100), e.g. 0x0030 C-ECHO-RQ; see CommandFieldName.
	CommandField uint16
	// MessageID is (0000,0110) (requests).
	MessageID uint16
	// MessageIDBeingRespondedTo is (0000,0120) (responses).
	MessageIDBeingRespondedTo uint16
	// MoveDestination is (0000,0600) (C-MOVE-RQ).
	MoveDestination []byte
	// Priority is (0000,0700): 0 medium, 1 high, 2 low.
	Priority uint16
	// CommandDataSetType is (0000,0800); 0x0101 means no data set follows.
	CommandDataSetType uint16
	// Status is (0000,0900) (responses).
	Status uint16
	// ErrorComment is (0000,0902).
	ErrorComment []byte
	// AffectedSOPInstanceUID is (0000,1000).
	AffectedSOPInstanceUID []byte
	// RequestedSOPInstanceUID is (0000,1001).
	RequestedSOPInstanceUID []byte
	// MoveOriginatorAETitle is (0000,1030) (C-STORE-RQ of a C-MOVE sub-operation).
	MoveOriginatorAETitle []byte
	// MoveOriginatorMessageID is (0000,1031).
	MoveOriginatorMessageID uint16

	// HasCommandGroupLength and the other Has* flags report whether the
	// numeric element of the same name was present.
	HasCommandGroupLength        bool
	HasCommandField              bool
	HasMessageID                 bool
	HasMessageIDBeingRespondedTo bool
	HasPriority                  bool
	HasCommandDataSetType        bool
	HasStatus                    bool
	HasMoveOriginatorMessageID   bool
}

// NoDataSet is the CommandDataSetType value meaning "no data set follows".
const NoDataSet uint16 = 0x0101

// IsResponse reports whether the command is a response (bit 15 of
// CommandField set).
func (cs *CommandSet) IsResponse() bool { return cs.CommandField&0x8000 != 0 }

// HasDataSet reports whether a data set follows the command
// (CommandDataSetType present and not 0x0101).
func (cs *CommandSet) HasDataSet() bool {
	return cs.HasCommandDataSetType && cs.CommandDataSetType != NoDataSet
}

// Name returns CommandFieldName(cs.CommandField).
func (cs *CommandSet) Name() string { return CommandFieldName(cs.CommandField) }

// ReadCommandSet decodes a complete command set b (the concatenated data of
// the command PDV fragments up to the one with the last bit) into cs,
// overwriting every field. It does not allocate except to build an error.
// Unknown group 0000 elements are skipped; an element outside group 0000, a
// value length past the end, an undefined length, or a US/UL element with the
// wrong length is an *Error (Offset counts from b[0]).
func ReadCommandSet(b []byte, cs *CommandSet) error {
	*cs = CommandSet{}
	for off := 0; off < len(b); {
		if len(b)-off < 8 {
			return newErr(off, "command set element", ErrTruncated,
				itoa(len(b)-off)+" trailing bytes cannot hold an 8-byte element header")
		}
		group := binary.LittleEndian.Uint16(b[off:])
		elem := binary.LittleEndian.Uint16(b[off+2:])
		vl := binary.LittleEndian.Uint32(b[off+4:])
		if group != 0x0000 {
			return newErr(off, "command set element", ErrInvalid,
				"tag ("+hex16(group)[2:]+","+hex16(elem)[2:]+") is not in group 0000 (a command set holds only group 0000; was a data-set fragment passed?)")
		}
		if vl == 0xffffffff {
			return newErr(off+4, tagName(elem), ErrInvalid, "undefined length is not allowed in a command set")
		}
		if uint64(vl) > uint64(len(b)-off-8) {
			return newErr(off+4, tagName(elem), ErrTruncated,
				"value length "+itoa(int(vl))+" exceeds remaining "+itoa(len(b)-off-8)+" bytes")
		}
		end := off + 8 + int(vl)
		v := b[off+8 : end : end]
		switch elem {
		case 0x0000:
			if len(v) != 4 {
				return badLen(off+4, elem, len(v), 4)
			}
			cs.CommandGroupLength, cs.HasCommandGroupLength = binary.LittleEndian.Uint32(v), true
		case 0x0002:
			cs.AffectedSOPClassUID = trimUIValue(v)
		case 0x0003:
			cs.RequestedSOPClassUID = trimUIValue(v)
		case 0x0600:
			cs.MoveDestination = TrimAETitle(v)
		case 0x0902:
			cs.ErrorComment = TrimAETitle(v)
		case 0x1000:
			cs.AffectedSOPInstanceUID = trimUIValue(v)
		case 0x1001:
			cs.RequestedSOPInstanceUID = trimUIValue(v)
		case 0x1030:
			cs.MoveOriginatorAETitle = TrimAETitle(v)
		case 0x0100, 0x0110, 0x0120, 0x0700, 0x0800, 0x0900, 0x1031:
			if len(v) != 2 {
				return badLen(off+4, elem, len(v), 2)
			}
			u := binary.LittleEndian.Uint16(v)
			switch elem {
			case 0x0100:
				cs.CommandField, cs.HasCommandField = u, true
			case 0x0110:
				cs.MessageID, cs.HasMessageID = u, true
			case 0x0120:
				cs.MessageIDBeingRespondedTo, cs.HasMessageIDBeingRespondedTo = u, true
			case 0x0700:
				cs.Priority, cs.HasPriority = u, true
			case 0x0800:
				cs.CommandDataSetType, cs.HasCommandDataSetType = u, true
			case 0x0900:
				cs.Status, cs.HasStatus = u, true
			case 0x1031:
				cs.MoveOriginatorMessageID, cs.HasMoveOriginatorMessageID = u, true
			}
		}
		off = end
	}
	if !cs.HasCommandField {
		return newErr(len(b), "command set", ErrInvalid, "no CommandField element (0000,0100)")
	}
	return nil
}

func badLen(off int, elem uint16, got, want int) error {
	return newErr(off, tagName(elem), ErrInvalid, "value length "+itoa(got)+", want "+itoa(want))
}

// tagName names a group 0000 element for errors.
func tagName(elem uint16) string {
	name := ""
	switch elem {
	case 0x0000:
		name = " CommandGroupLength"
	case 0x0100:
		name = " CommandField"
	case 0x0110:
		name = " MessageID"
	case 0x0120:
		name = " MessageIDBeingRespondedTo"
	case 0x0700:
		name = " Priority"
	case 0x0800:
		name = " CommandDataSetType"
	case 0x0900:
		name = " Status"
	case 0x1031:
		name = " MoveOriginatorMessageID"
	}
	return "element (0000," + hex16(elem)[2:] + ")" + name
}

// trimUIValue removes the trailing NUL/space padding of a UI value.
func trimUIValue(v []byte) []byte {
	n := len(v)
	for n > 0 && (v[n-1] == 0 || v[n-1] == ' ') {
		n--
	}
	return v[:n:n]
}

// CommandFieldName returns the DIMSE name of a CommandField value, e.g.
// "C-ECHO-RQ" for 0x0030 and "C-STORE-RSP" for 0x8001, or
// "unknown command 0xNNNN".
func CommandFieldName(cf uint16) string {
	switch cf {
	case 0x0001:
		return "C-STORE-RQ"
	case 0x8001:
		return "C-STORE-RSP"
	case 0x0010:
		return "C-GET-RQ"
	case 0x8010:
		return "C-GET-RSP"
	case 0x0020:
		return "C-FIND-RQ"
	case 0x8020:
		return "C-FIND-RSP"
	case 0x0021:
		return "C-MOVE-RQ"
	case 0x8021:
		return "C-MOVE-RSP"
	case 0x0030:
		return "C-ECHO-RQ"
	case 0x8030:
		return "C-ECHO-RSP"
	case 0x0100:
		return "N-EVENT-REPORT-RQ"
	case 0x8100:
		return "N-EVENT-REPORT-RSP"
	case 0x0110:
		return "N-GET-RQ"
	case 0x8110:
		return "N-GET-RSP"
	case 0x0120:
		return "N-SET-RQ"
	case 0x8120:
		return "N-SET-RSP"
	case 0x0130:
		return "N-ACTION-RQ"
	case 0x8130:
		return "N-ACTION-RSP"
	case 0x0140:
		return "N-CREATE-RQ"
	case 0x8140:
		return "N-CREATE-RSP"
	case 0x0150:
		return "N-DELETE-RQ"
	case 0x8150:
		return "N-DELETE-RSP"
	case 0x0FFF:
		return "C-CANCEL-RQ"
	}
	return "unknown command " + hex16(cf)
}
