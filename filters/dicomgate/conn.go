package main

import (
	"encoding/binary"
	"errors"
	"net/netip"
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

// inlineFetch: while the PDU header is unknown, a buffer up to this size is
// fetched whole in one host call (a typical RQ arrives in one read, so one
// call suffices); a larger buffer is fetched in two steps: the 6-byte header,
// then exactly the PDU.
const inlineFetch = 16 << 10

// maxPresentationContexts is the most presentation contexts a valid
// A-ASSOCIATE-RQ can propose (PS3.8 §9.3.2.2: unique odd IDs 1-255).
const maxPresentationContexts = 128

// connection states.
const (
	stateInspect uint8 = iota // waiting for the A-ASSOCIATE-RQ
	statePassed               // decided and let through: Continue at once from now on
	stateClosed               // closed by the filter (or gone)
)

// conn is the per-connection context. Its state machine:
//
//	inspect --RQ allowed/routed--> passed
//	inspect --deny/bad bytes/eof/timeout/internal error--> closed
//
// In passed and closed every callback returns at once without host calls,
// which makes the filter idempotent when Envoy re-delivers bytes it has
// already seen (context.cc Context::onData after tcp_proxy connects).
type conn struct {
	types.DefaultTcpContext
	p  *plugin
	id uint32

	state uint8
	// start is when the connection arrived (inspect deadline origin);
	// firstData when its first byte arrived (decision latency origin). Both
	// are Unix nanoseconds (0: not yet): a time.Time field would keep
	// time.Time.String and its formatter in the module, because conn is
	// stored in an interface.
	start, firstData int64
	// total is the size of the first PDU once its header was read (0 before).
	total int
	// seen is the largest buffer size delivered so far.
	seen int
	// pendingAt is the 1-based position in plugin.pending (0: not pending).
	pendingAt int
	// counted: the connection is counted in dicomgate_associations_total.
	// A connection becomes an association attempt with its first byte, or
	// when the filter closes it (deadline, internal error); one that ends
	// before sending a byte (a TCP health check, a port scan, a failed TLS
	// handshake, which Envoy reports to the filter because it builds the
	// filter chain at accept) is none: no count, no audit line.
	counted bool
	// envoyConnID is Envoy's connection.id, the audit line's "conn": every
	// log line of the connection names it, so that an operator can join a
	// warning to its audit record (0: not read yet).
	envoyConnID uint64
}

// OnNewConnection starts the inspect deadline (Envoy calls it at accept,
// before the TLS handshake: the deadline covers the handshake). In mode after-decision it returns Pause so that tcp_proxy has
// not picked its cluster yet (tcp_proxy.cc Filter::onNewConnection runs only
// when this filter continues); in mode immediate it returns Continue and
// tcp_proxy connects the default upstream at once.
func (c *conn) OnNewConnection() (act types.Action) {
	p := c.p
	p.yield()
	defer func() {
		if r := recover(); r != nil {
			c.fail("panic in OnNewConnection: " + panicString(r))
			act = types.ActionPause
		}
	}()
	c.start = abi.Now()
	if p.pol == nil {
		c.fail("the plugin has no valid configuration")
		return types.ActionPause
	}
	p.addPending(c)
	if p.mode == policy.ConnectImmediate {
		return types.ActionContinue
	}
	return types.ActionPause
}

// OnDownstreamData inspects the whole unconsumed buffer (Envoy re-delivers
// it on every read) until a complete A-ASSOCIATE-RQ is there.
func (c *conn) OnDownstreamData(size int, eos bool) (act types.Action) {
	switch c.state {
	case statePassed:
		c.p.yield()
		return types.ActionContinue
	case stateClosed:
		c.p.yield()
		return types.ActionPause
	}
	c.p.yield()
	// Values the host returns during the inspection (the RQ, the property
	// values) go to the scratch area; see abi.ScratchBegin.
	abi.ScratchBegin()
	defer func() {
		abi.ScratchEnd()
		if r := recover(); r != nil {
			c.fail("panic in OnDownstreamData: " + panicString(r))
			act = types.ActionPause
		}
	}()
	return c.inspect(size, eos)
}

// OnUpstreamData passes the upstream's bytes to the client untouched.
func (c *conn) OnUpstreamData(int, bool) types.Action {
	c.p.yield()
	return types.ActionContinue
}

// OnDownstreamClose: a client that leaves before its RQ was decided
// (RemoteClose) is counted as eof. A local close the filter did not ask for
// (Envoy closed the connection itself, e.g. tcp_proxy after a failed
// upstream connect in mode immediate) is only logged: decision "none". A
// connection that ends before its first byte is no association (see
// conn.counted) and logs nothing.
func (c *conn) OnDownstreamClose(peer types.PeerType) {
	c.p.yield()
	defer func() { _ = recover() }()
	if c.state != stateInspect {
		return
	}
	c.state = stateClosed
	c.p.removePending(c)
	if !c.counted {
		return
	}
	if peer == types.PeerTypeLocal {
		c.logAudit(&audit.Record{At: abi.Now(), Decision: "none"})
		return
	}
	c.p.m.deny(reasonEOF)
	c.logAudit(&audit.Record{At: abi.Now(), Decision: "deny", Reason: reasonEOF.String()})
}

// OnStreamDone forgets the connection.
func (c *conn) OnStreamDone() {
	c.p.yield()
	c.p.removePending(c)
	if c.state == stateInspect {
		c.state = stateClosed
	}
	c.p.recycle(c)
}

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
			c.state = stateClosed
			c.p.removePending(c)
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
	id, d, e := &deciding.id, &deciding.d, &deciding.e
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
	e.Decoded, e.Contexts, e.SOPClasses = true, len(rq.PresentationContexts), distinctAbstractSyntaxes(rq)
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

// pass marks the connection decided-and-through and continues the chain.
func (c *conn) pass(e *audit.Record) types.Action {
	c.state = statePassed
	c.p.removePending(c)
	c.logAudit(e)
	return types.ActionContinue
}

// logAudit writes the association's audit line at info level (package
// audit). A record whose RQ was never decoded gets the connection's source
// and number here.
func (c *conn) logAudit(e *audit.Record) {
	if !e.Decoded {
		// Closed before an RQ was decoded: still say who it was (a rare
		// path, so the two extra host calls do not matter).
		var src identity
		readSource(&src, false)
		e.Source, e.Conn = src.source, c.auditConnID(&src)
	}
	e.Start = c.firstData // latency runs from the first byte, else from the accept
	if e.Start == 0 {
		e.Start = c.start
	}
	p := c.p
	p.audit = audit.AppendLine(p.audit[:0], e)
	abi.LogInfo(p.audit)
}

// auditConnID is the number the connection's log lines carry (connID)
// without a host call of its own: connection.id as id read it, else as
// connID read it, else the context id.
func (c *conn) auditConnID(id *identity) uint64 {
	if id.hasID {
		return id.connID
	}
	if c.envoyConnID != 0 {
		return c.envoyConnID
	}
	return uint64(c.id)
}

// connID is the connection's number in logs and audit lines: Envoy's
// connection.id (shared with Envoy's own access logs), read once; the
// context id only if the host does not provide it. Error paths only: a
// decided association reads connection.id with its other properties.
func (c *conn) connID() uint64 {
	if c.envoyConnID == 0 {
		if b, ok := abi.GetProperty(propConnID); ok && len(b) == 8 {
			c.envoyConnID = binary.LittleEndian.Uint64(b)
		} else {
			return uint64(c.id)
		}
	}
	return c.envoyConnID
}

// logPrefix starts every log line about the connection.
func (c *conn) logPrefix() string {
	return "dicomgate: connection " + strconv.FormatUint(c.connID(), 10) + ": "
}

// count counts the connection as an association attempt, once.
func (c *conn) count() {
	if !c.counted {
		c.counted = true
		inc(c.p.m.associations)
	}
}

// closeWith closes the client connection for reason r and stops the chain.
// A connection the filter closes is always an association attempt.
func (c *conn) closeWith(e *audit.Record, r reason) types.Action {
	c.count()
	c.state = stateClosed
	c.p.removePending(c)
	c.p.m.deny(r)
	e.Reason = r.String()
	if err := abi.CloseDownstream(c.id); err != nil {
		proxywasm.LogError(c.logPrefix() + "close failed: " + err.Error())
	}
	c.logAudit(e)
	return types.ActionPause
}

// reject closes the connection for a protocol-level reason (not a policy
// decision), logging detail at warn level.
func (c *conn) reject(r reason, detail string) types.Action {
	proxywasm.LogWarn(c.logPrefix() + "closing (" + reasonNames[r] + "): " + detail)
	return c.closeWith(&audit.Record{At: abi.Now(), Decision: "deny"}, r)
}

// fail closes the connection after an internal error (fail closed).
func (c *conn) fail(detail string) types.Action {
	proxywasm.LogError(c.logPrefix() + "internal error, closing: " + detail)
	if c.state == stateClosed {
		return types.ActionPause
	}
	return c.closeWith(&audit.Record{At: abi.Now(), Decision: "deny"}, reasonInternal)
}

// onTimeout closes a connection whose RQ did not complete in time; the
// caller has made its context effective.
func (c *conn) onTimeout(t int64) {
	p := c.p
	msg := c.logPrefix() + "no complete A-ASSOCIATE-RQ within inspectTimeoutMs " +
		strconv.FormatInt(p.timeoutNs/1e6, 10) + " (" + strconv.Itoa(c.seen) + " byte(s) received); closing"
	if p.mode == policy.ConnectAfterDecision && c.seen == 0 && !p.sawData {
		msg += `. No data arrived at all: with "upstreamConnect": "after-decision" the filter pauses the connection before tcp_proxy runs, ` +
			"and tcp_proxy only lets data through early when it has max_early_data_bytes set (Envoy >= 1.37; in Istio an EnvoyFilter MERGE on the DICOM port's tcp_proxy). " +
			`Set it, or use "upstreamConnect": "immediate" (no route rules)`
	}
	if c.seen == 0 && p.sawData {
		// An idle client (a probe holding the port): this listener has
		// received data before, so early data works and nothing is
		// misconfigured; still counted and audited as a timeout.
		proxywasm.LogDebug(msg)
	} else {
		proxywasm.LogError(msg)
	}
	c.closeWith(&audit.Record{At: t, Decision: "deny"}, reasonTimeout)
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

// identity is what the connection's properties say about the peer, read
// once per connection.
type identity struct {
	conn   policy.Conn
	source string
	connID uint64
	hasID  bool
	sha256 string
}

// Property paths (Envoy source/extensions/filters/common/expr/context.h),
// serialized as the ABI expects: segments separated by NUL.
const (
	propSource  = "source\x00address"
	propConnID  = "connection\x00id"
	propURISAN  = "connection\x00uri_san_peer_certificate"
	propDNSSAN  = "connection\x00dns_san_peer_certificate"
	propSubject = "connection\x00subject_peer_certificate"
	propDigest  = "connection\x00sha256_peer_certificate_digest"
)

// deciding is the scratch of decide.
var deciding struct {
	id identity
	d  policy.Decision
	e  audit.Record
}

// reset clears id field by field (see decide).
func (id *identity) reset() {
	id.conn.Source, id.conn.MTLS = netip.Addr{}, false
	id.conn.PeerURISAN, id.conn.PeerDNSSAN, id.conn.PeerSubject = "", "", ""
	id.source, id.connID, id.hasID, id.sha256 = "", 0, false, ""
}

// sameString reports whether a and b are the same string in memory (same
// bytes at the same address); false says nothing about their contents.
func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

// readIdentity reads the connection properties the policy and the audit
// line need. An absent or failing property means "unknown". The peer
// certificate properties are only read (and trusted) when the client
// presented a certificate, which the digest tells: Envoy's
// sha256PeerCertificateDigest is "" exactly when there is no peer
// certificate (envoy/ssl/connection.h), and connection.mtls is
// peerCertificatePresented() (filters/common/expr/context.cc), so one
// property read answers both. The DNS SAN is read only when a rule matches
// on it (readDNS): the audit line does not carry it.
func readIdentity(id *identity, parseSource, readDNS bool) {
	readSource(id, parseSource)
	if d := propString(propDigest); d != "" {
		id.conn.MTLS, id.sha256 = true, d
		id.conn.PeerURISAN = propString(propURISAN)
		if readDNS {
			id.conn.PeerDNSSAN = propString(propDNSSAN)
		}
		id.conn.PeerSubject = propString(propSubject)
	}
}

// readSource reads source.address and connection.id into the zero id; it
// parses the address into id.conn.Source only when parseSource is set (the
// policy matches on it).
func readSource(id *identity, parseSource bool) {
	if b, ok := abi.GetProperty(propSource); ok {
		id.source = view(b) // the audit line logs the text as Envoy gave it
		if parseSource {
			id.conn.Source = parseSourceAddress(id.source)
		}
	}
	if b, ok := abi.GetProperty(propConnID); ok && len(b) == 8 {
		id.connID, id.hasID = binary.LittleEndian.Uint64(b), true
	}
}

// parseSourceAddress parses source.address ("ip:port", or a bare address)
// into the unmapped IP; the zero Addr when it is neither.
func parseSourceAddress(s string) netip.Addr {
	if a, ok := parseIPv4Port(s); ok {
		return a
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

func propString(path string) string {
	b, ok := abi.GetProperty(path)
	if !ok {
		return ""
	}
	return view(b)
}

// view returns b as a string without copying. Only for bytes that are never
// modified afterwards and strings that do not outlive the callback: the RQ
// and property values (fresh blocks the host allocated for this call), used
// for the decision, the properties and the audit line of this association.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// parseIPv4Port is the common case of source.address, "a.b.c.d:port",
// without netip's general parser (several times slower in the guest). It
// accepts only what netip.ParseAddrPort accepts with the same result;
// anything else (IPv6, bare addresses, malformed) returns false and goes
// through netip.
func parseIPv4Port(s string) (netip.Addr, bool) {
	var ip [4]byte
	i := 0
	for k := 0; k < 4; k++ {
		n, start := 0, i
		for i < len(s) && i-start < 4 && s[i] >= '0' && s[i] <= '9' {
			n = n*10 + int(s[i]-'0')
			i++
		}
		digits := i - start
		if digits == 0 || digits > 3 || n > 255 || (digits > 1 && s[start] == '0') {
			return netip.Addr{}, false
		}
		ip[k] = byte(n)
		sep := byte('.')
		if k == 3 {
			sep = ':'
		}
		if i >= len(s) || s[i] != sep {
			return netip.Addr{}, false
		}
		i++
	}
	port, start := 0, i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && port <= 65535 {
		port = port*10 + int(s[i]-'0')
		i++
	}
	if i == start || i != len(s) || port > 65535 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(ip), true
}

// distinctAbstractSyntaxes counts the distinct SOP classes proposed. Most
// RQs have a few presentation contexts, where a pairwise scan is cheapest and
// does not allocate. An ordinary RQ has at most 128 (odd IDs 1-255), but the
// lenient decoder accepts any number, and a hostile client can fit ~40,000
// contexts with distinct abstract syntaxes into a 1 MiB RQ, where the
// pairwise scan took 1.7 s natively (far more in the guest, blocking the
// worker). Above quadraticPCs contexts the count sorts an index instead:
// O(n log n), one temporary allocation.
func distinctAbstractSyntaxes(rq *pdu.AssociateRQ) int {
	pcs := rq.PresentationContexts
	if len(pcs) > quadraticPCs {
		return distinctSorted(pcs)
	}
	n := 0
outer:
	for i := range pcs {
		for j := 0; j < i; j++ {
			if string(pcs[j].AbstractSyntax) == string(pcs[i].AbstractSyntax) {
				continue outer
			}
		}
		n++
	}
	return n
}

// quadraticPCs is the largest context count distinctAbstractSyntaxes scans
// pairwise.
const quadraticPCs = 32

// distinctSorted counts the distinct abstract syntaxes of pcs by sorting
// their indexes (a heap sort: no recursion, no sort package in the module).
func distinctSorted(pcs []pdu.PresentationContextRQ) int {
	if len(pcs) == 0 {
		return 0
	}
	idx := make([]int32, len(pcs))
	for i := range idx {
		idx[i] = int32(i)
	}
	less := func(a, b int32) bool { return string(pcs[a].AbstractSyntax) < string(pcs[b].AbstractSyntax) }
	for i := len(idx)/2 - 1; i >= 0; i-- {
		siftDown(idx, i, len(idx), less)
	}
	for end := len(idx) - 1; end > 0; end-- {
		idx[0], idx[end] = idx[end], idx[0]
		siftDown(idx, 0, end, less)
	}
	n := 1
	for i := 1; i < len(idx); i++ {
		if string(pcs[idx[i]].AbstractSyntax) != string(pcs[idx[i-1]].AbstractSyntax) {
			n++
		}
	}
	return n
}

// siftDown restores the max-heap property of idx[:n] below root.
func siftDown(idx []int32, root, n int, less func(a, b int32) bool) {
	for {
		child := 2*root + 1
		if child >= n {
			return
		}
		if child+1 < n && less(idx[child], idx[child+1]) {
			child++
		}
		if !less(idx[root], idx[child]) {
			return
		}
		idx[root], idx[child] = idx[child], idx[root]
		root = child
	}
}

func errString(err error) string {
	if err == nil {
		return "short read"
	}
	return err.Error()
}

func (m *metrics) deny(r reason) {
	if m != nil && r < numReasons {
		inc(m.denied[r])
	}
}
