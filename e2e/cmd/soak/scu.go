package main

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/dicomgate/dicomgate/internal/pduconn"
	stdscu "github.com/dicomgate/dicomgate/internal/scu"
	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// A minimal DICOM requester (SCU) on sdk/pdu: one presentation context
// (Secondary Capture, implicit VR little endian), C-STORE, release. Every
// step is checked: an association counts only with an A-ASSOCIATE-AC that
// accepts the context, a store only with a C-STORE-RSP of status Success
// naming the instance, a release only with an A-RELEASE-RP.

// UIDs the soak proposes (the standard ones are internal/scu's).
const (
	uidAppContext       = stdscu.UIDApplicationContext
	uidImplicitLE       = stdscu.UIDImplicitVRLittleEndian
	uidSecondaryCapture = stdscu.UIDSecondaryCapture
	uidImplClass        = "2.25.93120465820974155287766152934805511202" // a 2.25 UUID-derived UID (PS3.5 §B.2)
)

// newRQ is an A-ASSOCIATE-RQ from calling to called proposing Secondary
// Capture storage.
func newRQ(calling, called string) pdu.AssociateRQ {
	c1, c2 := make([]byte, 16), make([]byte, 16)
	pdu.PadAETitle(c1, called)
	pdu.PadAETitle(c2, calling)
	return pdu.AssociateRQ{
		ProtocolVersion:    1,
		CalledAETitleRaw:   c1,
		CallingAETitleRaw:  c2,
		ApplicationContext: []byte(uidAppContext),
		PresentationContexts: []pdu.PresentationContextRQ{{
			ID: 1, AbstractSyntax: []byte(uidSecondaryCapture), TransferSyntaxes: [][]byte{[]byte(uidImplicitLE)},
		}},
		UserInformation: pdu.UserInformation{
			MaxLength: 16384, HasMaxLength: true,
			ImplementationClassUID:    []byte(uidImplClass),
			ImplementationVersionName: []byte("DICOMGATE_SOAK"),
		},
	}
}

// rqBytes encodes newRQ(calling, called).
func rqBytes(calling, called string) []byte {
	rq := newRQ(calling, called)
	return rq.AppendEncode(nil)
}

// rqTwoIdentities is rqBytes with two user-identity sub-items (0x58): the
// usernames first and then second. A filter that judges one and a PACS that
// uses the other disagree (issue 11), so the filter must refuse it.
func rqTwoIdentities(calling, called, first, second string) []byte {
	rq := newRQ(calling, called)
	rq.UserInformation.UserIdentity = pdu.UserIdentity{Type: 1, Primary: []byte(first)}
	rq.UserInformation.HasUserIdentity = true
	b := rq.AppendEncode(nil)
	// The user-information item (0x50) is the RQ's last item: append the
	// second sub-item to it and fix its length and the PDU length.
	sub := []byte{0x58, 0, 0, 0, 1, 0}
	sub = binary.BigEndian.AppendUint16(sub, uint16(len(second)))
	sub = append(sub, second...)
	sub = append(sub, 0, 0)
	binary.BigEndian.PutUint16(sub[2:4], uint16(len(sub)-4))
	off := 74 // items start after the 6-byte header and 68 fixed bytes
	for off+4 <= len(b) && b[off] != 0x50 {
		off += 4 + int(binary.BigEndian.Uint16(b[off+2:off+4]))
	}
	binary.BigEndian.PutUint16(b[off+2:off+4], binary.BigEndian.Uint16(b[off+2:off+4])+uint16(len(sub)))
	b = append(b, sub...)
	binary.BigEndian.PutUint32(b[2:6], uint32(len(b)-6))
	return b
}

// scu is one open association.
type scu struct {
	c       net.Conn
	r       *pduconn.Reader
	peerMax uint32
}

// dialTLS connects and completes the TLS handshake.
func dialTLS(addr string, cfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// open sends rq on c and waits for an A-ASSOCIATE-AC accepting context 1.
func open(c net.Conn, rq []byte, timeout time.Duration) (*scu, error) {
	a := &scu{c: c, r: pduconn.NewReader(c)}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(rq); err != nil {
		return nil, fmt.Errorf("writing the A-ASSOCIATE-RQ: %w", err)
	}
	p, err := a.r.ReadPDU()
	if err != nil {
		return nil, fmt.Errorf("waiting for the A-ASSOCIATE-AC: %w", err)
	}
	m, err := a.r.Dec.Decode(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pdu.Type(p[0]), err)
	}
	ac, ok := m.(*pdu.AssociateAC)
	if !ok {
		return nil, fmt.Errorf("got %s instead of an A-ASSOCIATE-AC", m.Type())
	}
	if len(ac.PresentationContexts) != 1 || ac.PresentationContexts[0].Result != pdu.PCAccepted {
		return nil, errors.New("the A-ASSOCIATE-AC does not accept the Secondary Capture context")
	}
	a.peerMax = 16384
	if ac.UserInformation.HasMaxLength && ac.UserInformation.MaxLength > 0 {
		a.peerMax = ac.UserInformation.MaxLength
	}
	return a, nil
}

// instance is a Secondary Capture data set (implicit VR little endian) with
// pseudo-random pixel data, so a corrupted or truncated copy never matches.
type instance struct {
	uid     string
	dataSet []byte
}

// newInstance builds an instance of about size bytes from seed.
func newInstance(uid string, size int, seed uint64) instance {
	var ds []byte
	ds = pduconn.AppendElem(ds, 0x0008, 0x0016, pduconn.PadUID(uidSecondaryCapture))
	ds = pduconn.AppendElem(ds, 0x0008, 0x0018, pduconn.PadUID(uid))
	pixels := make([]byte, size&^1)
	x := seed | 1
	for i := range pixels { // xorshift64
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		pixels[i] = byte(x)
	}
	ds = pduconn.AppendElem(ds, 0x7FE0, 0x0010, pixels)
	return instance{uid: uid, dataSet: ds}
}

// store sends inst as a C-STORE-RQ and waits for its Success response.
func (a *scu) store(inst instance, msgID uint16, timeout time.Duration) error {
	_ = a.c.SetDeadline(time.Now().Add(timeout))
	var out []byte
	cmd := pduconn.StoreCommand(uidSecondaryCapture, msgID, inst.uid)
	out = (&pdu.PDataTF{PDVs: []pdu.PDV{{ContextID: 1, MessageControlHeader: pdu.MCHCommand | pdu.MCHLast, Data: cmd}}}).AppendEncode(out)
	frag := int(a.peerMax) - 6
	for off := 0; off < len(inst.dataSet); off += frag {
		end := min(off+frag, len(inst.dataSet))
		mch := uint8(0)
		if end == len(inst.dataSet) {
			mch = pdu.MCHLast
		}
		out = (&pdu.PDataTF{PDVs: []pdu.PDV{{ContextID: 1, MessageControlHeader: mch, Data: inst.dataSet[off:end]}}}).AppendEncode(out)
	}
	if _, err := a.c.Write(out); err != nil {
		return fmt.Errorf("writing the C-STORE-RQ: %w", err)
	}
	return a.r.AwaitStoreRSP(msgID, inst.uid)
}

// release sends A-RELEASE-RQ and waits for A-RELEASE-RP.
func (a *scu) release(timeout time.Duration) error { return a.r.Release(timeout) }
