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
	switch Type(pdu[0]) {
	case TypeAssociateRQ:
		return decodeNew(d, pdu, (*Decoder).DecodeAssociateRQ)
	case TypeAssociateAC:
		return decodeNew(d, pdu, (*Decoder).DecodeAssociateAC)
	case TypeAssociateRJ:
		return decodeNew(d, pdu, (*Decoder).DecodeAssociateRJ)
	case TypePDataTF:
		return decodeNew(d, pdu, (*Decoder).DecodePDataTF)
	case TypeReleaseRQ:
		return decodeNew(d, pdu, (*Decoder).DecodeReleaseRQ)
	case TypeReleaseRP:
		return decodeNew(d, pdu, (*Decoder).DecodeReleaseRP)
	case TypeAbort:
		return decodeNew(d, pdu, (*Decoder).DecodeAbort)
	}
	return nil, unknownTypeError(pdu)
}

// decodeNew decodes pdu into a new T with decode; nil on an error (not a
// non-nil PDU holding a nil or half-decoded *T).
func decodeNew[T any, P interface {
	*T
	PDU
}](d *Decoder, pdu []byte, decode func(*Decoder, []byte, P) error) (PDU, error) {
	v := P(new(T))
	if err := decode(d, pdu, v); err != nil {
		return nil, err
	}
	return v, nil
}
