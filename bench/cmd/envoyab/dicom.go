package main

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/dicomgate/dicomgate/internal/pduconn"
	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// The DICOM requester side of the benchmark, built on sdk/pdu. It is shaped as the seed of the load generator of
// issue #16 (`dicomgate bench`): an association is opened with assocConfig, timed in phases, and checked — an
// association counts only when the acceptor sent an A-ASSOCIATE-AC accepting the context, a release only on an
// A-RELEASE-RP, a C-STORE only on a C-STORE-RSP with status Success.

// UIDs the benchmark proposes.
const (
	uidAppContext       = "1.2.840.10008.3.1.1.1"
	uidImplicitLE       = "1.2.840.10008.1.2"
	uidVerification     = "1.2.840.10008.1.1"
	uidSecondaryCapture = "1.2.840.10008.5.1.4.1.1.7"
	// uidImplClass is a 2.25 UUID-derived implementation class UID (PS3.5 §B.2).
	uidImplClass = "2.25.196723401123859718126049873926419837565"
)

// assocConfig says how to open one association.
type assocConfig struct {
	// Addr is host:port of the acceptor (or the proxy in front of it).
	Addr string
	// TLS, when non-nil, wraps the connection (client certificate included in it for mutual TLS).
	TLS *tls.Config
	// CallingAE and CalledAE are the AE titles of the A-ASSOCIATE-RQ.
	CallingAE, CalledAE string
	// AbstractSyntax is the SOP class of the single proposed presentation context (ID 1, implicit VR little
	// endian).
	AbstractSyntax string
	// MaxPDU is the maximum P-DATA-TF length this requester announces (0: 16384, dcmtk's default).
	MaxPDU uint32
	// Timeout bounds every network step of the association.
	Timeout time.Duration
}

// assocTiming are the phases of one association, measured on the client's monotonic clock.
type assocTiming struct {
	// Connect is the TCP connect; Handshake the TLS handshake after it (0 without TLS).
	Connect, Handshake time.Duration
	// RQAC runs from writing the A-ASSOCIATE-RQ to a complete A-ASSOCIATE-AC.
	RQAC time.Duration
	// Total runs from the start of the TCP connect to the A-RELEASE-RP (set by runAssociation).
	Total time.Duration
}

// association is one open association.
type association struct {
	c       net.Conn
	cfg     assocConfig
	r       *pduconn.Reader
	peerMax uint32 // the acceptor's maximum P-DATA-TF length (0: unlimited)
	msgID   uint16
	started time.Time
}

// associationRQ encodes the A-ASSOCIATE-RQ of cfg.
func associationRQ(cfg assocConfig) []byte {
	maxPDU := cfg.MaxPDU
	if maxPDU == 0 {
		maxPDU = 16384
	}
	called, calling := make([]byte, 16), make([]byte, 16)
	pdu.PadAETitle(called, cfg.CalledAE)
	pdu.PadAETitle(calling, cfg.CallingAE)
	rq := pdu.AssociateRQ{
		ProtocolVersion:    1,
		CalledAETitleRaw:   called,
		CallingAETitleRaw:  calling,
		ApplicationContext: []byte(uidAppContext),
		PresentationContexts: []pdu.PresentationContextRQ{{
			ID: 1, AbstractSyntax: []byte(cfg.AbstractSyntax), TransferSyntaxes: [][]byte{[]byte(uidImplicitLE)},
		}},
		UserInformation: pdu.UserInformation{
			MaxLength: maxPDU, HasMaxLength: true,
			ImplementationClassUID:    []byte(uidImplClass),
			ImplementationVersionName: []byte("DICOMGATE_AB"),
		},
	}
	return rq.AppendEncode(nil)
}

// associate connects (TCP_NODELAY, Go's default for TCP), completes the TLS handshake when configured, sends the
// A-ASSOCIATE-RQ and waits for the A-ASSOCIATE-AC. The returned association is open; the caller releases it.
func associate(cfg assocConfig, rq []byte) (*association, assocTiming, error) {
	var tm assocTiming
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	start := time.Now()
	d := net.Dialer{Timeout: cfg.Timeout}
	c, err := d.Dial("tcp", cfg.Addr)
	if err != nil {
		return nil, tm, fmt.Errorf("connect %s: %w", cfg.Addr, err)
	}
	if err := c.(*net.TCPConn).SetNoDelay(true); err != nil {
		c.Close()
		return nil, tm, fmt.Errorf("TCP_NODELAY: %w", err)
	}
	tm.Connect = time.Since(start)
	_ = c.SetDeadline(time.Now().Add(cfg.Timeout))
	if cfg.TLS != nil {
		tc := tls.Client(c, cfg.TLS)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, tm, fmt.Errorf("TLS handshake with %s: %w", cfg.Addr, err)
		}
		c = tc
		tm.Handshake = time.Since(start) - tm.Connect
	}
	a := &association{c: c, cfg: cfg, r: pduconn.NewReader(c), started: start}
	t0 := time.Now()
	if _, err := c.Write(rq); err != nil {
		c.Close()
		return nil, tm, fmt.Errorf("writing A-ASSOCIATE-RQ: %w", err)
	}
	p, err := a.r.ReadPDU()
	if err != nil {
		c.Close()
		return nil, tm, fmt.Errorf("waiting for A-ASSOCIATE-AC: %w", err)
	}
	tm.RQAC = time.Since(t0)
	switch pdu.Type(p[0]) {
	case pdu.TypeAssociateAC:
	case pdu.TypeAssociateRJ:
		c.Close()
		return nil, tm, fmt.Errorf("association rejected (A-ASSOCIATE-RJ % x)", p[6:10])
	default:
		c.Close()
		return nil, tm, fmt.Errorf("got %s instead of A-ASSOCIATE-AC", pdu.Type(p[0]))
	}
	var ac pdu.AssociateAC
	if err := a.r.Dec.DecodeAssociateAC(p, &ac); err != nil {
		c.Close()
		return nil, tm, fmt.Errorf("A-ASSOCIATE-AC: %w", err)
	}
	if len(ac.PresentationContexts) != 1 || ac.PresentationContexts[0].ID != 1 || ac.PresentationContexts[0].Result != 0 {
		c.Close()
		return nil, tm, fmt.Errorf("A-ASSOCIATE-AC does not accept presentation context 1 (%s)", cfg.AbstractSyntax)
	}
	if ac.UserInformation.HasMaxLength {
		a.peerMax = ac.UserInformation.MaxLength
	}
	return a, tm, nil
}

