// Package demopacs is a minimal in-process DICOM acceptor (an SCP for
// Verification and Storage) used by `dicomgate serve` without flags and by
// tests: it accepts every proposed presentation context, answers C-ECHO and
// C-STORE with status Success, and stores each received instance as a DICOM
// Part 10 file, written atomically (temporary file + rename).
//
// It is a demo peer, not a PACS: there is no query/retrieve, no
// authorization, the whole association is handled sequentially (no
// asynchronous operations) and SCP/SCU role selection items are ignored
// (default roles).
package demopacs

import (
	"errors"
	"fmt"
	"github.com/dicomgate/dicomgate/internal/pduconn"
	"io"
	"net"
	"sync"
	"time"
)

// Well-known UIDs.
const (
	// ImplicitVRLittleEndian is the default DICOM transfer syntax.
	ImplicitVRLittleEndian = "1.2.840.10008.1.2"
	// ExplicitVRLittleEndian is the transfer syntax preferred by the acceptor.
	ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"
	// VerificationSOPClass is the C-ECHO SOP class.
	VerificationSOPClass = "1.2.840.10008.1.1"
	// ImplementationClassUID identifies this acceptor in A-ASSOCIATE-AC and
	// in the file meta information of stored files (a 2.25 UUID-derived UID,
	// PS3.5 §B.2, so it needs no registered root).
	ImplementationClassUID = "2.25.66907759712330457091512750664823410751"
	// ImplementationVersionName accompanies ImplementationClassUID.
	ImplementationVersionName = "DICOMGATE_DEMO"
)

// DIMSE status codes used in responses (PS3.7 Annex C).
const (
	StatusSuccess               uint16 = 0x0000
	StatusOutOfResources        uint16 = 0xA700
	StatusCannotUnderstand      uint16 = 0xC000
	StatusUnrecognizedOperation uint16 = 0x0211
)

// Stored describes one instance written by a C-STORE.
type Stored struct {
	// Path is the final file path.
	Path string
	// SOPClassUID and SOPInstanceUID come from the C-STORE-RQ command set.
	SOPClassUID, SOPInstanceUID string
	// TransferSyntaxUID is the accepted transfer syntax of the context the
	// data set arrived on.
	TransferSyntaxUID string
	// CallingAETitle and CalledAETitle are the association's AE titles.
	CallingAETitle, CalledAETitle string
	// DataSetBytes is the size of the received data set.
	DataSetBytes int64
}

// Config configures a Server.
type Config struct {
	// Name labels log lines (e.g. "PACS_A").
	Name string
	// Dir is where C-STORE instances are stored (created if missing). Empty
	// means instances are received and acknowledged but not stored.
	Dir string
	// MaxPDULength is the maximum P-DATA-TF PDU length announced in the
	// A-ASSOCIATE-AC (sub-item 0x51); 0 means 16384 (dcmtk's default).
	MaxPDULength uint32
	// IdleTimeout closes an association that sends nothing for this long
	// (like the DICOM ARTIM timer / dcmtk's --dimse-timeout); 0 means 60 s.
	IdleTimeout time.Duration
	// Logf receives one line per association event; nil discards them.
	Logf func(format string, args ...any)
	// OnStored, when set, is called after each instance is stored.
	OnStored func(Stored)
}

// Server accepts DICOM associations.
type Server struct {
	cfg Config

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.MaxPDULength == 0 {
		cfg.MaxPDULength = 16384
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Name == "" {
		cfg.Name = "demopacs"
	}
	return &Server{cfg: cfg, conns: map[net.Conn]struct{}{}}
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background.
func Start(addr string, cfg Config) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demopacs %s: %w", cfg.Name, err)
	}
	s := New(cfg)
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	go func() {
		if err := s.Serve(ln); err != nil {
			s.cfg.Logf("%s: stopped accepting on %s: %v", s.cfg.Name, ln.Addr(), err)
		}
	}()
	return s, nil
}

// Addr returns the listening address (nil before Serve or Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve accepts associations on ln until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops accepting, closes open associations and waits for their
// goroutines (a store in progress is abandoned; its temporary file is removed).
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// handle runs one association.
func (s *Server) handle(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	a := &assoc{s: s, c: c, peer: c.RemoteAddr().String(), r: pduconn.NewReader(c)}
	a.r.IdleTimeout = s.cfg.IdleTimeout
	if err := a.run(); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		s.cfg.Logf("%s: association from %s: %v", s.cfg.Name, a.peer, err)
	}
	a.abandon()
}
