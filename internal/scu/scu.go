// Package scu is the DICOM requester (SCU) of the project's load tools — `dicomgate bench` (internal/loadgen) and
// the real-Envoy A/B (bench/cmd/envoyab) — built on sdk/pdu and internal/pduconn. It opens one association
// (TCP with TCP_NODELAY, optionally TLS), proposes the configured presentation contexts, optionally a user
// identity, and runs C-ECHO, C-STORE and release on it, timing the phases on the monotonic clock.
//
// Everything is checked, so a tool counts only what the peer really did: an association is open only on an
// A-ASSOCIATE-AC accepting at least one proposed context; a C-ECHO or C-STORE succeeds only on its response
// with status Success (a failing status is a *pduconn.StatusError); a release only on an A-RELEASE-RP. An
// A-ASSOCIATE-RJ is a *RejectedError. Every failure is an *Error naming the step it happened in.
package scu

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/dicomgate/dicomgate/internal/pduconn"
	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// UIDs the requester proposes.
const (
	// UIDApplicationContext is the DICOM application context name.
	UIDApplicationContext = "1.2.840.10008.3.1.1.1"
	// UIDImplicitVRLittleEndian is the default transfer syntax.
	UIDImplicitVRLittleEndian = "1.2.840.10008.1.2"
	// UIDVerification is the Verification SOP class (C-ECHO).
	UIDVerification = "1.2.840.10008.1.1"
	// UIDSecondaryCapture is the SOP class of generated instances.
	UIDSecondaryCapture = "1.2.840.10008.5.1.4.1.1.7"
	// uidImplClass is a 2.25 UUID-derived implementation class UID (PS3.5 §B.2).
	uidImplClass = "2.25.196723401123859718126049873926419837565"
)

// DefaultMaxPDU is the maximum P-DATA-TF length the requester announces and fragments to by default (dcmtk's
// default).
const DefaultMaxPDU = 16384

// Context is one proposed presentation context: an abstract syntax with one transfer syntax.
type Context struct {
	AbstractSyntax, TransferSyntax string
}

// Config says how to open an association.
type Config struct {
	// Addr is host:port of the acceptor (or the proxy in front of it).
	Addr string
	// TLS, when non-nil, wraps the connection (a client certificate in it gives mutual TLS).
	TLS *tls.Config
	// CallingAE and CalledAE are the AE titles of the A-ASSOCIATE-RQ.
	CallingAE, CalledAE string
	// Contexts are the proposed presentation contexts, IDs 1, 3, 5, … in this order (at most 128).
	Contexts []Context
	// Username, when set, adds a user identity sub-item: type 1 (username), or type 2 with Passcode.
	Username, Passcode string
	// MaxPDU is the maximum P-DATA-TF length this requester announces (0: DefaultMaxPDU).
	MaxPDU uint32
	// VersionName is the implementation version name (0: "DICOMGATE_SCU").
	VersionName string
	// Timeout bounds every network step (0: 10 s).
	Timeout time.Duration
}

// RQ encodes the A-ASSOCIATE-RQ of c.
func (c Config) RQ() []byte {
	maxPDU := c.MaxPDU
	if maxPDU == 0 {
		maxPDU = DefaultMaxPDU
	}
	name := c.VersionName
	if name == "" {
		name = "DICOMGATE_SCU"
	}
	called, calling := make([]byte, 16), make([]byte, 16)
	pdu.PadAETitle(called, c.CalledAE)
	pdu.PadAETitle(calling, c.CallingAE)
	rq := pdu.AssociateRQ{
		ProtocolVersion:    1,
		CalledAETitleRaw:   called,
		CallingAETitleRaw:  calling,
		ApplicationContext: []byte(UIDApplicationContext),
		UserInformation: pdu.UserInformation{
			MaxLength: maxPDU, HasMaxLength: true,
			ImplementationClassUID:    []byte(uidImplClass),
			ImplementationVersionName: []byte(name),
		},
	}
	for i, pc := range c.Contexts {
		rq.PresentationContexts = append(rq.PresentationContexts, pdu.PresentationContextRQ{
			ID: uint8(2*i + 1), AbstractSyntax: []byte(pc.AbstractSyntax), TransferSyntaxes: [][]byte{[]byte(pc.TransferSyntax)},
		})
	}
	if c.Username != "" {
		ui := pdu.UserIdentity{Type: pdu.UserIdentityUsername, Primary: []byte(c.Username)}
		if c.Passcode != "" {
			ui.Type, ui.Secondary = pdu.UserIdentityUsernamePasscode, []byte(c.Passcode)
		}
		rq.UserInformation.UserIdentity, rq.UserInformation.HasUserIdentity = ui, true
	}
	return rq.AppendEncode(nil)
}

