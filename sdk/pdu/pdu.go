package pdu

// PDU is a decoded protocol data unit of any of the seven types:
// *AssociateRQ, *AssociateAC, *AssociateRJ, *PDataTF, *ReleaseRQ,
// *ReleaseRP or *Abort. Decode returns one; a caller that reads a stream
// switches on its dynamic type. Code on a hot path uses the DecodeX methods
// into reused values instead, which allocate nothing in steady state.
type PDU interface {
	// Type is the PDU type byte the value encodes to.
	Type() Type
	// AppendEncode appends the PDU, header included, to dst.
	AppendEncode(dst []byte) []byte
}

// Type returns TypeAssociateRQ.
func (*AssociateRQ) Type() Type { return TypeAssociateRQ }

// Type returns TypeAssociateAC.
func (*AssociateAC) Type() Type { return TypeAssociateAC }

// Type returns TypeAssociateRJ.
func (*AssociateRJ) Type() Type { return TypeAssociateRJ }

// Type returns TypePDataTF.
func (*PDataTF) Type() Type { return TypePDataTF }

// Type returns TypeReleaseRQ.
func (*ReleaseRQ) Type() Type { return TypeReleaseRQ }

// Type returns TypeReleaseRP.
func (*ReleaseRP) Type() Type { return TypeReleaseRP }

// Type returns TypeAbort.
func (*Abort) Type() Type { return TypeAbort }

// Decode decodes one whole PDU (as split off by a Framer) with the default
// lenient Decoder; see Decoder.Decode.
func Decode(pdu []byte) (PDU, error) {
	var d Decoder
	return d.Decode(pdu)
}

// Decode decodes one whole PDU of any type into a newly allocated value,
// chosen by the type byte, with the rules of the DecodeX method for that
// type. Byte slices in the result alias pdu, as with DecodeX, so
// AppendEncode reproduces pdu byte for byte while pdu is intact. An empty
// pdu is ErrTruncated; a first byte that is no PDU type is ErrUnknownType
// (ErrTLS or ErrHTTP when it looks like either). On an error the PDU is
// nil.
func (d *Decoder) Decode(pdu []byte) (PDU, error) {
	if len(pdu) == 0 {
		return nil, newErr(0, "PDU header", ErrTruncated, "have 0 bytes, the header needs 6")
	}
	var p PDU
	var err error
	switch Type(pdu[0]) {
	case TypeAssociateRQ:
		v := new(AssociateRQ)
		p, err = v, d.DecodeAssociateRQ(pdu, v)
	case TypeAssociateAC:
		v := new(AssociateAC)
		p, err = v, d.DecodeAssociateAC(pdu, v)
	case TypeAssociateRJ:
		v := new(AssociateRJ)
		p, err = v, d.DecodeAssociateRJ(pdu, v)
	case TypePDataTF:
		v := new(PDataTF)
		p, err = v, d.DecodePDataTF(pdu, v)
	case TypeReleaseRQ:
		v := new(ReleaseRQ)
		p, err = v, d.DecodeReleaseRQ(pdu, v)
	case TypeReleaseRP:
		v := new(ReleaseRP)
		p, err = v, d.DecodeReleaseRP(pdu, v)
	case TypeAbort:
		v := new(Abort)
		p, err = v, d.DecodeAbort(pdu, v)
	default:
		return nil, unknownTypeError(pdu)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}
