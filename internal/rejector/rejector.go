// Package rejector is the DICOM acceptor behind `dicomgate reject`: it
// answers every association the dicomgate filter routes to it with an
// A-ASSOCIATE-RJ and closes.
//
// A Wasm network filter cannot write to the client, so a policy deny with
// "respond": "reject" is routed here instead of being closed (see
// sdk/policy/README.md, "Answering denies with an A-ASSOCIATE-RJ"). Each
// connection must start with the filter's preamble (package
// sdk/rejectwire): the rejector verifies it against its keys and its age,
// reads the A-ASSOCIATE-RQ that follows (its header is checked, its body
// discarded: memory per connection is bounded by a small fixed buffer),
// writes the 10-byte A-ASSOCIATE-RJ with the preamble's result, source and
// reason, half-closes and waits briefly for the requester to close (PS3.8
// §9.1.6: after an RJ the requester releases the transport), so that the
// RJ is not lost to a reset. A connection without a valid preamble (missing,
// forged, expired, another version) or without an RQ after it is refused:
// closed without a byte written, counted and logged.
//
// Every phase runs under the ARTIM-style deadline (PS3.8 §9.1.5): a peer
// that does not send a preamble and an RQ within it is refused as a
// timeout. Each connection is one goroutine with a fixed buffer, so
// thousands of concurrent connections cost a few megabytes; MaxConns bounds
// them (further connections are closed at once and counted as overload).
package rejector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dicomgate/dicomgate/sdk/pdu"
	"github.com/dicomgate/dicomgate/sdk/rejectwire"
)

// Defaults of Config.
const (
	// DefaultARTIM is how long a connection may take to deliver the
	// preamble and the whole A-ASSOCIATE-RQ (dcmtk's dcmqrscp ARTIM default
	// is 30 s; the filter has already received the RQ, so it arrives at once).
	DefaultARTIM = 10 * time.Second
	// DefaultMaxAge is how old (or how far in the future, as clock skew) a
	// preamble may be.
	DefaultMaxAge = 30 * time.Second
	// DefaultMaxRQBytes is the largest A-ASSOCIATE-RQ accepted (header
	// included), the policy's maxAssociateRQBytes default.
	DefaultMaxRQBytes = 1 << 20
	// DefaultMaxConns bounds concurrent connections.
	DefaultMaxConns = 20000
	// DefaultLinger is how long the rejector waits for the requester to
	// close after the RJ.
	DefaultLinger = 2 * time.Second
)

// Config configures a Server.
type Config struct {
	// Keys are the accepted preamble keys (the policy's rejectKey; several
	// during a rotation). At least one is required.
	Keys []string
	// ARTIM, MaxAge, MaxRQBytes, MaxConns and Linger default to the
	// constants above when zero.
	ARTIM      time.Duration
	MaxAge     time.Duration
	MaxRQBytes uint32
	MaxConns   int
	Linger     time.Duration
	// Logf receives one line per refused connection and per error (nil:
	// discard). Answered connections are only counted.
	Logf func(format string, args ...any)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Causes a connection is refused for (the cause label of
// dicomgate_reject_refused_total).
const (
	CauseNoPreamble = "no_preamble" // closed or timed out before 56 bytes
	CauseMagic      = "not_from_filter"
	CauseVersion    = "version"
	CauseMAC        = "forged"
	CauseExpired    = "expired"
	CauseCode       = "invalid_code"
	CauseNoRQ       = "no_rq"     // no complete A-ASSOCIATE-RQ after the preamble
	CauseNotRQ      = "not_rq"    // the PDU after the preamble is not an A-ASSOCIATE-RQ
	CauseTooLarge   = "too_large" // the RQ is larger than MaxRQBytes
	CauseOverload   = "overload"  // MaxConns connections were open
)

// Causes lists every cause label, in exposition order.
var Causes = []string{CauseNoPreamble, CauseMagic, CauseVersion, CauseMAC, CauseExpired, CauseCode,
	CauseNoRQ, CauseNotRQ, CauseTooLarge, CauseOverload}

// rjCodes are the result/source/reason combinations the rejector can send,
// in exposition order: every A-ASSOCIATE-RJ PS3.8 §9.3.4 defines, the codes
// rejectwire.Verify accepts (TestRJCodesAreEveryDefinedRJ); a policy names 7
// of them.
var rjCodes = [...][3]byte{{1, 1, 1}, {1, 1, 2}, {1, 1, 3}, {1, 1, 7}, {1, 2, 1}, {1, 2, 2}, {1, 3, 1}, {1, 3, 2},
	{2, 1, 1}, {2, 1, 2}, {2, 1, 3}, {2, 1, 7}, {2, 2, 1}, {2, 2, 2}, {2, 3, 1}, {2, 3, 2}}

// Server answers connections with an A-ASSOCIATE-RJ.
type Server struct {
	cfg  Config
	keys []*rejectwire.Key

	connections atomic.Uint64
	active      atomic.Int64
	rejects     [len(rjCodes)]atomic.Uint64
	refused     map[string]*atomic.Uint64

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
	closed    bool
}

// New validates cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("rejector: no key: give the policy's rejectKey (--key-file)")
	}
	s := &Server{cfg: cfg, refused: map[string]*atomic.Uint64{},
		listeners: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{}}
	for i, k := range cfg.Keys {
		key, err := rejectwire.NewKey(k)
		if err != nil {
			return nil, fmt.Errorf("rejector: key %d: %v", i+1, err)
		}
		s.keys = append(s.keys, key)
	}
	if s.cfg.ARTIM <= 0 {
		s.cfg.ARTIM = DefaultARTIM
	}
	if s.cfg.MaxAge <= 0 {
		s.cfg.MaxAge = DefaultMaxAge
	}
	if s.cfg.MaxRQBytes == 0 {
		s.cfg.MaxRQBytes = DefaultMaxRQBytes
	}
	if s.cfg.MaxRQBytes < pdu.HeaderLen+68 {
		return nil, fmt.Errorf("rejector: MaxRQBytes %d is below the smallest A-ASSOCIATE-RQ (74 bytes)", s.cfg.MaxRQBytes)
	}
	if s.cfg.MaxConns <= 0 {
		s.cfg.MaxConns = DefaultMaxConns
	}
	if s.cfg.Linger <= 0 {
		s.cfg.Linger = DefaultLinger
	}
	if s.cfg.Now == nil {
		s.cfg.Now = time.Now
	}
	for _, c := range Causes {
		s.refused[c] = new(atomic.Uint64)
	}
	return s, nil
}

