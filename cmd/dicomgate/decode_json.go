package main

import (
	"errors"
	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// pduView is the JSON view of one PDU, as printed one per line by
// `dicomgate decode --json`. Keys appear only where they apply to the PDU
// type. It never carries a user-identity passcode or token: for user
// identity types 1 and 2 only the username is shown, for types 3-5 only the
// length of the primary field.
type pduView struct {
	Offset  int    `json:"offset"`
	PDUType uint8  `json:"pduType"`
	Type    string `json:"type"`
	Length  uint32 `json:"length"`

	// RefusedAsMalformed: the A-ASSOCIATE-RQ is ambiguous (a PACS could read
	// a field differently); the filter closes it as malformed for this reason.
	RefusedAsMalformed *string `json:"refusedAsMalformed,omitempty"`

	// A-ASSOCIATE-RQ / -AC.
	ProtocolVersion      *uint16       `json:"protocolVersion,omitempty"`
	CalledAETitle        *string       `json:"calledAETitle,omitempty"`
	CallingAETitle       *string       `json:"callingAETitle,omitempty"`
	ApplicationContext   *string       `json:"applicationContext,omitempty"`
	PresentationContexts any           `json:"presentationContexts,omitempty"` // []pcRQView or []pcACView
	UserInformation      *userInfoView `json:"userInformation,omitempty"`

	// A-ASSOCIATE-RJ (result, source, reason) and A-ABORT (source, reason).
	Result *uint8 `json:"result,omitempty"`
	Source *uint8 `json:"source,omitempty"`
	Reason *uint8 `json:"reason,omitempty"`

	// P-DATA-TF.
	PDVs *[]pdvView `json:"pdvs,omitempty"`
}

// pcRQView is a proposed presentation context.
type pcRQView struct {
	ID               uint8    `json:"id"`
	AbstractSyntax   string   `json:"abstractSyntax"`
	TransferSyntaxes []string `json:"transferSyntaxes"`
}

// pcACView is a presentation context result; transferSyntax is shown for
// accepted contexts only.
type pcACView struct {
	ID             uint8  `json:"id"`
	Result         uint8  `json:"result"`
	TransferSyntax string `json:"transferSyntax,omitempty"`
}

// userInfoView is the user information item.
type userInfoView struct {
	MaxPDULength              *uint32           `json:"maxPDULength,omitempty"`
	ImplementationClassUID    string            `json:"implementationClassUID,omitempty"`
	ImplementationVersionName string            `json:"implementationVersionName,omitempty"`
	AsyncOps                  *asyncOpsView     `json:"asyncOps,omitempty"`
	RoleSelections            []roleView        `json:"roleSelections,omitempty"`
	UserIdentity              *userIdentityView `json:"userIdentity,omitempty"`
}

// asyncOpsView is the asynchronous operations window.
type asyncOpsView struct {
	MaxInvoked   uint16 `json:"maxInvoked"`
	MaxPerformed uint16 `json:"maxPerformed"`
}

// roleView is one SCP/SCU role selection.
type roleView struct {
	SOPClassUID string `json:"sopClassUID"`
	SCURole     uint8  `json:"scuRole"`
	SCPRole     uint8  `json:"scpRole"`
}

// userIdentityView shows a user identity without its secret: primaryField
// (the username) only for types 1 and 2, primaryFieldLength for the opaque
// types 3-5 (Kerberos ticket, SAML assertion, JWT); the secondary field (the
// passcode) is never shown. In an A-ASSOCIATE-AC it shows only the length
// of the server response.
type userIdentityView struct {
	Type                      *uint8  `json:"type,omitempty"`
	PositiveResponseRequested *bool   `json:"positiveResponseRequested,omitempty"`
	PrimaryField              *string `json:"primaryField,omitempty"`
	PrimaryFieldLength        *int    `json:"primaryFieldLength,omitempty"`
	ServerResponseLength      *int    `json:"serverResponseLength,omitempty"`
}

// pdvView is one PDV item of a P-DATA-TF. For the last fragment of a command
// set the reassembled command is decoded into commandField (its DIMSE name)
// and sopClassUID (affected or requested SOP class).
type pdvView struct {
	ContextID    uint8  `json:"contextID"`
	Command      bool   `json:"command"`
	Last         bool   `json:"last"`
	Length       int    `json:"length"`
	CommandField string `json:"commandField,omitempty"`
	SOPClassUID  string `json:"sopClassUID,omitempty"`
	CommandError string `json:"commandError,omitempty"`
}

// pduViewer turns the PDUs of one direction of an association into views,
// reusing its decoded values and reassembling command sets split over
// several PDVs.
type pduViewer struct {
	dec     pdu.Decoder
	command []byte
	cs      pdu.CommandSet
}

// view decodes one whole PDU p found at stream offset off.
func (v *pduViewer) view(off int, p []byte) (*pduView, error) {
	h, _, err := (&pdu.Framer{MaxPDULength: v.dec.MaxPDULength}).Peek(p)
	if err != nil {
		return nil, err
	}
	pv := &pduView{Offset: off, PDUType: uint8(h.Type), Type: h.Type.String(), Length: h.Length}
	m, err := v.dec.Decode(p)
	if errors.Is(err, pdu.ErrAmbiguous) {
		// Shown anyway (decode is a viewer), with the reason the filter
		// refuses it: a PACS could read one of its fields differently.
		lenient := v.dec
		lenient.AllowAmbiguous = true
		var err2 error
		if m, err2 = lenient.Decode(p); err2 != nil {
			return nil, err
		}
		pv.RefusedAsMalformed = ptr(err.Error())
	} else if err != nil {
		return nil, err
	}
	switch m := m.(type) {
	case *pdu.AssociateRQ:
		rq := m
		pv.ProtocolVersion = ptr(rq.ProtocolVersion)
		pv.CalledAETitle = ptr(string(rq.CalledAETitle()))
		pv.CallingAETitle = ptr(string(rq.CallingAETitle()))
		pv.ApplicationContext = ptr(string(rq.ApplicationContext))
		pcs := make([]pcRQView, 0, len(rq.PresentationContexts))
		for _, pc := range rq.PresentationContexts {
			ts := make([]string, 0, len(pc.TransferSyntaxes))
			for _, t := range pc.TransferSyntaxes {
				ts = append(ts, string(t))
			}
			pcs = append(pcs, pcRQView{ID: pc.ID, AbstractSyntax: string(pc.AbstractSyntax), TransferSyntaxes: ts})
		}
		pv.PresentationContexts = pcs
		pv.UserInformation = userInfo(&rq.UserInformation)
	case *pdu.AssociateAC:
		ac := m
		pv.ProtocolVersion = ptr(ac.ProtocolVersion)
		pv.CalledAETitle = ptr(string(ac.CalledAETitle()))
		pv.CallingAETitle = ptr(string(ac.CallingAETitle()))
		pv.ApplicationContext = ptr(string(ac.ApplicationContext))
		pcs := make([]pcACView, 0, len(ac.PresentationContexts))
		for _, pc := range ac.PresentationContexts {
			x := pcACView{ID: pc.ID, Result: uint8(pc.Result)}
			if pc.Result == pdu.PCAccepted {
				x.TransferSyntax = string(pc.TransferSyntax)
			}
			pcs = append(pcs, x)
		}
		pv.PresentationContexts = pcs
		pv.UserInformation = userInfo(&ac.UserInformation)
	case *pdu.AssociateRJ:
		pv.Result, pv.Source, pv.Reason = ptr(uint8(m.Result)), ptr(uint8(m.Source)), ptr(uint8(m.Reason))
	case *pdu.Abort:
		pv.Source, pv.Reason = ptr(uint8(m.Source)), ptr(uint8(m.Reason))
	case *pdu.PDataTF:
		pdvs := make([]pdvView, 0, len(m.PDVs))
		for _, d := range m.PDVs {
			x := pdvView{ContextID: d.ContextID, Command: d.IsCommand(), Last: d.IsLast(), Length: len(d.Data)}
			if d.IsCommand() {
				v.command = append(v.command, d.Data...)
				if d.IsLast() {
					if err := pdu.ReadCommandSet(v.command, &v.cs); err != nil {
						x.CommandError = err.Error()
					} else {
						x.CommandField = v.cs.Name()
						x.SOPClassUID = string(v.cs.AffectedSOPClassUID)
						if x.SOPClassUID == "" {
							x.SOPClassUID = string(v.cs.RequestedSOPClassUID)
						}
					}
					v.command = v.command[:0]
				}
			}
			pdvs = append(pdvs, x)
		}
		pv.PDVs = &pdvs
	}
	return pv, nil
}

func userInfo(u *pdu.UserInformation) *userInfoView {
	x := &userInfoView{
		ImplementationClassUID:    string(u.ImplementationClassUID),
		ImplementationVersionName: string(u.ImplementationVersionName),
	}
	if u.HasMaxLength {
		x.MaxPDULength = ptr(u.MaxLength)
	}
	if u.HasAsyncOps {
		x.AsyncOps = &asyncOpsView{MaxInvoked: u.AsyncOps.MaxInvoked, MaxPerformed: u.AsyncOps.MaxPerformed}
	}
	for _, r := range u.RoleSelections {
		x.RoleSelections = append(x.RoleSelections, roleView{SOPClassUID: string(r.SOPClassUID), SCURole: r.SCURole, SCPRole: r.SCPRole})
	}
	if u.HasUserIdentity {
		id := &u.UserIdentity
		x.UserIdentity = &userIdentityView{Type: ptr(id.Type), PositiveResponseRequested: ptr(id.PositiveResponseRequested)}
		if id.Type == pdu.UserIdentityUsername || id.Type == pdu.UserIdentityUsernamePasscode {
			x.UserIdentity.PrimaryField = ptr(string(id.Primary))
		} else {
			x.UserIdentity.PrimaryFieldLength = ptr(len(id.Primary))
		}
	} else if u.HasUserIdentityResponse {
		x.UserIdentity = &userIdentityView{ServerResponseLength: ptr(len(u.UserIdentityResponse))}
	}
	return x
}

func ptr[T any](v T) *T { return &v }
