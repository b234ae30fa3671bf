package main

import (
	"encoding/binary"
	"strconv"

	"github.com/dicomgate/dicomgate/filters/dicomgate/internal/abi"
	"github.com/dicomgate/dicomgate/filters/dicomgate/internal/audit"
	"github.com/dicomgate/dicomgate/sdk/policy"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// state is where a connection is in its life. Only inspect has
// transitions, all made by (*conn).to:
//
//	inspect --RQ allowed, routed, rewritten, sent to the rejector; dry run--> passed
//	inspect --deny, bad bytes, eof, timeout, internal error, stream done--> closed
//
// In passed and closed every callback returns at once without host calls,
// which makes the filter idempotent when Envoy re-delivers bytes it has
// already seen (context.cc Context::onData after tcp_proxy connects).
type state uint8

const (
	stateInspect state = iota // waiting for the A-ASSOCIATE-RQ
	statePassed               // decided and let through: Continue at once from now on
	stateClosed               // closed by the filter (or gone)
)

// String names the state (tests, debugging). It is not in the module: conn
// holds its state as a uint8 (see conn.st).
func (s state) String() string {
	switch s {
	case stateInspect:
		return "inspect"
	case statePassed:
		return "passed"
	case stateClosed:
		return "closed"
	}
	return "invalid"
}

// conn is the per-connection context: the proxy-wasm callbacks, which
// delegate to the state machine (see state), and the outcomes that end the
// inspection (pass, closeWith and the closes built on it).
type conn struct {
	types.DefaultTcpContext
	p  *plugin
	id uint32

	// st is the state (as its uint8: a state field would make conn, which is
	// reachable from an interface, link state.String: ~1.2 KB of module).
	st uint8
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
// before the TLS handshake: the deadline covers the handshake). In mode
// after-decision it returns Pause so that tcp_proxy has not picked its
// cluster yet (tcp_proxy.cc Filter::onNewConnection runs only when this
// filter continues); in mode immediate it returns Continue and tcp_proxy
// connects the default upstream at once.
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
	c.p.yield()
	switch c.state() {
	case statePassed:
		return types.ActionContinue
	case stateClosed:
		return types.ActionPause
	}
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
	if c.state() != stateInspect {
		return
	}
	c.to(stateClosed)
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
	if c.state() == stateInspect {
		c.to(stateClosed)
	}
	c.p.recycle(c)
}

// state is where c is in its life.
func (c *conn) state() state { return state(c.st) }

// to moves c out of inspect into s (passed or closed): it is no longer
// waiting for its RQ, so the inspect deadline forgets it.
func (c *conn) to(s state) {
	c.st = uint8(s)
	c.p.removePending(c)
}

// pass marks the connection decided-and-through and continues the chain.
func (c *conn) pass(e *audit.Record) types.Action {
	c.to(statePassed)
	c.logAudit(e)
	return types.ActionContinue
}

// closeWith closes the client connection for reason r and stops the chain.
// A connection the filter closes is always an association attempt.
func (c *conn) closeWith(e *audit.Record, r reason) types.Action {
	c.count()
	c.to(stateClosed)
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
	proxywasm.LogWarn(c.logPrefix() + "closing (" + r.String() + "): " + detail)
	return c.closeWith(&audit.Record{At: abi.Now(), Decision: "deny"}, r)
}

// fail closes the connection after an internal error (fail closed).
func (c *conn) fail(detail string) types.Action {
	proxywasm.LogError(c.logPrefix() + "internal error, closing: " + detail)
	if c.state() == stateClosed {
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

// count counts the connection as an association attempt, once.
func (c *conn) count() {
	if !c.counted {
		c.counted = true
		inc(c.p.m.associations)
	}
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
