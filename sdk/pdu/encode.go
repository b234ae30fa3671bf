package pdu

import "encoding/binary"

// Encoding. Every AppendEncode appends the wire form of a PDU to dst and
// returns the extended slice. A decoded value re-encodes byte for byte
// (reserved fields of the PDU and of its items, item order, unknown items
// and stripped UID NULs are remembered), except that the reserved header
// byte of sub-items is written as zero. A value built by hand is encoded in the standard item
// order. Item contents longer than 65,535 bytes cannot be represented; the
// caller must keep within that limit (decoded values always do).

// AppendEncode appends the A-ASSOCIATE-RQ PDU to dst. A zero ProtocolVersion
// is written as 1; AE title fields other than 16 bytes long are space padded
// or truncated to 16.
func (rq *AssociateRQ) AppendEncode(dst []byte) []byte {
	a := assoc{
		version: &rq.ProtocolVersion, called: &rq.CalledAETitleRaw, calling: &rq.CallingAETitleRaw,
		appCtx: &rq.ApplicationContext, ui: &rq.UserInformation, unknown: &rq.UnknownItems,
		raw: &rq.raw, rq: rq,
	}
	return appendAssoc(dst, TypeAssociateRQ, &a)
}

// AppendEncode appends the A-ASSOCIATE-AC PDU to dst (see
// AssociateRQ.AppendEncode).
func (ac *AssociateAC) AppendEncode(dst []byte) []byte {
	a := assoc{
		version: &ac.ProtocolVersion, called: &ac.CalledAETitleRaw, calling: &ac.CallingAETitleRaw,
		appCtx: &ac.ApplicationContext, ui: &ac.UserInformation, unknown: &ac.UnknownItems,
		raw: &ac.raw, ac: ac,
	}
	return appendAssoc(dst, TypeAssociateAC, &a)
}

// assoc points at the fields RQ and AC share, so one function encodes both.
type assoc struct {
	version         *uint16
	called, calling *[]byte
	appCtx          *[]byte
	ui              *UserInformation
	unknown         *[]RawItem
	raw             *associateRaw
	rq              *AssociateRQ // exactly one of rq, ac is set
	ac              *AssociateAC
}

func appendAssoc(dst []byte, t Type, a *assoc) []byte {
	start := len(dst)
	raw := a.raw
	dst = append(dst, byte(t), raw.hdrReserved, 0, 0, 0, 0)
	v := *a.version
	if v == 0 {
		v = 1
	}
	dst = binary.BigEndian.AppendUint16(dst, v)
	dst = binary.BigEndian.AppendUint16(dst, raw.reserved1)
	dst = appendAEField(dst, *a.called)
	dst = appendAEField(dst, *a.calling)
	if len(raw.reserved2) == associateReserved2Len {
		dst = append(dst, raw.reserved2...)
	} else {
		dst = append(dst, make([]byte, associateReserved2Len)...)
	}

	nPC := 0
	if a.rq != nil {
		nPC = len(a.rq.PresentationContexts)
	} else {
		nPC = len(a.ac.PresentationContexts)
	}
	appendPC := func(dst []byte, i int) []byte {
		if a.rq != nil {
			return appendPCRQ(dst, &a.rq.PresentationContexts[i])
		}
		return appendPCAC(dst, &a.ac.PresentationContexts[i])
	}
	doneApp, doneUI, donePC, doneUnknown := false, false, 0, 0
	if raw.decoded {
		for _, r := range raw.order {
			switch {
			case r.raw:
				if int(r.index) < len(*a.unknown) {
					dst = appendRaw(dst, &(*a.unknown)[int(r.index)])
					doneUnknown = max(doneUnknown, int(r.index)+1)
				}
			case r.typ == ItemApplicationContext:
				if !doneApp {
					dst = appendUIDItem(dst, ItemApplicationContext, raw.appRes, *a.appCtx, raw.appCtxNUL)
					doneApp = true
				}
			case r.typ == ItemUserInformation:
				if !doneUI {
					dst = a.ui.appendItem(dst, raw.uiRes)
					doneUI = true
				}
			default: // a presentation context
				if int(r.index) < nPC {
					dst = appendPC(dst, int(r.index))
					donePC = max(donePC, int(r.index)+1)
				}
			}
		}
	}
	// Whatever the order did not cover (values built or extended by hand).
	if !doneApp && (!raw.decoded || *a.appCtx != nil) {
		dst = appendUIDItem(dst, ItemApplicationContext, 0, *a.appCtx, false)
	}
	for i := donePC; i < nPC; i++ {
		dst = appendPC(dst, i)
	}
	if !doneUI && (!raw.decoded || !a.ui.isZero()) {
		dst = a.ui.appendItem(dst, 0)
	}
	for i := doneUnknown; i < len(*a.unknown); i++ {
		dst = appendRaw(dst, &(*a.unknown)[i])
	}
	return patchPDULength(dst, start)
}

