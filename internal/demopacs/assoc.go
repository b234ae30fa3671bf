package demopacs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/dicomgate/dicomgate/internal/pduconn"
	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// DICOM application context name (PS3.7 Annex A.2.1).
const dicomApplicationContext = "1.2.840.10008.3.1.1.1"

// assoc is the state of one association on the acceptor side.
type assoc struct {
	s    *Server
	c    net.Conn
	peer string

	r *pduconn.Reader

	called, calling string
	ts              map[uint8]string // accepted context ID -> transfer syntax
	peerMax         uint32           // peer's maximum P-DATA-TF PDU length (0 = unlimited)

	cmdBuf     []byte
	cmd        pdu.CommandSet
	cmdCtx     uint8
	expectData bool
	dataBytes  int64
	sopClass   string
	sopInst    string
	msgID      uint16
	store      *pendingStore
	out        []byte
}

// errAbort carries the A-ABORT reason a protocol error is answered with.
type errAbort struct {
	reason pdu.AbortReason
	msg    string
}

func (e *errAbort) Error() string { return e.msg }

func protocolError(reason pdu.AbortReason, format string, args ...any) error {
	return &errAbort{reason: reason, msg: fmt.Sprintf(format, args...)}
}

func (a *assoc) logf(format string, args ...any) {
	a.s.cfg.Logf("%s: "+format, append([]any{a.s.cfg.Name}, args...)...)
}

func (a *assoc) send(b []byte) error {
	_ = a.c.SetWriteDeadline(time.Now().Add(a.s.cfg.IdleTimeout))
	_, err := a.c.Write(b)
	return err
}

func (a *assoc) sendAbort(reason pdu.AbortReason) {
	ab := pdu.Abort{Source: pdu.AbortSourceServiceProvider, Reason: reason}
	_ = a.send(ab.AppendEncode(nil))
}

// run negotiates the association and serves it until release, abort or error.
func (a *assoc) run() error {
	first, err := a.r.ReadPDU()
	if err != nil {
		if errors.Is(err, pdu.ErrTLS) {
			return fmt.Errorf("peer speaks TLS to this plain DICOM port: %w", err)
		}
		return err
	}
	if pdu.Type(first[0]) != pdu.TypeAssociateRQ {
		a.sendAbort(pdu.AbortReasonUnexpectedPDU)
		return fmt.Errorf("first PDU is %s, want A-ASSOCIATE-RQ", pdu.Type(first[0]))
	}
	var rq pdu.AssociateRQ
	if err := a.r.Dec.DecodeAssociateRQ(first, &rq); err != nil {
		a.sendAbort(pdu.AbortReasonInvalidPDUParameterValue)
		return fmt.Errorf("A-ASSOCIATE-RQ: %w", err)
	}
	a.called, a.calling = string(rq.CalledAETitle()), string(rq.CallingAETitle())
	if rq.ProtocolVersion&1 == 0 {
		rj := pdu.AssociateRJ{Result: pdu.RJResultPermanent, Source: pdu.RJSourceServiceProviderACSE, Reason: pdu.RJReasonProtocolVersionNotSupported}
		_ = a.send(rj.AppendEncode(nil))
		return fmt.Errorf("rejected %s -> %s: protocol version %#04x not supported", a.calling, a.called, rq.ProtocolVersion)
	}
	if string(rq.ApplicationContext) != dicomApplicationContext {
		rj := pdu.AssociateRJ{Result: pdu.RJResultPermanent, Source: pdu.RJSourceServiceUser, Reason: pdu.RJReasonApplicationContextNameNotSupported}
		_ = a.send(rj.AppendEncode(nil))
		return fmt.Errorf("rejected %s -> %s: application context %q not supported", a.calling, a.called, rq.ApplicationContext)
	}
	if rq.UserInformation.HasMaxLength {
		a.peerMax = rq.UserInformation.MaxLength
	}
	ac := pdu.AssociateAC{
		ProtocolVersion:    1,
		CalledAETitleRaw:   rq.CalledAETitleRaw,
		CallingAETitleRaw:  rq.CallingAETitleRaw,
		ApplicationContext: rq.ApplicationContext,
		UserInformation: pdu.UserInformation{
			MaxLength:                 a.s.cfg.MaxPDULength,
			HasMaxLength:              true,
			ImplementationClassUID:    []byte(ImplementationClassUID),
			ImplementationVersionName: []byte(ImplementationVersionName),
		},
	}
	a.ts = make(map[uint8]string, len(rq.PresentationContexts))
	for _, pc := range rq.PresentationContexts {
		res := pdu.PresentationContextAC{ID: pc.ID, Result: pdu.PCTransferSyntaxesNotSupported, TransferSyntax: []byte(ImplicitVRLittleEndian)}
		if ts := chooseTransferSyntax(pc.TransferSyntaxes); ts != "" {
			res.Result, res.TransferSyntax = pdu.PCAccepted, []byte(ts)
			a.ts[pc.ID] = ts
		}
		ac.PresentationContexts = append(ac.PresentationContexts, res)
	}
	if err := a.send(ac.AppendEncode(nil)); err != nil {
		return err
	}
	a.logf("association %s -> %s from %s accepted (%d/%d presentation contexts)", a.calling, a.called, a.peer, len(a.ts), len(rq.PresentationContexts))

	for {
		p, err := a.r.ReadPDU()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%s closed the connection without A-RELEASE or A-ABORT", a.calling)
			}
			if errors.Is(err, pdu.ErrNotDICOM) || errors.Is(err, pdu.ErrUnknownType) || errors.Is(err, pdu.ErrInvalid) || errors.Is(err, pdu.ErrTooLarge) {
				a.sendAbort(pdu.AbortReasonUnrecognizedPDU)
			}
			return err
		}
		m, err := a.r.Dec.Decode(p)
		if err != nil {
			a.sendAbort(pdu.AbortReasonInvalidPDUParameterValue)
			return fmt.Errorf("%s: %w", pdu.Type(p[0]), err)
		}
		switch m := m.(type) {
		case *pdu.PDataTF:
			for _, v := range m.PDVs {
				if err := a.onPDV(v); err != nil {
					var ea *errAbort
					if errors.As(err, &ea) {
						a.sendAbort(ea.reason)
					}
					return err
				}
			}
		case *pdu.ReleaseRQ:
			rp := pdu.ReleaseRP{}
			if err := a.send(rp.AppendEncode(nil)); err != nil {
				return err
			}
			a.logf("association %s -> %s released", a.calling, a.called)
			// The requester closes the transport after A-RELEASE-RP (PS3.8
			// §7.2, dcmtk behaviour); wait briefly for its FIN.
			_ = a.c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, _ = io.Copy(io.Discard, a.c)
			return nil
		case *pdu.Abort:
			a.logf("association %s -> %s aborted by the requester", a.calling, a.called)
			return nil
		default:
			a.sendAbort(pdu.AbortReasonUnexpectedPDU)
			return fmt.Errorf("unexpected %s PDU during the association", m.Type())
		}
	}
}

