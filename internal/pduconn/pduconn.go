// Package pduconn reads whole DICOM Upper Layer PDUs off a connection and holds the DIMSE pieces the
// project's own peers share: the demo acceptors (internal/demopacs) and the requesters of the load and
// attack tools (internal/scu, e2e/cmd/soak). It builds the C-STORE-RQ and C-ECHO-RQ command sets, waits for
// and checks their responses, and releases. It opens no connection and proposes nothing: each peer builds its own
// A-ASSOCIATE PDUs and timing.
//
// Every wait is bounded by the connection's deadline (or Reader.IdleTimeout per read); every reply is
// checked (type, message ID, status, instance), so a tool counts an operation only when the peer really
// did it.
package pduconn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// MaxPDULength is the largest PDU a Reader accepts.
const MaxPDULength = 1 << 20

// Reader returns the complete PDUs arriving on a connection, one at a time.
type Reader struct {
	c      net.Conn
	framer pdu.Framer
	// Dec decodes what ReadPDU returns (MaxPDULength set).
	Dec pdu.Decoder
	// IdleTimeout, when set, is the read deadline set before every read (an acceptor's idle timeout);
	// otherwise the connection's own deadline applies.
	IdleTimeout time.Duration
	rbuf        []byte
	used        int // bytes of rbuf consumed by the last returned PDU
}

// NewReader reads PDUs from c.
func NewReader(c net.Conn) *Reader {
	return &Reader{c: c, framer: pdu.Framer{MaxPDULength: MaxPDULength}, Dec: pdu.Decoder{MaxPDULength: MaxPDULength},
		rbuf: make([]byte, 0, 16<<10)}
}

// ReadPDU returns the next complete PDU; the slice is valid until the next call. The peer closing
// between two PDUs is io.EOF; inside a PDU, io.ErrUnexpectedEOF.
func (r *Reader) ReadPDU() ([]byte, error) {
	if r.used > 0 {
		r.rbuf = append(r.rbuf[:0], r.rbuf[r.used:]...)
		r.used = 0
	}
	for {
		h, need, err := r.framer.Peek(r.rbuf)
		if err != nil {
			return nil, err
		}
		if need == 0 {
			r.used = h.Total()
			return r.rbuf[:r.used], nil
		}
		if cap(r.rbuf)-len(r.rbuf) < need {
			grown := make([]byte, len(r.rbuf), len(r.rbuf)+max(need, 64<<10))
			copy(grown, r.rbuf)
			r.rbuf = grown
		}
		if r.IdleTimeout > 0 {
			_ = r.c.SetReadDeadline(time.Now().Add(r.IdleTimeout))
		}
		n, err := r.c.Read(r.rbuf[len(r.rbuf):cap(r.rbuf)])
		r.rbuf = r.rbuf[:len(r.rbuf)+n]
		if err != nil {
			if errors.Is(err, io.EOF) && len(r.rbuf) > 0 {
				return nil, fmt.Errorf("the peer closed the connection (%d bytes of a PDU buffered): %w", len(r.rbuf), io.ErrUnexpectedEOF)
			}
			return nil, err
		}
	}
}

// StatusError is a DIMSE response whose status is not Success: the peer answered, and refused or failed the
// operation.
type StatusError struct {
	// Response is the response's command name (e.g. "C-STORE-RSP").
	Response string
	// Status is the DIMSE status (PS3.7 Annex C).
	Status uint16
}

// Error names the response and its status.
func (e *StatusError) Error() string {
	return fmt.Sprintf("%s status %#04x, want 0x0000 (Success)", e.Response, e.Status)
}

// AwaitStoreRSP reads P-DATA-TF PDUs until a whole command set arrives and checks that it is the
// C-STORE-RSP to message msgID, with status Success (0x0000), for instance.
func (r *Reader) AwaitStoreRSP(msgID uint16, instance string) error {
	return r.AwaitRSP(0x8001, msgID, instance)
}