// Error is a failure in one step of an association: "connect", "tls", "associate", "echo", "store" or
// "release".
type Error struct {
	Step string
	Err  error
}

// Error is "step: cause".
func (e *Error) Error() string { return e.Step + ": " + e.Err.Error() }

// Unwrap returns the cause (errors.Is/As see through the step).
func (e *Error) Unwrap() error { return e.Err }

func stepErr(step string, err error) error { return &Error{Step: step, Err: err} }

// RejectedError is an A-ASSOCIATE-RJ (PS3.8 §9.3.4).
type RejectedError struct {
	Result pdu.RJResult
	Source pdu.RJSource
	// Reason means what pdu.RJDiagnostic{Source, Reason} names.
	Reason pdu.RJReason
}

// Error names the A-ASSOCIATE-RJ's result, source and reason (PS3.8 §9.3.4).
func (e *RejectedError) Error() string {
	return fmt.Sprintf("association rejected (A-ASSOCIATE-RJ result %d, source %d, reason %d)", e.Result, e.Source, e.Reason)
}

// Timing are the phases of one association on the client's monotonic clock.
type Timing struct {
	// Connect is the TCP connect; Handshake the TLS handshake after it (0 without TLS).
	Connect, Handshake time.Duration
	// RQAC runs from writing the A-ASSOCIATE-RQ to a complete A-ASSOCIATE-AC (or A-ASSOCIATE-RJ).
	RQAC time.Duration
	// Total runs from the start of the TCP connect to the A-RELEASE-RP (set by Run).
	Total time.Duration
}

// Assoc is one open association.
type Assoc struct {
	c   net.Conn
	cfg Config
	r   *pduconn.Reader
	// PeerMax is the acceptor's maximum P-DATA-TF length (0: unlimited).
	PeerMax uint32
	// Started is when the TCP connect began.
	Started  time.Time
	accepted map[Context]uint8 // accepted context -> presentation context ID
}

// Associate connects (TCP_NODELAY), completes the TLS handshake when configured, sends rq (cfg.RQ()) and waits
// for the A-ASSOCIATE-AC, which must accept at least one proposed context. The association is open; the caller
// releases or aborts it.
func Associate(cfg Config, rq []byte) (*Assoc, Timing, error) {
	var tm Timing
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	start := time.Now()
	d := net.Dialer{Timeout: cfg.Timeout}
	c, err := d.Dial("tcp", cfg.Addr)
	if err != nil {
		return nil, tm, stepErr("connect", err)
	}
	if err := c.(*net.TCPConn).SetNoDelay(true); err != nil {
		c.Close()
		return nil, tm, stepErr("connect", fmt.Errorf("TCP_NODELAY: %w", err))
	}
	tm.Connect = time.Since(start)
	_ = c.SetDeadline(time.Now().Add(cfg.Timeout))
	if cfg.TLS != nil {
		tc := tls.Client(c, cfg.TLS)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, tm, stepErr("tls", fmt.Errorf("TLS handshake with %s: %w", cfg.Addr, err))
		}
		c = tc
		tm.Handshake = time.Since(start) - tm.Connect
	}
	a := &Assoc{c: c, cfg: cfg, r: pduconn.NewReader(c), Started: start}
	t0 := time.Now()
	fail := func(err error) (*Assoc, Timing, error) {
		c.Close()
		return nil, tm, stepErr("associate", err)
	}
	if _, err := c.Write(rq); err != nil {
		return fail(fmt.Errorf("writing the A-ASSOCIATE-RQ: %w", err))
	}
	p, err := a.r.ReadPDU()
	tm.RQAC = time.Since(t0)
	if err != nil {
		return fail(fmt.Errorf("waiting for the A-ASSOCIATE-AC: %w", err))
	}
	m, err := a.r.Dec.Decode(p)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", pdu.Type(p[0]), err))
	}
	var ac *pdu.AssociateAC
	switch m := m.(type) {
	case *pdu.AssociateAC:
		ac = m
	case *pdu.AssociateRJ:
		return fail(&RejectedError{Result: m.Result, Source: m.Source, Reason: m.Reason})
	default:
		return fail(fmt.Errorf("got %s instead of the A-ASSOCIATE-AC", m.Type()))
	}
	a.accepted = map[Context]uint8{}
	for _, pc := range ac.PresentationContexts {
		i := int(pc.ID-1) / 2
		if pc.Result != pdu.PCAccepted || pc.ID%2 == 0 || i >= len(cfg.Contexts) {
			continue
		}
		if string(pc.TransferSyntax) != cfg.Contexts[i].TransferSyntax {
			return fail(fmt.Errorf("A-ASSOCIATE-AC accepts context %d with transfer syntax %s, which was not proposed", pc.ID, pc.TransferSyntax))
		}
		a.accepted[cfg.Contexts[i]] = pc.ID
	}
	if len(a.accepted) == 0 {
		return fail(errors.New("the A-ASSOCIATE-AC accepts none of the proposed presentation contexts"))
	}
	if ac.UserInformation.HasMaxLength {
		a.PeerMax = ac.UserInformation.MaxLength
	}
	return a, tm, nil
}