// chooseTransferSyntax picks the transfer syntax to accept among the proposed
// ones: the first little-endian one (explicit or implicit VR) in proposal
// order, else the first proposed.
func chooseTransferSyntax(proposed [][]byte) string {
	for _, ts := range proposed {
		if s := string(ts); s == ExplicitVRLittleEndian || s == ImplicitVRLittleEndian {
			return s
		}
	}
	if len(proposed) > 0 && len(proposed[0]) > 0 {
		return string(proposed[0])
	}
	return ""
}

// onPDV consumes one presentation data value.
func (a *assoc) onPDV(v pdu.PDV) error {
	ts, ok := a.ts[v.ContextID]
	if !ok {
		return protocolError(pdu.AbortReasonInvalidPDUParameterValue, "PDV on presentation context %d, which was not accepted", v.ContextID)
	}
	if v.IsCommand() {
		if a.expectData {
			return protocolError(pdu.AbortReasonUnexpectedPDU, "command fragment while the data set of message %d is incomplete", a.msgID)
		}
		a.cmdBuf = append(a.cmdBuf, v.Data...)
		if !v.IsLast() {
			return nil
		}
		err := pdu.ReadCommandSet(a.cmdBuf, &a.cmd)
		a.cmdBuf = a.cmdBuf[:0]
		if err != nil {
			return protocolError(pdu.AbortReasonInvalidPDUParameterValue, "command set: %v", err)
		}
		a.cmdCtx = v.ContextID
		a.msgID = a.cmd.MessageID
		a.sopClass = string(a.cmd.AffectedSOPClassUID)
		a.sopInst = string(a.cmd.AffectedSOPInstanceUID)
		if a.cmd.HasDataSet() {
			a.expectData = true
			a.dataBytes = 0
			if a.cmd.CommandField == 0x0001 && a.s.cfg.Dir != "" {
				a.store = newPendingStore(a.s.cfg.Dir, Stored{
					SOPClassUID: a.sopClass, SOPInstanceUID: a.sopInst, TransferSyntaxUID: ts,
					CallingAETitle: a.calling, CalledAETitle: a.called,
				})
			}
			return nil
		}
		return a.respond()
	}
	if !a.expectData {
		return protocolError(pdu.AbortReasonUnexpectedPDU, "data set fragment without a command that announces one")
	}
	if v.ContextID != a.cmdCtx {
		return protocolError(pdu.AbortReasonInvalidPDUParameterValue, "data set fragment on context %d, command was on context %d", v.ContextID, a.cmdCtx)
	}
	a.dataBytes += int64(len(v.Data))
	if a.store != nil {
		a.store.write(v.Data)
	}
	if !v.IsLast() {
		return nil
	}
	a.expectData = false
	return a.respond()
}

