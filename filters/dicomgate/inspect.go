package main

import (
	"encoding/binary"
	"errors"
	"strconv"
	"unsafe"

	"github.com/dicomgate/dicomgate/filters/dicomgate/internal/abi"
	"github.com/dicomgate/dicomgate/filters/dicomgate/internal/audit"
	"github.com/dicomgate/dicomgate/sdk/pdu"
	"github.com/dicomgate/dicomgate/sdk/policy"
	"github.com/dicomgate/dicomgate/sdk/rejectwire"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// The inspection: frame the first PDU with as few host calls as possible,
// decode the A-ASSOCIATE-RQ, ask the policy, and carry out its decision.

// inlineFetch: while the PDU header is unknown, a buffer up to this size is
// fetched whole in one host call (a typical RQ arrives in one read, so one
// call suffices); a larger buffer is fetched in two steps: the 6-byte header,
// then exactly the PDU.
const inlineFetch = 16 << 10

// maxPresentationContexts is the most presentation contexts a valid
// A-ASSOCIATE-RQ can propose (PS3.8 §9.3.2.2: unique odd IDs 1-255).
const maxPresentationContexts = 128

// inspect runs the framer over the buffered bytes with as few host calls as
// possible: none while the known PDU is still incomplete, one to read a
// small buffer (or the 6-byte header of a large one), one to read exactly
// the complete PDU.
func (c *conn) inspect(size int, eos bool) types.Action {
	p := c.p
	if size > 0 && c.firstData == 0 {
		c.firstData = abi.Now()
		c.count()
		p.sawData = true
	}
	if size > c.seen {
		c.seen = size
	}
	if size == 0 {
		if eos {
			// No association (conn.counted): close without a count or an
			// audit line, as if the client had closed.
			c.to(stateClosed)
			if err := abi.CloseDownstream(c.id); err != nil {
				proxywasm.LogError(c.logPrefix() + "close failed: " + err.Error())
			}
		}
		return types.ActionPause
	}
	if c.total == 0 {
		n := size
		if n > inlineFetch {
			n = pdu.HeaderLen
		}
		buf, err := abi.GetDownstreamData(0, n)
		if err != nil || len(buf) == 0 {
			return c.fail("reading " + strconv.Itoa(n) + " of " + strconv.Itoa(size) + " buffered bytes: " + errString(err))
		}
		h, need, err := p.framer.Peek(buf)
		if err != nil {
			return c.rejectFraming(err, buf)
		}
		if buf[0] != byte(pdu.TypeAssociateRQ) {
			return c.reject(reasonNotDICOM, "the first PDU is "+pdu.Type(buf[0]).String()+", not an A-ASSOCIATE-RQ")
		}
		if len(buf) < pdu.HeaderLen {
			return c.waitMore(eos, need)
		}
		c.total = h.Total()
		if size < c.total {
			return c.waitMore(eos, c.total-size)
		}
		if len(buf) >= c.total {
			return c.decide(buf[:c.total])
		}
	} else if size < c.total {
		return c.waitMore(eos, c.total-size)
	}
	buf, err := abi.GetDownstreamData(0, c.total)
	if err != nil || len(buf) < c.total {
		return c.fail("reading the " + strconv.Itoa(c.total) + "-byte A-ASSOCIATE-RQ: " + errString(err))
	}
	return c.decide(buf[:c.total])
}

// waitMore pauses for more bytes, or closes on end of stream.
func (c *conn) waitMore(eos bool, need int) types.Action {
	if eos {
		return c.reject(reasonEOF, "the client half-closed "+strconv.Itoa(need)+" byte(s) before the end of its A-ASSOCIATE-RQ")
	}
	return types.ActionPause
}

// rejectFraming maps a framing error of the first bytes to a reason.
func (c *conn) rejectFraming(err error, buf []byte) types.Action {
	switch {
	case errors.Is(err, pdu.ErrTLS):
		return c.reject(reasonTLSOnPlainPort, "the client sent a TLS record to a plain-text DICOM port (terminate TLS in front of the filter or let the client connect without TLS): "+err.Error())
	case errors.Is(err, pdu.ErrNotDICOM), errors.Is(err, pdu.ErrUnknownType):
		return c.reject(reasonNotDICOM, err.Error())
	case errors.Is(err, pdu.ErrTooLarge):
		detail := "the A-ASSOCIATE-RQ is larger than maxAssociateRQBytes " + strconv.FormatUint(uint64(c.p.pol.MaxAssociateRQBytes()), 10)
		if len(buf) >= pdu.HeaderLen {
			detail += ": its header announces " + strconv.FormatUint(uint64(binary.BigEndian.Uint32(buf[2:6]))+pdu.HeaderLen, 10) + " bytes"
		}
		return c.reject(reasonTooLarge, detail+" (raise maxAssociateRQBytes in the policy if such RQs are legitimate)")
	}
	return c.reject(reasonMalformed, err.Error())
}

func errString(err error) string {
	if err == nil {
		return "short read"
	}
	return err.Error()
}

// deciding is the scratch of decide.
var deciding struct {
	id  identity
	d   policy.Decision
	rec audit.Record
}

// decide decodes the complete RQ, evaluates the policy and acts.
func (c *conn) decide(rqBytes []byte) types.Action {
	p := c.p
	rq := &p.rq
	if err := p.dec.DecodeAssociateRQ(rqBytes, rq); err != nil {
		return c.reject(reasonMalformed, "malformed A-ASSOCIATE-RQ: "+err.Error())
	}
	if n := len(rq.PresentationContexts); n > maxPresentationContexts {
		// The decoder is lenient (docs/internals.md, "PDU decoder
		// leniency"); the proxy is not: such an RQ
		// cannot be valid and would make every abstract-syntax rule scan all
		// of its contexts.
		return c.reject(reasonMalformed, "malformed A-ASSOCIATE-RQ: "+strconv.Itoa(n)+
			" presentation contexts proposed; at most 128 are possible (context IDs are unique odd numbers 1-255)")
	}
	// The identity, the decision and the audit entry are package-level
	// scratch filled field by field (a VM runs one callback at a time, and
	// they are used only during this one): in the guest, a zeroed or copied
	// struct of more than 32 bytes is a memory.fill or memory.copy, which
	// wazero runs as a call into the host's memclr or memmove. (As plugin
	// fields they would be reachable from an interface's type descriptor and
	// link their types' equality functions and time.Time's formatter.)
	id, d, e := &deciding.id, &deciding.d, &deciding.rec
	id.reset()
	readIdentity(id, p.pol.MatchesSource(), p.pol.MatchesDNSSAN())
	p.pol.EvaluateInto(rq, &id.conn, d)
	t := abi.Now()
	decision, calledAE, callingAE := d.Action.String(), view(rq.CalledAETitle()), view(rq.CallingAETitle())
	setProperties(callingAE, calledAE, decision, d.Rule)
	// Every field of the record is set here (Start in logAudit).
	e.At, e.Conn, e.Source = t, c.auditConnID(id), id.source
	e.CallingAE, e.CalledAE = callingAE, calledAE
	e.PeerURISAN, e.PeerSubject, e.PeerSHA256 = id.conn.PeerURISAN, id.conn.PeerSubject, id.sha256
	e.Decoded, e.Contexts, e.SOPClasses = true, len(rq.PresentationContexts), rq.DistinctAbstractSyntaxes()
	e.Decision, e.Rule, e.Reason, e.RejectReason, e.Respond = decision, d.Rule, "", d.RejectReason, ""
	e.DryRun = d.DryRun || p.dryRun
	e.Cluster, e.RewriteCalled, e.RewriteCalling = "", "", ""
	if d.Action == policy.ActionRoute {
		e.Cluster = d.Cluster
	}
	if !e.DryRun {
		e.RewriteCalled, e.RewriteCalling = d.RewriteCalledAETitle, d.RewriteCallingAETitle
	}

	if e.DryRun {
		if d.Action == policy.ActionDeny {
			inc(p.m.dryRunDenies)
		}
		p.m.decision(d.RuleIndex)
		return c.pass(e)
	}
	switch d.Action {
	case policy.ActionDeny:
		p.m.decision(d.RuleIndex)
		if d.Respond == policy.RespondReject {
			return c.rejectVia(e, d.RejectReason, id.connID, t)
		}
		e.Respond = respondClose
		return c.closeWith(e, reasonPolicy)
	case policy.ActionRoute:
		if err := p.setCluster(d.Cluster); err != nil {
			return c.fail(err.Error())
		}
	}
	if e.RewriteCalled != "" || e.RewriteCalling != "" {
		if err := c.rewrite(rqBytes, e.RewriteCalled, e.RewriteCalling); err != nil {
			return c.fail("rewriting the AE titles: " + err.Error())
		}
	}
	p.m.decision(d.RuleIndex)
	return c.pass(e)
}

// setCluster makes tcp_proxy connect cluster (the filter state
// envoy.tcp_proxy.cluster). The arguments depend only on the cluster; the
// policy hands out the same string for the same rule, so the last ones are
// kept.
func (p *plugin) setCluster(cluster string) error {
	if !sameString(cluster, p.fsCluster) {
		p.fs = abi.AppendFilterStateArgs(p.fs[:0], abi.FilterStateCluster, cluster, abi.LifeSpanDownstreamConnection)
		p.fsCluster = cluster
	}
	if err := abi.SetFilterState(p.fs); err != nil {
		return errors.New("set_envoy_filter_state(" + abi.FilterStateCluster + "=" + cluster + ") failed: " + err.Error() +
			" (Envoy ≥ 1.28 is needed, and the call must happen in a connection callback)")
	}
	return nil
}

// sameString reports whether a and b are the same string in memory (same
// bytes at the same address); false says nothing about their contents.
func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

// Values of the audit line's "respond".
const (
	respondClose  = "close"
	respondReject = "reject"
)

// rejectVia carries out a policy deny with "respond": "reject": the
// association goes to the rejector cluster instead of the backend, with
// the signed preamble (sdk/rejectwire) prepended to the RQ, and the
// rejector answers the A-ASSOCIATE-RJ of reasonName. The backend never sees
// the association: the cluster is set before the chain continues, and a
// failure of either host call closes the connection (fail closed).
func (c *conn) rejectVia(e *audit.Record, reasonName string, connID uint64, t int64) types.Action {
	p := c.p
	// A validated policy only hands out known reasons; an unknown one would
	// give the codes 0/0/0, which the rejector refuses (a close).
	result, source, code, _ := policy.RejectCode(reasonName)
	if err := p.setCluster(p.rejectCluster); err != nil {
		return c.fail(err.Error())
	}
	p.rejectKey.Sign(&p.preamble, rejectwire.Preamble{Result: result, Source: source, Reason: code, ConnID: connID, Time: t})
	// set_buffer_bytes(DOWNSTREAM_DATA, 0, 0, preamble): drain nothing,
	// prepend the preamble (context.cc Buffer::copyFrom).
	if err := abi.ReplaceDownstreamPrefix(c.id, 0, p.preamble[:]); err != nil {
		return c.fail("prepending the reject preamble: " + err.Error())
	}
	e.Respond, e.Cluster, e.Reason = respondReject, p.rejectCluster, reasonPolicy.String()
	p.m.deny(reasonPolicy)
	inc(p.m.rejected)
	return c.pass(e)
}

// rewrite replaces the called (offset 10) and/or calling (offset 26) AE
// title fields. Envoy can only replace a buffer prefix, so the first 26 or
// 42 bytes are written back with the modified copy.
func (c *conn) rewrite(rqBytes []byte, called, calling string) error {
	n := pdu.OffsetCallingAETitle // 26: up to the end of the called AE title
	if calling != "" {
		n = pdu.OffsetCallingAETitle + pdu.AETitleLen // 42
	}
	if len(rqBytes) < n {
		return errors.New("the A-ASSOCIATE-RQ is shorter than " + strconv.Itoa(n) + " bytes")
	}
	var prefix [pdu.OffsetCallingAETitle + pdu.AETitleLen]byte
	copy(prefix[:], rqBytes[:n])
	if called != "" {
		pdu.PadAETitle(prefix[pdu.OffsetCalledAETitle:pdu.OffsetCalledAETitle+pdu.AETitleLen], called)
	}
	if calling != "" {
		pdu.PadAETitle(prefix[pdu.OffsetCallingAETitle:pdu.OffsetCallingAETitle+pdu.AETitleLen], calling)
	}
	return abi.ReplaceDownstreamPrefix(c.id, n, prefix[:n])
}

// setProperties stores the association's AE titles and decision as
// properties (Envoy filter state wasm.dicom.*), readable by access logs and
// later filters.
//
// It takes the strings rather than the audit entry: passing string data to
// a wasmimport makes whatever holds it escape, and the entry points to the
// identity, which would then be allocated on every decision.
func setProperties(callingAE, calledAE, decision, rule string) {
	abi.SetProperty("dicom.calling_ae", callingAE)
	abi.SetProperty("dicom.called_ae", calledAE)
	abi.SetProperty("dicom.decision", decision)
	abi.SetProperty("dicom.rule", rule)
}