// ContextID returns the presentation context ID the acceptor accepted for pc.
func (a *Assoc) ContextID(pc Context) (uint8, bool) {
	id, ok := a.accepted[pc]
	return id, ok
}

// Echo sends a C-ECHO-RQ (message msgID) and waits for its C-ECHO-RSP with status Success.
func (a *Assoc) Echo(msgID uint16) error {
	id, ok := a.ContextID(Context{UIDVerification, UIDImplicitVRLittleEndian})
	if !ok {
		return stepErr("echo", errors.New("the Verification context (implicit VR little endian) was not accepted"))
	}
	_ = a.c.SetDeadline(time.Now().Add(a.cfg.Timeout))
	p := pdu.PDataTF{PDVs: []pdu.PDV{{ContextID: id, MessageControlHeader: pdu.MCHCommand | pdu.MCHLast, Data: pduconn.EchoCommand(msgID)}}}
	if _, err := a.c.Write(p.AppendEncode(nil)); err != nil {
		return stepErr("echo", fmt.Errorf("writing the C-ECHO-RQ: %w", err))
	}
	if err := a.r.AwaitRSP(0x8030, msgID, ""); err != nil {
		return stepErr("echo", err)
	}
	return nil
}

// Store sends the C-STORE-RQ of s (message msgID: the command, then s's pre-encoded data set) and waits up to
// timeout for its C-STORE-RSP, which must have status Success and name s's instance.
func (a *Assoc) Store(s *Stream, msgID uint16, timeout time.Duration) error {
	if a.PeerMax != 0 && a.PeerMax < s.MaxPDU {
		return stepErr("store", fmt.Errorf("the acceptor takes P-DATA-TF of at most %d bytes; the data set was encoded for %d", a.PeerMax, s.MaxPDU))
	}
	_ = a.c.SetDeadline(time.Now().Add(timeout))
	cmd := pdu.PDataTF{PDVs: []pdu.PDV{{ContextID: s.ContextID, MessageControlHeader: pdu.MCHCommand | pdu.MCHLast,
		Data: pduconn.StoreCommand(s.Instance.SOPClass, msgID, s.Instance.SOPInstance)}}}
	if _, err := a.c.Write(cmd.AppendEncode(nil)); err != nil {
		return stepErr("store", fmt.Errorf("writing the C-STORE-RQ command: %w", err))
	}
	if _, err := a.c.Write(s.Data); err != nil {
		return stepErr("store", fmt.Errorf("writing the data set (%d bytes): %w", len(s.Data), err))
	}
	if err := a.r.AwaitStoreRSP(msgID, s.Instance.SOPInstance); err != nil {
		return stepErr("store", err)
	}
	return nil
}

// Release sends A-RELEASE-RQ, waits for A-RELEASE-RP and closes the connection.
func (a *Assoc) Release() error {
	defer a.c.Close()
	if err := a.r.Release(a.cfg.Timeout); err != nil {
		return stepErr("release", err)
	}
	return nil
}

// Abort closes the connection without a release.
func (a *Assoc) Abort() { a.c.Close() }

// Run opens and releases one association and returns its timing.
func Run(cfg Config, rq []byte) (Timing, error) {
	a, tm, err := Associate(cfg, rq)
	if err != nil {
		return tm, err
	}
	if err := a.Release(); err != nil {
		return tm, err
	}
	tm.Total = time.Since(a.Started)
	return tm, nil
}