// respond answers the complete message in a.cmd.
func (a *assoc) respond() error {
	cs := &a.cmd
	if cs.IsResponse() || cs.CommandField == 0x0FFF { // responses and C-CANCEL-RQ get no answer
		return nil
	}
	status := StatusSuccess
	var inst string
	switch cs.CommandField {
	case 0x0030: // C-ECHO-RQ
		a.logf("C-ECHO from %s (message %d)", a.calling, cs.MessageID)
	case 0x0001: // C-STORE-RQ
		inst = a.sopInst
		if a.store != nil {
			st, err := a.store.finish()
			a.store = nil
			if err != nil {
				status = StatusOutOfResources
				a.logf("C-STORE %s from %s: storing failed: %v", inst, a.calling, err)
			} else {
				a.logf("C-STORE %s from %s: stored %s (%d bytes)", inst, a.calling, st.Path, st.DataSetBytes)
				if a.s.cfg.OnStored != nil {
					a.s.cfg.OnStored(st)
				}
			}
		} else {
			a.logf("C-STORE %s from %s: received %d bytes (not stored: no directory)", inst, a.calling, a.dataBytes)
		}
	default:
		status = StatusUnrecognizedOperation
		a.logf("%s from %s not supported by the demo acceptor", cs.Name(), a.calling)
	}
	cmd := appendResponseCommand(nil, a.sopClass, cs.CommandField|0x8000, cs.MessageID, status, inst)
	return a.sendCommand(a.cmdCtx, cmd)
}

// sendCommand sends a command set as P-DATA-TF PDUs, fragmented to the
// peer's maximum PDU length.
func (a *assoc) sendCommand(ctx uint8, cmd []byte) error {
	maxData := len(cmd)
	if a.peerMax != 0 && int(a.peerMax) < maxData+6 {
		maxData = max(int(a.peerMax)-6, 1)
	}
	a.out = a.out[:0]
	for off := 0; off < len(cmd) || off == 0; {
		end := min(off+maxData, len(cmd))
		mch := pdu.MCHCommand
		if end == len(cmd) {
			mch |= pdu.MCHLast
		}
		p := pdu.PDataTF{PDVs: []pdu.PDV{{ContextID: ctx, MessageControlHeader: mch, Data: cmd[off:end]}}}
		a.out = p.AppendEncode(a.out)
		off = end
		if end == len(cmd) {
			break
		}
	}
	return a.send(a.out)
}

// abandon drops a store in progress (connection gone mid data set).
func (a *assoc) abandon() {
	if a.store != nil {
		a.store.discard()
		a.store = nil
	}
}

// appendResponseCommand appends a DIMSE response command set (implicit VR
// little endian, group 0000, PS3.7 §9.3): AffectedSOPClassUID, CommandField,
// MessageIDBeingRespondedTo, CommandDataSetType 0x0101, Status and, when
// non-empty, AffectedSOPInstanceUID.
func appendResponseCommand(dst []byte, sopClass string, field, msgID, status uint16, sopInstance string) []byte {
	var body []byte
	if sopClass != "" {
		body = pduconn.AppendElem(body, 0x0000, 0x0002, pduconn.PadUID(sopClass))
	}
	body = pduconn.AppendElem(body, 0x0000, 0x0100, binary.LittleEndian.AppendUint16(nil, field))
	body = pduconn.AppendElem(body, 0x0000, 0x0120, binary.LittleEndian.AppendUint16(nil, msgID))
	body = pduconn.AppendElem(body, 0x0000, 0x0800, binary.LittleEndian.AppendUint16(nil, pdu.NoDataSet))
	body = pduconn.AppendElem(body, 0x0000, 0x0900, binary.LittleEndian.AppendUint16(nil, status))
	if sopInstance != "" {
		body = pduconn.AppendElem(body, 0x0000, 0x1000, pduconn.PadUID(sopInstance))
	}
	dst = pduconn.AppendElem(dst, 0x0000, 0x0000, binary.LittleEndian.AppendUint32(nil, uint32(len(body))))
	return append(dst, body...)
}

// padEven pads v to even length with pad (NUL for UI, space for text VRs).
func padEven(v []byte, pad byte) []byte {
	if len(v)%2 == 1 {
		return append(v, pad)
	}
	return v
}
