package pdu

import "encoding/binary"

// Framer finds PDU boundaries in a byte stream that arrives in arbitrary
// pieces (peek-then-commit framing). It holds no state besides its limit, so
// one Framer may serve many connections concurrently. The zero value uses
// DefaultMaxPDULength.
type Framer struct {
	// MaxPDULength is the largest PDU length field accepted; 0 means
	// DefaultMaxPDULength (1 MiB, dcmtk's cap for A-ASSOCIATE PDUs).
	MaxPDULength uint32
}

func (f *Framer) max() uint32 {
	if f == nil || f.MaxPDULength == 0 {
		return DefaultMaxPDULength
	}
	return f.MaxPDULength
}

// Peek looks at the bytes buffered so far; buf must start at a PDU boundary.
// It returns
//
//   - need > 0, err == nil: that many more bytes are needed (6-len(buf) while
//     the header is incomplete, otherwise the rest of the PDU);
//   - need == 0, err == nil: buf[:h.Total()] is one complete PDU;
//   - err != nil: the stream is not acceptable DICOM (see below).
//
// The header h is valid (Type and Length) as soon as len(buf) >= 6, even when
// need > 0. Errors are *Error values matching ErrUnknownType (any type other
// than 0x01-0x07, reported from the first byte on), ErrTLS (a TLS record,
// first byte 0x16 or 0x14/0x15/0x17 followed by 0x03), ErrHTTP (an HTTP
// request line), ErrTooLarge (length above MaxPDULength) or ErrInvalid (an
// A-ASSOCIATE-RJ, A-RELEASE or A-ABORT whose length is not 4, an
// A-ASSOCIATE-RQ/AC shorter than its 68-byte fixed part, a P-DATA-TF shorter
// than one PDV header). Peek never copies and never allocates except to build
// an error.
func (f *Framer) Peek(buf []byte) (h Header, need int, err error) {
	if len(buf) == 0 {
		return h, HeaderLen, nil
	}
	t := buf[0]
	if t < uint8(TypeAssociateRQ) || t > uint8(TypeAbort) {
		return h, 0, unknownTypeError(buf)
	}
	if len(buf) < HeaderLen {
		return h, HeaderLen - len(buf), nil
	}
	h.Type = Type(t)
	h.Length = binary.BigEndian.Uint32(buf[2:6])
	if err := checkHeader(h, f.max()); err != nil {
		return h, 0, err
	}
	total := uint64(HeaderLen) + uint64(h.Length)
	if uint64(len(buf)) >= total {
		return h, 0, nil
	}
	return h, int(total - uint64(len(buf))), nil
}

// Next splits the first complete PDU off buf. It returns ErrNeedMore (bare,
// without allocating) when buf does not yet hold a whole PDU, and the errors
// of Peek otherwise.
func (f *Framer) Next(buf []byte) (pdu, rest []byte, err error) {
	h, need, err := f.Peek(buf)
	if err != nil {
		return nil, buf, err
	}
	if need > 0 {
		return nil, buf, ErrNeedMore
	}
	n := h.Total()
	return buf[:n:n], buf[n:], nil
}

// checkHeader validates a PDU header against the per-type length rules of
// PS3.8 §9.3 and the size limit.
func checkHeader(h Header, max uint32) error {
	if h.Length > max {
		return newErr(2, h.Type.String()+" PDU length", ErrTooLarge,
			"length "+itoa(int(h.Length))+" exceeds the maximum of "+itoa(int(max))+" bytes (raise MaxPDULength if the peer legitimately sends larger PDUs)")
	}
	switch h.Type {
	case TypeAssociateRJ, TypeReleaseRQ, TypeReleaseRP, TypeAbort:
		if h.Length != 4 {
			return newErr(2, h.Type.String()+" PDU length", ErrInvalid,
				"length "+itoa(int(h.Length))+" must be 4")
		}
	case TypeAssociateRQ, TypeAssociateAC:
		if h.Length < associateFixedLen {
			return newErr(2, h.Type.String()+" PDU length", ErrInvalid,
				"length "+itoa(int(h.Length))+" is shorter than the 68-byte fixed part")
		}
	case TypePDataTF:
		if h.Length < 6 {
			return newErr(2, h.Type.String()+" PDU length", ErrInvalid,
				"length "+itoa(int(h.Length))+" is shorter than one PDV item (6 bytes)")
		}
	}
	return nil
}

// associateFixedLen is the fixed part of an A-ASSOCIATE-RQ/AC body.
const associateFixedLen = 68

// unknownTypeError classifies a stream whose first byte is not a PDU type.
func unknownTypeError(buf []byte) error {
	t := buf[0]
	switch {
	case t == 0x16 || ((t == 0x14 || t == 0x15 || t == 0x17) && len(buf) > 1 && buf[1] == 0x03):
		return newErr(0, "PDU type", ErrTLS,
			"byte "+hex8(t)+" looks like a TLS record: the peer speaks TLS; terminate TLS before the DICOM decoder or connect without TLS")
	case isHTTPStart(buf):
		return newErr(0, "PDU type", ErrHTTP,
			"byte "+hex8(t)+" ('"+string(rune(t))+"') looks like HTTP: the peer sent an HTTP request to a DICOM port")
	}
	return newErr(0, "PDU type", ErrUnknownType,
		"unknown PDU type "+hex8(t)+" (DICOM PS3.8 defines 0x01-0x07)")
}

// httpMethods are the request-line prefixes recognised as HTTP (including the
// HTTP/2 connection preface "PRI * HTTP/2.0").
var httpMethods = [...]string{"GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ", "PRI "}

// isHTTPStart reports whether buf can be the start of an HTTP request line.
// With few bytes it answers on the first byte ('G', 'P', 'H', ...).
func isHTTPStart(buf []byte) bool {
	for _, m := range httpMethods {
		n := len(buf)
		if n > len(m) {
			n = len(m)
		}
		if string(buf[:n]) == m[:n] {
			return true
		}
	}
	return false
}
