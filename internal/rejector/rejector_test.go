package rejector

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/sdk/rejectwire"
	"github.com/stretchr/testify/require"
)

const (
	testKey  = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	otherKey = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
)

var captures = filepath.Join("..", "..", "sdk", "pdu", "testdata")

func readCapture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(captures, name))
	require.NoError(t, err)
	return b
}

// firstPDU is the first PDU of a requester's stream.
func firstPDU(b []byte) []byte {
	return b[:6+int(binary.BigEndian.Uint32(b[2:6]))]
}

type fixture struct {
	s    *Server
	addr string
	logs *logBuf
}

type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, sprintf(format, args...))
}

func (l *logBuf) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func start(t *testing.T, cfg Config) *fixture {
	t.Helper()
	lb := &logBuf{}
	if cfg.Keys == nil {
		cfg.Keys = []string{testKey}
	}
	cfg.Logf = lb.logf
	s, err := New(cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, s.Shutdown(ctx))
		require.NoError(t, <-done)
	})
	return &fixture{s: s, addr: ln.Addr().String(), logs: lb}
}

func preamble(t *testing.T, key string, p rejectwire.Preamble) []byte {
	t.Helper()
	k, err := rejectwire.NewKey(key)
	require.NoError(t, err)
	var b [rejectwire.Size]byte
	k.Sign(&b, p)
	return b[:]
}

// exchange sends b and returns every byte the rejector sent until it
// closed. A refusal with unread bytes in the rejector's receive buffer
// ends in a reset (RFC 1122 §4.2.2.13), which counts as a close here.
func exchange(t *testing.T, addr string, b []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Write(b)
	require.NoError(t, err)
	out, err := io.ReadAll(c)
	if !errors.Is(err, syscall.ECONNRESET) {
		require.NoError(t, err)
	}
	return out
}

// TestAnswersLikeTheCaptures: for a requester's real A-ASSOCIATE-RQ the
// rejector sends byte for byte the A-ASSOCIATE-RJ a real acceptor sent
// (dcmtk storescp/dcmqrscp and Orthanc captures), given that RJ's
// result/source/reason in the preamble.
func TestAnswersLikeTheCaptures(t *testing.T) {
	f := start(t, Config{})
	for _, name := range []string{"rj_called_ae", "rj_calling_ae", "rj_limit", "rj_refuse", "orthanc_rj_called_ae"} {
		rq := firstPDU(readCapture(t, name+".c2s.bin"))
		want := readCapture(t, name+".s2c.bin")
		require.Len(t, want, 10, name)
		p := rejectwire.Preamble{Result: want[7], Source: want[8], Reason: want[9], ConnID: 9, Time: time.Now().UnixNano()}
		got := exchange(t, f.addr, append(preamble(t, testKey, p), rq...))
		require.Equal(t, want, got, name)
	}
	// calling-ae-not-recognized (1/1/3): no capture (dcmtk answers 7 for
	// both AE cases); the same PDU with reason 3.
	rq := firstPDU(readCapture(t, "echo_default.c2s.bin"))
	got := exchange(t, f.addr, append(preamble(t, testKey, rejectwire.Preamble{Result: 1, Source: 1, Reason: 3, Time: time.Now().UnixNano()}), rq...))
	require.Equal(t, []byte{0x03, 0, 0, 0, 0, 4, 0, 1, 1, 3}, got)
	st := f.s.Stats()
	require.Equal(t, map[string]uint64{"1/1/7": 3, "2/3/2": 1, "1/1/1": 1, "1/1/3": 1}, st.Rejected)
	for _, c := range Causes {
		require.Zero(t, st.Refused[c], c)
	}
}