// AwaitRSP reads P-DATA-TF PDUs until a whole command set arrives and checks that it is the response with
// command field field (e.g. 0x8030 C-ECHO-RSP) to message msgID, with status Success (0x0000), naming
// instance when instance is not empty. A status other than Success is a *StatusError.
func (r *Reader) AwaitRSP(field, msgID uint16, instance string) error {
	want := pdu.CommandFieldName(field)
	var cmdBuf []byte
	for {
		p, err := r.ReadPDU()
		if err != nil {
			return fmt.Errorf("waiting for the %s: %w", want, err)
		}
		m, err := r.Dec.Decode(p)
		if err != nil {
			return fmt.Errorf("%s: %w", pdu.Type(p[0]), err)
		}
		pd, ok := m.(*pdu.PDataTF)
		if !ok {
			return fmt.Errorf("got %s while waiting for the %s", m.Type(), want)
		}
		for _, v := range pd.PDVs {
			if !v.IsCommand() {
				return fmt.Errorf("data set fragment while waiting for the %s", want)
			}
			cmdBuf = append(cmdBuf, v.Data...)
			if !v.IsLast() {
				continue
			}
			var cs pdu.CommandSet
			if err := pdu.ReadCommandSet(cmdBuf, &cs); err != nil {
				return fmt.Errorf("%s command set: %w", want, err)
			}
			switch {
			case cs.CommandField != field:
				return fmt.Errorf("got %s instead of %s", pdu.CommandFieldName(cs.CommandField), want)
			case cs.MessageIDBeingRespondedTo != msgID:
				return fmt.Errorf("%s answers message %d, want %d", want, cs.MessageIDBeingRespondedTo, msgID)
			case !cs.HasStatus || cs.Status != 0:
				return &StatusError{Response: want, Status: cs.Status}
			case instance != "" && string(cs.AffectedSOPInstanceUID) != instance:
				return fmt.Errorf("%s names instance %q, want %q", want, cs.AffectedSOPInstanceUID, instance)
			}
			return nil
		}
	}
}

// Release sends A-RELEASE-RQ on c and waits (until timeout) for the A-RELEASE-RP; it does not close c.
func (r *Reader) Release(timeout time.Duration) error {
	_ = r.c.SetDeadline(time.Now().Add(timeout))
	if _, err := r.c.Write((&pdu.ReleaseRQ{}).AppendEncode(nil)); err != nil {
		return fmt.Errorf("writing the A-RELEASE-RQ: %w", err)
	}
	p, err := r.ReadPDU()
	if err != nil {
		return fmt.Errorf("waiting for the A-RELEASE-RP: %w", err)
	}
	m, err := r.Dec.Decode(p)
	if err != nil {
		return fmt.Errorf("%s: %w", pdu.Type(p[0]), err)
	}
	if _, ok := m.(*pdu.ReleaseRP); !ok {
		return fmt.Errorf("got %s instead of the A-RELEASE-RP", m.Type())
	}
	return nil
}

// StoreCommand is the C-STORE-RQ command set (group 0000, implicit VR little endian, PS3.7 §9.3.1.1)
// for instance of sopClass, message msgID, priority medium, a data set following.
func StoreCommand(sopClass string, msgID uint16, instance string) []byte {
	var body []byte
	body = AppendElem(body, 0x0000, 0x0002, PadUID(sopClass))
	body = AppendElem(body, 0x0000, 0x0100, binary.LittleEndian.AppendUint16(nil, 0x0001))
	body = AppendElem(body, 0x0000, 0x0110, binary.LittleEndian.AppendUint16(nil, msgID))
	body = AppendElem(body, 0x0000, 0x0700, binary.LittleEndian.AppendUint16(nil, 0))
	body = AppendElem(body, 0x0000, 0x0800, binary.LittleEndian.AppendUint16(nil, 0x0000)) // a data set follows
	body = AppendElem(body, 0x0000, 0x1000, PadUID(instance))
	return append(AppendElem(nil, 0x0000, 0x0000, binary.LittleEndian.AppendUint32(nil, uint32(len(body)))), body...)
}

// EchoCommand is the C-ECHO-RQ command set (PS3.7 §9.3.5.1) for message msgID, no data set.
func EchoCommand(msgID uint16) []byte {
	var body []byte
	body = AppendElem(body, 0x0000, 0x0002, PadUID("1.2.840.10008.1.1"))
	body = AppendElem(body, 0x0000, 0x0100, binary.LittleEndian.AppendUint16(nil, 0x0030))
	body = AppendElem(body, 0x0000, 0x0110, binary.LittleEndian.AppendUint16(nil, msgID))
	body = AppendElem(body, 0x0000, 0x0800, binary.LittleEndian.AppendUint16(nil, 0x0101)) // no data set
	return append(AppendElem(nil, 0x0000, 0x0000, binary.LittleEndian.AppendUint32(nil, uint32(len(body)))), body...)
}

// AppendElem appends one implicit VR little endian element.
func AppendElem(dst []byte, group, elem uint16, value []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, group)
	dst = binary.LittleEndian.AppendUint16(dst, elem)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(value)))
	return append(dst, value...)
}

// PadUID returns a UID value padded to even length with a NUL (PS3.5 §9.1).
func PadUID(uid string) []byte {
	b := []byte(uid)
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	return b
}