// ReadKeyFile reads the keys of a key file: one key per line (blank lines
// and lines starting with # ignored), so that a rotation adds the new key
// as a line and later removes the old one.
func ReadKeyFile(name string) ([]string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var keys []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, err := rejectwire.NewKey(line); err != nil {
			return nil, fmt.Errorf("%s:%d: the key %v", name, i+1, err)
		}
		keys = append(keys, line)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no key (one key per line, e.g. from `openssl rand -base64 32`)", name)
	}
	return keys, nil
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// Serve accepts connections on ln until Shutdown (it then returns nil) or
// an accept error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscallEMFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logf("rejector: accept: %v; retrying in %v", err, backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if !s.track(c) {
			continue
		}
		go func() {
			defer s.untrack(c)
			s.ServeConn(c)
		}()
	}
}

// track registers c; false when the server is shutting down or full (c is
// then closed).
func (s *Server) track(c net.Conn) bool {
	s.connections.Add(1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return false
	}
	if len(s.conns) >= s.cfg.MaxConns {
		s.mu.Unlock()
		s.refuse(c, CauseOverload, fmt.Sprintf("%d connections open (--max-conns)", s.cfg.MaxConns))
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.active.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.active.Add(-1)
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown stops accepting and waits for the open connections (each ends
// within ARTIM + Linger) until ctx is done; then it closes them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// refuse closes c without writing and counts cause.
func (s *Server) refuse(c net.Conn, cause, detail string) {
	s.refused[cause].Add(1)
	s.logf("rejector: %s: refused (%s): %s", c.RemoteAddr(), cause, detail)
	c.Close()
}

// ServeConn handles one connection (Serve calls it; a caller with its own
// listener may too) and closes it.
func (s *Server) ServeConn(c net.Conn) {
	start := s.cfg.Now()
	_ = c.SetDeadline(time.Now().Add(s.cfg.ARTIM))
	var buf [rejectwire.Size]byte
	if n, err := io.ReadFull(c, buf[:]); err != nil {
		s.refuse(c, CauseNoPreamble, fmt.Sprintf("%d of %d preamble bytes before %s", n, rejectwire.Size, readFailure(err, s.cfg.ARTIM)))
		return
	}
	p, err := rejectwire.Verify(buf[:], s.keys, start.UnixNano(), int64(s.cfg.MaxAge))
	if err != nil {
		cause := map[error]string{rejectwire.ErrMagic: CauseMagic, rejectwire.ErrVersion: CauseVersion,
			rejectwire.ErrMAC: CauseMAC, rejectwire.ErrExpired: CauseExpired, rejectwire.ErrCode: CauseCode}[err]
		if cause == "" {
			cause = CauseMagic
		}
		detail := err.Error()
		if err == rejectwire.ErrExpired {
			detail += fmt.Sprintf(": signed %v ago (--max-age %v)", start.Sub(time.Unix(0, p.Time)).Round(time.Millisecond), s.cfg.MaxAge)
		}
		s.refuse(c, cause, detail)
		return
	}
	if cause, detail := s.readRQ(c); cause != "" {
		s.refuse(c, cause, fmt.Sprintf("gateway connection %d: %s", p.ConnID, detail))
		return
	}
	rj := pdu.AssociateRJ{Result: pdu.RJResult(p.Result), Source: pdu.RJSource(p.Source), Reason: pdu.RJReason(p.Reason)}
	out := rj.AppendEncode(buf[:0])
	if _, err := c.Write(out); err != nil {
		s.logf("rejector: %s: gateway connection %d: writing the A-ASSOCIATE-RJ: %v", c.RemoteAddr(), p.ConnID, err)
		c.Close()
		return
	}
	s.countRJ(p.Result, p.Source, p.Reason)
	s.linger(c)
}

// readRQ reads the A-ASSOCIATE-RQ after the preamble through a fixed
// buffer: the header is checked with sdk/pdu's framer, the body discarded.
func (s *Server) readRQ(c net.Conn) (cause, detail string) {
	var hdr [pdu.HeaderLen]byte
	if n, err := io.ReadFull(c, hdr[:]); err != nil {
		return CauseNoRQ, fmt.Sprintf("%d of 6 A-ASSOCIATE-RQ header bytes before %s", n, readFailure(err, s.cfg.ARTIM))
	}
	f := pdu.Framer{MaxPDULength: s.cfg.MaxRQBytes - pdu.HeaderLen}
	h, _, err := f.Peek(hdr[:])
	switch {
	case errors.Is(err, pdu.ErrTooLarge):
		return CauseTooLarge, err.Error() + fmt.Sprintf(" (--max-rq-bytes %d)", s.cfg.MaxRQBytes)
	case err != nil:
		return CauseNotRQ, err.Error()
	case h.Type != pdu.TypeAssociateRQ:
		return CauseNotRQ, "the first PDU after the preamble is " + h.Type.String() + ", not an A-ASSOCIATE-RQ"
	}
	if n, err := io.CopyN(io.Discard, c, int64(h.Length)); err != nil {
		return CauseNoRQ, fmt.Sprintf("%d of %d A-ASSOCIATE-RQ bytes before %s", n+pdu.HeaderLen, h.Total(), readFailure(err, s.cfg.ARTIM))
	}
	return "", ""
}

// linger half-closes after the RJ and waits up to Linger for the
// requester to close, discarding what it sends, then closes.
func (s *Server) linger(c net.Conn) {
	defer c.Close()
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.SetDeadline(time.Now().Add(s.cfg.Linger))
	var b [512]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			return
		}
	}
}

func readFailure(err error, artim time.Duration) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("the %v deadline (--artim)", artim)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the peer closed"
	}
	return err.Error()
}