// TestRefusals: every connection without a valid preamble and RQ is closed
// without a byte, counted by cause and logged.
func TestRefusals(t *testing.T) {
	now := time.Now()
	f := start(t, Config{Keys: []string{otherKey, testKey}, ARTIM: 300 * time.Millisecond, MaxRQBytes: 4096})
	rq := firstPDU(readCapture(t, "echo_default.c2s.bin"))
	good := func() []byte {
		return preamble(t, testKey, rejectwire.Preamble{Result: 1, Source: 1, Reason: 7, Time: now.UnixNano()})
	}
	forged := preamble(t, "ZZECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", rejectwire.Preamble{Result: 1, Source: 1, Reason: 7, Time: now.UnixNano()})
	tampered := good()
	tampered[7] = 3
	version := good()
	version[4] = 2
	badCode := preamble(t, testKey, rejectwire.Preamble{Result: 1, Source: 1, Reason: 5, Time: now.UnixNano()})
	old := preamble(t, testKey, rejectwire.Preamble{Result: 1, Source: 1, Reason: 7, Time: now.Add(-time.Minute).UnixNano()})
	big := append([]byte(nil), rq...)
	big[2], big[3], big[4], big[5] = 0, 0, 0x20, 0
	release := []byte{0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0}
	for _, tc := range []struct {
		name, cause string
		send        []byte
	}{
		{"plain RQ, no preamble", CauseMagic, rq},
		{"forged key", CauseMAC, append(forged, rq...)},
		{"tampered reason", CauseMAC, append(tampered, rq...)},
		{"other version", CauseVersion, append(version, rq...)},
		{"invalid code", CauseCode, append(badCode, rq...)},
		{"expired", CauseExpired, append(old, rq...)},
		{"short preamble", CauseNoPreamble, good()[:30]},
		{"preamble only", CauseNoRQ, good()},
		{"truncated RQ", CauseNoRQ, append(good(), rq[:40]...)},
		{"not an RQ", CauseNotRQ, append(good(), release...)},
		{"RQ too large", CauseTooLarge, append(good(), big...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.s.Stats().Refused[tc.cause]
			require.Empty(t, exchange(t, f.addr, tc.send))
			require.Eventually(t, func() bool { return f.s.Stats().Refused[tc.cause] == before+1 }, 5*time.Second, 5*time.Millisecond)
			require.Contains(t, f.logs.all(), "refused ("+tc.cause+")")
		})
	}
	// A client that sends nothing is refused at the ARTIM deadline.
	c, err := net.Dial("tcp", f.addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	out, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Empty(t, out)
	require.Eventually(t, func() bool { return f.s.Stats().Refused[CauseNoPreamble] == 2 }, 5*time.Second, 5*time.Millisecond)
	require.Contains(t, f.logs.all(), "deadline (--artim)")
	require.Empty(t, f.s.Stats().Rejected)
}

// TestKeyRotation: both keys of a rotation are accepted.
func TestKeyRotation(t *testing.T) {
	f := start(t, Config{Keys: []string{otherKey, testKey}})
	rq := firstPDU(readCapture(t, "echo_default.c2s.bin"))
	for _, k := range []string{testKey, otherKey} {
		got := exchange(t, f.addr, append(preamble(t, k, rejectwire.Preamble{Result: 2, Source: 3, Reason: 1, Time: time.Now().UnixNano()}), rq...))
		require.Equal(t, []byte{0x03, 0, 0, 0, 0, 4, 0, 2, 3, 1}, got)
	}
}

// TestManyConcurrentConnections: 1,000 connections open at once (each
// holds its preamble until all are connected) are all answered.
func TestManyConcurrentConnections(t *testing.T) {
	f := start(t, Config{})
	rq := firstPDU(readCapture(t, "echo_default.c2s.bin"))
	const n = 1000
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", f.addr)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(60*time.Second)))
		conns[i] = c
	}
	require.Eventually(t, func() bool { return f.s.Stats().Active == n }, 30*time.Second, 10*time.Millisecond)
	msg := append(preamble(t, testKey, rejectwire.Preamble{Result: 1, Source: 1, Reason: 3, Time: time.Now().UnixNano()}), rq...)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Write(msg); err != nil {
				errs <- err
				return
			}
			out, err := io.ReadAll(c)
			if err == nil && !bytes.Equal(out, []byte{0x03, 0, 0, 0, 0, 4, 0, 1, 1, 3}) {
				err = io.ErrUnexpectedEOF
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, uint64(n), f.s.Stats().Rejected["1/1/3"])
}

// TestOverload: above MaxConns a connection is closed at once and counted.
func TestOverload(t *testing.T) {
	f := start(t, Config{MaxConns: 1})
	first, err := net.Dial("tcp", f.addr)
	require.NoError(t, err)
	defer first.Close()
	require.Eventually(t, func() bool { return f.s.Stats().Active == 1 }, 5*time.Second, 5*time.Millisecond)
	require.Empty(t, exchange(t, f.addr, nil))
	require.Equal(t, uint64(1), f.s.Stats().Refused[CauseOverload])
}

// TestMetricsAndHealth: /metrics lists every refusal cause (0 included)
// and the RJs sent; /healthz answers ok.
func TestMetricsAndHealth(t *testing.T) {
	f := start(t, Config{})
	rq := firstPDU(readCapture(t, "echo_default.c2s.bin"))
	exchange(t, f.addr, append(preamble(t, testKey, rejectwire.Preamble{Result: 1, Source: 1, Reason: 7, Time: time.Now().UnixNano()}), rq...))
	exchange(t, f.addr, rq)
	srv := httptest.NewServer(f.s.Handler())
	defer srv.Close()
	body := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		"dicomgate_reject_connections_total 2\n",
		`dicomgate_reject_sent_total{result="1",source="1",reason="7"} 1` + "\n",
		`dicomgate_reject_refused_total{cause="not_from_filter"} 1` + "\n",
		`dicomgate_reject_refused_total{cause="forged"} 0` + "\n",
		`dicomgate_reject_refused_total{cause="overload"} 0` + "\n",
		"dicomgate_reject_active_connections ",
	} {
		require.Contains(t, body, want)
	}
	require.Equal(t, "ok\n", get(t, srv.URL+"/healthz"))
}

func TestNewValidation(t *testing.T) {
	_, err := New(Config{})
	require.ErrorContains(t, err, "no key")
	_, err = New(Config{Keys: []string{"short"}})
	require.ErrorContains(t, err, "key 1: must be 44 to 64 base64 characters")
	dir := t.TempDir()
	name := filepath.Join(dir, "keys")
	require.NoError(t, os.WriteFile(name, []byte("# rotation: new key first\n"+testKey+"\n\n"+otherKey+"\n"), 0o600))
	keys, err := ReadKeyFile(name)
	require.NoError(t, err)
	require.Equal(t, []string{testKey, otherKey}, keys)
	require.NoError(t, os.WriteFile(name, []byte("# nothing\n"), 0o600))
	_, err = ReadKeyFile(name)
	require.ErrorContains(t, err, "no key")
	require.NoError(t, os.WriteFile(name, []byte(testKey+"\nbad key\n"), 0o600))
	_, err = ReadKeyFile(name)
	require.ErrorContains(t, err, ":2: the key must be 44 to 64")
}