func patchPDULength(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start+2:start+6], uint32(len(dst)-start-HeaderLen))
	return dst
}

// appendAEField writes a 16-byte AE title field: the raw field as decoded,
// or a hand-set title padded with spaces / truncated.
func appendAEField(dst, ae []byte) []byte {
	if len(ae) >= AETitleLen {
		return append(dst, ae[:AETitleLen]...)
	}
	dst = append(dst, ae...)
	for i := len(ae); i < AETitleLen; i++ {
		dst = append(dst, ' ')
	}
	return dst
}

// beginItem appends a 4-byte item header with a zero length and returns the
// position to patch with endItem.
func beginItem(dst []byte, typ, reserved uint8) ([]byte, int) {
	return append(dst, typ, reserved, 0, 0), len(dst)
}

func endItem(dst []byte, pos int) []byte {
	n := len(dst) - pos - 4
	if n > 0xffff {
		n = 0xffff
	}
	binary.BigEndian.PutUint16(dst[pos+2:pos+4], uint16(n))
	return dst
}

func appendUIDItem(dst []byte, typ, reserved uint8, uid []byte, nul bool) []byte {
	dst, pos := beginItem(dst, typ, reserved)
	dst = append(dst, uid...)
	if nul {
		dst = append(dst, 0)
	}
	return endItem(dst, pos)
}

func appendRaw(dst []byte, r *RawItem) []byte {
	dst, pos := beginItem(dst, r.Type, r.Reserved)
	dst = append(dst, r.Data...)
	return endItem(dst, pos)
}

func appendPCRQ(dst []byte, pc *PresentationContextRQ) []byte {
	dst, pos := beginItem(dst, ItemPresentationContextRQ, pc.res[0])
	dst = append(dst, pc.ID, pc.res[1], pc.res[2], pc.res[3])
	as := func(dst []byte) []byte {
		if pc.AbstractSyntax == nil {
			return dst
		}
		return appendUIDItem(dst, ItemAbstractSyntax, 0, pc.AbstractSyntax, pc.nul&1 != 0)
	}
	for i, ts := range pc.TransferSyntaxes {
		if i == pc.asPos {
			dst = as(dst)
		}
		dst = appendUIDItem(dst, ItemTransferSyntax, 0, ts, i < 63 && pc.nul&(1<<(i+1)) != 0)
	}
	if pc.asPos >= len(pc.TransferSyntaxes) || pc.asPos < 0 {
		dst = as(dst)
	}
	return endItem(dst, pos)
}

func appendPCAC(dst []byte, pc *PresentationContextAC) []byte {
	dst, pos := beginItem(dst, ItemPresentationContextAC, pc.res[0])
	dst = append(dst, pc.ID, pc.res[1], byte(pc.Result), pc.res[2])
	if pc.TransferSyntax != nil {
		dst = appendUIDItem(dst, ItemTransferSyntax, 0, pc.TransferSyntax, pc.nul)
	}
	return endItem(dst, pos)
}

// isZero reports whether no user information field is set.
func (u *UserInformation) isZero() bool {
	return !u.HasMaxLength && u.ImplementationClassUID == nil && u.ImplementationVersionName == nil &&
		!u.HasAsyncOps && len(u.RoleSelections) == 0 && len(u.ExtendedNegotiations) == 0 &&
		len(u.CommonExtendedNegotiations) == 0 && !u.HasUserIdentity && !u.HasUserIdentityResponse &&
		len(u.Unknown) == 0
}