// release sends A-RELEASE-RQ, waits for A-RELEASE-RP and closes the connection.
func (a *association) release() error {
	defer a.c.Close()
	return a.r.Release(a.cfg.Timeout)
}

// abort closes the connection without a release.
func (a *association) abort() { a.c.Close() }

// runAssociation opens and releases one association and returns its timing.
func runAssociation(cfg assocConfig, rq []byte) (assocTiming, error) {
	a, tm, err := associate(cfg, rq)
	if err != nil {
		return tm, err
	}
	if err := a.release(); err != nil {
		return tm, err
	}
	tm.Total = time.Since(a.started)
	return tm, nil
}

// storeStream is a pre-encoded C-STORE-RQ (command and data set as P-DATA-TF PDUs) for presentation context 1,
// written with one Write so the client spends as little CPU per byte as possible.
type storeStream struct {
	// Bytes is the encoded PDUs.
	Bytes []byte
	// DataSetBytes is the size of the data set carried.
	DataSetBytes int64
	// SOPInstanceUID is the instance's UID (the C-STORE-RSP must echo it).
	SOPInstanceUID string
}

// newStoreStream encodes a C-STORE-RQ of a Secondary Capture instance whose data set (implicit VR little endian:
// SOP Class UID, SOP Instance UID and a Pixel Data element of zeros) is exactly size bytes, fragmented into
// P-DATA-TF PDUs of at most maxPDU bytes (the acceptor's announced maximum; PS3.8 §9.3.5: the length counts the
// PDV items, each 6 bytes of header plus the fragment).
func newStoreStream(size int64, maxPDU uint32, msgID uint16, instance string) (*storeStream, error) {
	if maxPDU == 0 || maxPDU > 1<<24 {
		maxPDU = 1 << 20
	}
	if maxPDU < 64 {
		return nil, fmt.Errorf("maximum PDU length %d is too small for the benchmark (need >= 64)", maxPDU)
	}
	var head []byte
	head = pduconn.AppendElem(head, 0x0008, 0x0016, pduconn.PadUID(uidSecondaryCapture))
	head = pduconn.AppendElem(head, 0x0008, 0x0018, pduconn.PadUID(instance))
	pixels := size - int64(len(head)) - 8
	if pixels < 0 || pixels%2 != 0 || pixels > 0xFFFFFFFE {
		return nil, fmt.Errorf("data set size %d: want an even size between %d and 4 GiB", size, len(head)+8)
	}
	head = binary.LittleEndian.AppendUint16(head, 0x7FE0)
	head = binary.LittleEndian.AppendUint16(head, 0x0010)
	head = binary.LittleEndian.AppendUint32(head, uint32(pixels))

	cmd := pduconn.StoreCommand(uidSecondaryCapture, msgID, instance)
	frag := int64(maxPDU) - 6
	nPDU := (size + frag - 1) / frag
	out := make([]byte, 0, int64(len(cmd))+12+size+nPDU*12)
	cp := pdu.PDataTF{PDVs: []pdu.PDV{{ContextID: 1, MessageControlHeader: pdu.MCHCommand | pdu.MCHLast, Data: cmd}}}
	if int64(len(cmd)) > frag {
		return nil, fmt.Errorf("maximum PDU length %d is too small for the %d-byte command set", maxPDU, len(cmd))
	}
	out = cp.AppendEncode(out)
	zeros := make([]byte, frag)
	var off int64
	for off < size {
		n := min(frag, size-off)
		var data []byte
		if off < int64(len(head)) { // the first fragment carries the element headers
			data = append(append([]byte{}, head[off:min(int64(len(head)), off+n)]...), zeros[:max(0, n-(int64(len(head))-off))]...)
		} else {
			data = zeros[:n]
		}
		mch := uint8(0)
		if off+n == size {
			mch = pdu.MCHLast
		}
		p := pdu.PDataTF{PDVs: []pdu.PDV{{ContextID: 1, MessageControlHeader: mch, Data: data}}}
		out = p.AppendEncode(out)
		off += n
	}
	return &storeStream{Bytes: out, DataSetBytes: size, SOPInstanceUID: instance}, nil
}

// store writes s and waits for the C-STORE-RSP, which must answer message s's ID with status Success (0x0000)
// for s's instance.
func (a *association) store(s *storeStream, msgID uint16, timeout time.Duration) error {
	_ = a.c.SetDeadline(time.Now().Add(timeout))
	if _, err := a.c.Write(s.Bytes); err != nil {
		return fmt.Errorf("writing the C-STORE-RQ (%d bytes): %w", len(s.Bytes), err)
	}
	return a.r.AwaitStoreRSP(msgID, s.SOPInstanceUID)
}
