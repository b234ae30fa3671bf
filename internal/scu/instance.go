package scu

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	"github.com/dicomgate/dicomgate/internal/pduconn"
	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// Instance is one SOP instance to store: its data set as bytes in TransferSyntax.
type Instance struct {
	SOPClass, SOPInstance, TransferSyntax string
	// DataSet is the encoded data set (no file meta information).
	DataSet []byte
	// Source names where it came from (a file path, or "generated").
	Source string
}

// Context is the presentation context the instance is sent on.
func (in *Instance) Context() Context { return Context{in.SOPClass, in.TransferSyntax} }

// GenerateInstance returns a Secondary Capture instance (implicit VR little endian: SOP Class UID, SOP Instance
// UID and a Pixel Data element of zeros) whose data set is exactly size bytes.
func GenerateInstance(size int64, sopInstance string) (*Instance, error) {
	var head []byte
	head = pduconn.AppendElem(head, 0x0008, 0x0016, pduconn.PadUID(UIDSecondaryCapture))
	head = pduconn.AppendElem(head, 0x0008, 0x0018, pduconn.PadUID(sopInstance))
	pixels := size - int64(len(head)) - 8
	if pixels < 0 || pixels%2 != 0 || pixels > 0xFFFFFFFE {
		return nil, fmt.Errorf("instance size %d: want an even size between %d and 4 GiB", size, len(head)+8)
	}
	ds := make([]byte, len(head), size)
	copy(ds, head)
	ds = binary.LittleEndian.AppendUint16(ds, 0x7FE0)
	ds = binary.LittleEndian.AppendUint16(ds, 0x0010)
	ds = binary.LittleEndian.AppendUint32(ds, uint32(pixels))
	ds = ds[:size] // zeros
	return &Instance{SOPClass: UIDSecondaryCapture, SOPInstance: sopInstance, TransferSyntax: UIDImplicitVRLittleEndian,
		DataSet: ds, Source: "generated"}, nil
}

// ReadPart10 reads a DICOM Part 10 file (PS3.10 §7.1: 128-byte preamble, "DICM", group 0002 file meta
// information in explicit VR little endian) and returns its data set with the SOP class, instance and transfer
// syntax the meta information names.
func ReadPart10(path string) (*Instance, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 132 || string(b[128:132]) != "DICM" {
		return nil, fmt.Errorf("%s: not a DICOM Part 10 file (no \"DICM\" after the 128-byte preamble); give files as written by storescu/dcmodify or PACS exports", path)
	}
	in := &Instance{Source: path}
	off := 132
	for off+8 <= len(b) && binary.LittleEndian.Uint16(b[off:]) == 0x0002 {
		elem := binary.LittleEndian.Uint16(b[off+2:])
		vr := string(b[off+4 : off+6])
		var n, hdr int
		switch vr {
		case "OB", "OW", "OF", "OD", "OL", "OV", "SQ", "UT", "UN", "UC", "UR", "SV", "UV":
			if off+12 > len(b) {
				return nil, fmt.Errorf("%s: file meta element (0002,%04X) at byte %d is cut off", path, elem, off)
			}
			n, hdr = int(binary.LittleEndian.Uint32(b[off+8:])), 12
		default:
			n, hdr = int(binary.LittleEndian.Uint16(b[off+6:])), 8
		}
		if n < 0 || off+hdr+n > len(b) {
			return nil, fmt.Errorf("%s: file meta element (0002,%04X) at byte %d runs past the end of the file", path, elem, off)
		}
		v := strings.TrimRight(string(b[off+hdr:off+hdr+n]), "\x00 ")
		switch elem {
		case 0x0002:
			in.SOPClass = v
		case 0x0003:
			in.SOPInstance = v
		case 0x0010:
			in.TransferSyntax = v
		}
		off += hdr + n
	}
	for name, v := range map[string]string{"(0002,0002) Media Storage SOP Class UID": in.SOPClass,
		"(0002,0003) Media Storage SOP Instance UID": in.SOPInstance, "(0002,0010) Transfer Syntax UID": in.TransferSyntax} {
		if v == "" {
			return nil, fmt.Errorf("%s: the file meta information has no %s", path, name)
		}
	}
	if off == len(b) {
		return nil, fmt.Errorf("%s: the file holds file meta information but no data set", path)
	}
	in.DataSet = bytes.Clone(b[off:])
	return in, nil
}

// Stream is an instance's data set encoded as P-DATA-TF PDUs for one presentation context and maximum PDU
// length, ready to follow a C-STORE-RQ command (Assoc.Store).
type Stream struct {
	Instance  *Instance
	ContextID uint8
	// MaxPDU is the P-DATA-TF length the data set was fragmented to (the acceptor must take it).
	MaxPDU uint32
	// Data is the encoded PDUs.
	Data []byte
}

// EncodeStream fragments in's data set into P-DATA-TF PDUs of at most maxPDU bytes on context id (PS3.8
// §9.3.5: the length counts the PDV items, each 6 bytes of header plus the fragment), the last fragment
// flagged last.
func EncodeStream(in *Instance, id uint8, maxPDU uint32) (*Stream, error) {
	if maxPDU < 64 || maxPDU > 1<<24 {
		return nil, fmt.Errorf("maximum PDU length %d: want 64 to 16 MiB", maxPDU)
	}
	size := int64(len(in.DataSet))
	frag := int64(maxPDU) - 6
	nPDU := max(1, (size+frag-1)/frag)
	out := make([]byte, 0, size+nPDU*12)
	for off := int64(0); off < size || off == 0; {
		n := min(frag, size-off)
		mch := uint8(0)
		if off+n == size {
			mch = pdu.MCHLast
		}
		p := pdu.PDataTF{PDVs: []pdu.PDV{{ContextID: id, MessageControlHeader: mch, Data: in.DataSet[off : off+n]}}}
		out = p.AppendEncode(out)
		off += n
		if off == size {
			break
		}
	}
	return &Stream{Instance: in, ContextID: id, MaxPDU: maxPDU, Data: out}, nil
}