// appendItem appends the 0x50 item: sub-items in decoded order, then any not
// covered by it in the standard order 0x51-0x59, then unknown ones.
func (u *UserInformation) appendItem(dst []byte, reserved uint8) []byte {
	dst, pos := beginItem(dst, ItemUserInformation, reserved)
	var done uint16 // singleton sub-items written (bit type-0x51)
	doneRS, doneEN, doneCE, doneUnknown := 0, 0, 0, 0
	if u.decoded {
		for _, r := range u.order {
			switch {
			case r.raw:
				if int(r.index) < len(u.Unknown) {
					dst = appendRaw(dst, &u.Unknown[int(r.index)])
					doneUnknown = max(doneUnknown, int(r.index)+1)
				}
			case r.typ == ItemRoleSelection:
				if int(r.index) < len(u.RoleSelections) {
					dst = appendRole(dst, &u.RoleSelections[int(r.index)])
					doneRS = max(doneRS, int(r.index)+1)
				}
			case r.typ == ItemSOPClassExtendedNeg:
				if int(r.index) < len(u.ExtendedNegotiations) {
					dst = appendExtNeg(dst, &u.ExtendedNegotiations[int(r.index)])
					doneEN = max(doneEN, int(r.index)+1)
				}
			case r.typ == ItemSOPClassCommonExtendNeg:
				if int(r.index) < len(u.CommonExtendedNegotiations) {
					dst = appendCommonExtNeg(dst, &u.CommonExtendedNegotiations[int(r.index)])
					doneCE = max(doneCE, int(r.index)+1)
				}
			case r.typ >= ItemMaxLength && r.typ <= ItemUserIdentityAC:
				bit := uint16(1) << (r.typ - ItemMaxLength)
				if done&bit == 0 {
					dst = u.appendSingle(dst, r.typ)
					done |= bit
				}
			}
		}
	}
	for t := ItemMaxLength; t <= ItemUserIdentityAC; t++ {
		switch t {
		case ItemRoleSelection:
			for i := doneRS; i < len(u.RoleSelections); i++ {
				dst = appendRole(dst, &u.RoleSelections[i])
			}
		case ItemSOPClassExtendedNeg:
			for i := doneEN; i < len(u.ExtendedNegotiations); i++ {
				dst = appendExtNeg(dst, &u.ExtendedNegotiations[i])
			}
		case ItemSOPClassCommonExtendNeg:
			for i := doneCE; i < len(u.CommonExtendedNegotiations); i++ {
				dst = appendCommonExtNeg(dst, &u.CommonExtendedNegotiations[i])
			}
		default:
			if done&(1<<(t-ItemMaxLength)) == 0 {
				dst = u.appendSingle(dst, t)
			}
		}
	}
	for i := doneUnknown; i < len(u.Unknown); i++ {
		dst = appendRaw(dst, &u.Unknown[i])
	}
	return endItem(dst, pos)
}

// appendSingle appends singleton sub-item t if it is present.
func (u *UserInformation) appendSingle(dst []byte, t uint8) []byte {
	switch t {
	case ItemMaxLength:
		if u.HasMaxLength {
			dst = append(dst, ItemMaxLength, 0, 0, 4)
			dst = binary.BigEndian.AppendUint32(dst, u.MaxLength)
		}
	case ItemImplementationClassUID:
		if u.ImplementationClassUID != nil {
			dst = appendUIDItem(dst, ItemImplementationClassUID, 0, u.ImplementationClassUID, u.implNUL)
		}
	case ItemAsyncOperationsWindow:
		if u.HasAsyncOps {
			dst = append(dst, ItemAsyncOperationsWindow, 0, 0, 4)
			dst = binary.BigEndian.AppendUint16(dst, u.AsyncOps.MaxInvoked)
			dst = binary.BigEndian.AppendUint16(dst, u.AsyncOps.MaxPerformed)
		}
	case ItemImplementationVersion:
		if u.ImplementationVersionName != nil {
			dst = appendUIDItem(dst, ItemImplementationVersion, 0, u.ImplementationVersionName, false)
		}
	case ItemUserIdentityRQ:
		if u.HasUserIdentity {
			id := &u.UserIdentity
			var pos int
			dst, pos = beginItem(dst, ItemUserIdentityRQ, 0)
			pr := id.PositiveResponseRaw
			if !id.PositiveResponseRequested {
				pr = 0
			} else if pr == 0 {
				pr = 1
			}
			dst = append(dst, id.Type, pr)
			dst = appendLenPrefixed(dst, id.Primary)
			dst = appendLenPrefixed(dst, id.Secondary)
			dst = endItem(dst, pos)
		}
	case ItemUserIdentityAC:
		if u.HasUserIdentityResponse {
			var pos int
			dst, pos = beginItem(dst, ItemUserIdentityAC, 0)
			dst = appendLenPrefixed(dst, u.UserIdentityResponse)
			dst = endItem(dst, pos)
		}
	}
	return dst
}