func (s *Server) countRJ(result, source, reason byte) {
	for i, c := range rjCodes {
		if c == [3]byte{result, source, reason} {
			s.rejects[i].Add(1)
			return
		}
	}
}

// Stats are the counters of a Server.
type Stats struct {
	// Connections accepted, Active now open.
	Connections uint64
	Active      int64
	// Rejected counts the A-ASSOCIATE-RJs sent, by "result/source/reason".
	Rejected map[string]uint64
	// Refused counts refused connections by cause.
	Refused map[string]uint64
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	st := Stats{Connections: s.connections.Load(), Active: s.active.Load(),
		Rejected: map[string]uint64{}, Refused: map[string]uint64{}}
	for i, c := range rjCodes {
		if n := s.rejects[i].Load(); n > 0 {
			st.Rejected[fmt.Sprintf("%d/%d/%d", c[0], c[1], c[2])] = n
		}
	}
	for _, c := range Causes {
		st.Refused[c] = s.refused[c].Load()
	}
	return st
}

// WriteMetrics writes the Prometheus text exposition of the counters.
// Every refusal cause is always present (0 included); an RJ series appears
// once one was sent.
func (s *Server) WriteMetrics(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# HELP dicomgate_reject_connections_total Connections accepted by the rejector.\n# TYPE dicomgate_reject_connections_total counter\n")
	fmt.Fprintf(&b, "dicomgate_reject_connections_total %d\n", s.connections.Load())
	b.WriteString("# HELP dicomgate_reject_active_connections Connections open now.\n# TYPE dicomgate_reject_active_connections gauge\n")
	fmt.Fprintf(&b, "dicomgate_reject_active_connections %d\n", s.active.Load())
	b.WriteString("# HELP dicomgate_reject_sent_total A-ASSOCIATE-RJs sent, by result, source and reason.\n# TYPE dicomgate_reject_sent_total counter\n")
	for i, c := range rjCodes {
		if n := s.rejects[i].Load(); n > 0 {
			fmt.Fprintf(&b, "dicomgate_reject_sent_total{result=\"%d\",source=\"%d\",reason=\"%d\"} %d\n", c[0], c[1], c[2], n)
		}
	}
	b.WriteString("# HELP dicomgate_reject_refused_total Connections closed without an RJ, by cause.\n# TYPE dicomgate_reject_refused_total counter\n")
	for _, c := range Causes {
		fmt.Fprintf(&b, "dicomgate_reject_refused_total{cause=%q} %d\n", c, s.refused[c].Load())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Handler serves /metrics (WriteMetrics) and /healthz (200 "ok" while the
// server is not shut down).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = s.WriteMetrics(w)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}