func appendLenPrefixed(dst, b []byte) []byte {
	n := len(b)
	if n > 0xffff {
		n = 0xffff
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	return append(dst, b[:n]...)
}

func appendNULUID(dst, uid []byte, nul bool) []byte {
	n := len(uid)
	if nul {
		n++
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	dst = append(dst, uid...)
	if nul {
		dst = append(dst, 0)
	}
	return dst
}

func appendRole(dst []byte, r *RoleSelection) []byte {
	dst, pos := beginItem(dst, ItemRoleSelection, 0)
	dst = appendNULUID(dst, r.SOPClassUID, r.nul)
	dst = append(dst, r.SCURole, r.SCPRole)
	return endItem(dst, pos)
}

func appendExtNeg(dst []byte, e *ExtendedNegotiation) []byte {
	dst, pos := beginItem(dst, ItemSOPClassExtendedNeg, 0)
	dst = appendNULUID(dst, e.SOPClassUID, e.nul)
	dst = append(dst, e.Info...)
	return endItem(dst, pos)
}

func appendCommonExtNeg(dst []byte, c *CommonExtendedNegotiation) []byte {
	dst, pos := beginItem(dst, ItemSOPClassCommonExtendNeg, 0)
	dst = appendLenPrefixed(dst, c.SOPClassUID)
	dst = appendLenPrefixed(dst, c.ServiceClassUID)
	lpos := len(dst)
	dst = append(dst, 0, 0)
	for _, u := range c.RelatedGeneralSOPUID {
		dst = appendLenPrefixed(dst, u)
	}
	n := len(dst) - lpos - 2
	if n > 0xffff {
		n = 0xffff
	}
	binary.BigEndian.PutUint16(dst[lpos:], uint16(n))
	return endItem(dst, pos)
}

// AppendEncode appends the 10-byte A-ASSOCIATE-RJ PDU to dst.
func (rj *AssociateRJ) AppendEncode(dst []byte) []byte {
	return append(dst, byte(TypeAssociateRJ), rj.hdrReserved, 0, 0, 0, 4, rj.reserved, byte(rj.Result), byte(rj.Source), byte(rj.Reason))
}

// AppendEncode appends the 10-byte A-RELEASE-RQ PDU to dst.
func (r *ReleaseRQ) AppendEncode(dst []byte) []byte {
	dst = append(dst, byte(TypeReleaseRQ), r.hdrReserved, 0, 0, 0, 4)
	return append(dst, r.Reserved[:]...)
}

// AppendEncode appends the 10-byte A-RELEASE-RP PDU to dst.
func (r *ReleaseRP) AppendEncode(dst []byte) []byte {
	dst = append(dst, byte(TypeReleaseRP), r.hdrReserved, 0, 0, 0, 4)
	return append(dst, r.Reserved[:]...)
}

// AppendEncode appends the 10-byte A-ABORT PDU to dst.
func (a *Abort) AppendEncode(dst []byte) []byte {
	return append(dst, byte(TypeAbort), a.hdrReserved, 0, 0, 0, 4, a.Reserved[0], a.Reserved[1], byte(a.Source), byte(a.Reason))
}

// AppendEncode appends the P-DATA-TF PDU to dst, one PDV item per entry of
// PDVs.
func (p *PDataTF) AppendEncode(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, byte(TypePDataTF), p.hdrReserved, 0, 0, 0, 0)
	for i := range p.PDVs {
		v := &p.PDVs[i]
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v.Data)+2))
		dst = append(dst, v.ContextID, v.MessageControlHeader)
		dst = append(dst, v.Data...)
	}
	return patchPDULength(dst, start)
}
