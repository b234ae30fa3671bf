package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/internal/demopacs"
	"github.com/dicomgate/dicomgate/internal/pduconn"
	"github.com/dicomgate/dicomgate/internal/scu"
	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// The engine against the demo acceptor and small hand-made acceptors. Nothing here is timed: the rate limit is
// checked on a virtual clock, by count.

func pacs(t *testing.T, cfg demopacs.Config) string {
	s, err := demopacs.Start("127.0.0.1:0", cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s.Addr().String()
}

func base(addr string, sc Scenario) Config {
	return Config{SCU: scu.Config{Addr: addr, CallingAE: "BENCH", CalledAE: "PACS", Timeout: 10 * time.Second}, Scenario: sc, Concurrency: 4, Count: 20}
}

func TestEchoCountsCheckedAssociations(t *testing.T) {
	res, err := Run(context.Background(), base(pacs(t, demopacs.Config{}), Echo))
	require.NoError(t, err)
	require.Equal(t, int64(20), res.Attempts)
	require.Equal(t, int64(20), res.Associations)
	require.Equal(t, int64(20), res.Operations, "one C-ECHO per association")
	require.Zero(t, res.Errors)
	require.Len(t, res.Latencies(), 20)
	require.Positive(t, res.Latency.P50)
	require.LessOrEqual(t, res.Latency.P50, res.Latency.Max)
	require.Positive(t, res.AssociationsPerSecond)
}

func TestStoreCountsEveryStoredInstance(t *testing.T) {
	var mu sync.Mutex
	var stored []demopacs.Stored
	addr := pacs(t, demopacs.Config{Dir: t.TempDir(), OnStored: func(s demopacs.Stored) { mu.Lock(); stored = append(stored, s); mu.Unlock() }})
	gen, err := scu.GenerateInstance(64<<10, demopacs.NewUID())
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "sample.dcm")
	_, err = demopacs.WriteSample(file)
	require.NoError(t, err)
	part10, err := scu.ReadPart10(file)
	require.NoError(t, err)
	cfg := base(addr, Store)
	cfg.Count, cfg.Concurrency, cfg.StoresPerAssoc = 4, 2, 3
	cfg.Instances = []*scu.Instance{gen, part10} // two SOP class / transfer syntax pairs on one association
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Zero(t, res.Errors, "%v", res.FirstError)
	require.Equal(t, int64(4), res.Associations)
	require.Equal(t, int64(12), res.Operations)
	require.Len(t, stored, 12)
	require.Equal(t, int64(6*len(gen.DataSet)+6*len(part10.DataSet)), res.Bytes)
	var total int64
	for _, s := range stored {
		total += s.DataSetBytes
	}
	require.Equal(t, res.Bytes, total, "the bytes counted are the bytes the acceptor received")
	require.Positive(t, res.MBPerSecond)
}

// A C-STORE-RSP with a failing status is an error of kind status, never a stored instance.
func TestFailingStatusIsAnError(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	gen, err := scu.GenerateInstance(4096, demopacs.NewUID())
	require.NoError(t, err)
	cfg := base(pacs(t, demopacs.Config{Dir: notDir}), Store)
	cfg.Count, cfg.Instances = 5, []*scu.Instance{gen}
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Zero(t, res.Associations)
	require.Zero(t, res.Operations)
	require.Zero(t, res.Bytes)
	require.Equal(t, int64(5), res.Errors)
	require.Equal(t, map[string]int64{"status": 5}, res.ErrorsByKind)
	require.Contains(t, res.FirstError["status"], "C-STORE-RSP status 0xa700")
	require.Empty(t, res.Latencies(), "failed associations have no latency sample")
}

// virtualClock advances only when the runner sleeps: starts are scheduled, nothing waits.
type virtualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *virtualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *virtualClock) SleepUntil(_ context.Context, at time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.After(c.t) {
		c.t = at
	}
	return nil
}

func TestRateLimitByCount(t *testing.T) {
	addr := pacs(t, demopacs.Config{})
	// 50 starts per second for 1 s: exactly 50 starts, whatever the concurrency.
	cfg := base(addr, Echo)
	cfg.Count, cfg.Duration, cfg.Rate, cfg.Concurrency = 0, time.Second, 50, 3
	cfg.clock = &virtualClock{t: time.Unix(1e9, 0)}
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Equal(t, int64(50), res.Attempts)
	require.Equal(t, int64(50), res.Associations)
	require.InDelta(t, 0.98, res.ElapsedSeconds, 1e-9, "the last start is scheduled at 49/50 s")

	// A count under a rate: 5 starts at 10/s take 0.4 s of schedule.
	cfg = base(addr, Echo)
	cfg.Count, cfg.Rate, cfg.Concurrency = 5, 10, 2
	cfg.clock = &virtualClock{t: time.Unix(1e9, 0)}
	res, err = Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Equal(t, int64(5), res.Associations)
	require.InDelta(t, 0.4, res.ElapsedSeconds, 1e-9)
	require.InDelta(t, 12.5, res.AssociationsPerSecond, 1e-9)
}

func TestPercentilesExact(t *testing.T) {
	var xs []time.Duration
	for i := 1; i <= 100; i++ {
		xs = append(xs, time.Duration(i)*time.Millisecond)
	}
	rand.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
	require.Equal(t, Latency{P50: 50, P90: 90, P99: 99, Max: 100, Mean: 50.5}, Summarize(xs))
	small := []time.Duration{30 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}
	require.Equal(t, Latency{P50: 20, P90: 30, P99: 30, Max: 30, Mean: 20}, Summarize(small))
	require.Equal(t, Latency{}, Summarize(nil))
	require.Equal(t, 2.5, Median([]float64{4, 1, 3, 2}))
}

// acceptor answers every A-ASSOCIATE-RQ with reply (nil: closes the connection after reading it).
func acceptor(t *testing.T, reply []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	serve := func(c net.Conn) {
		defer c.Close()
		if _, err := pduconn.NewReader(c).ReadPDU(); err == nil && reply != nil {
			_, _ = c.Write(reply)
			_, _ = io.Copy(io.Discard, c)
		}
	}
	go func() {
		for c, err := ln.Accept(); err == nil; c, err = ln.Accept() {
			go serve(c)
		}
	}()
	return ln.Addr().String()
}

func TestRejectScenario(t *testing.T) {
	rj := (&pdu.AssociateRJ{Result: 1, Source: 1, Reason: 3}).AppendEncode(nil)
	for _, tc := range []struct {
		name, addr string
		ok         int64
		by         map[string]int64
		kinds      map[string]int64
	}{
		{"rj", acceptor(t, rj), 20, map[string]int64{"a-associate-rj": 20}, nil},
		{"close", acceptor(t, nil), 20, map[string]int64{"close": 20}, nil},
		{"accepted", pacs(t, demopacs.Config{}), 0, nil, map[string]int64{"accepted": 20}},
	} {
		res, err := Run(context.Background(), base(tc.addr, Reject))
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.ok, res.Associations, tc.name)
		require.Equal(t, tc.by, res.RejectedBy, tc.name)
		require.Equal(t, tc.kinds, res.ErrorsByKind, tc.name)
	}
	// The echo scenario counts a reject as an error of kind rejected.
	res, err := Run(context.Background(), base(acceptor(t, rj), Echo))
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"rejected": 20}, res.ErrorsByKind)
}

// countingListener counts connections open at once.
type countingListener struct {
	net.Listener
	open, peak *atomic.Int64
}

type countedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error { c.once.Do(func() { c.open.Add(-1) }); return c.Conn.Close() }

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	n := l.open.Add(1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return &countedConn{Conn: c, open: l.open}, nil
}

func TestHoldKeepsAssociationsOpenAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var open, peak atomic.Int64
	s := demopacs.New(demopacs.Config{})
	go func() { _ = s.Serve(countingListener{ln, &open, &peak}) }()
	t.Cleanup(func() { s.Close() })
	cfg := base(ln.Addr().String(), Hold)
	cfg.Concurrency, cfg.Count, cfg.Hold = 6, 6, 300*time.Millisecond
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Equal(t, int64(6), res.Associations)
	require.Equal(t, int64(6), peak.Load(), "all six associations were open at the same time")
}

func TestKind(t *testing.T) {
	for want, err := range map[string]error{
		"connect":  &scu.Error{Step: "connect", Err: errors.New("dial tcp 127.0.0.1:1: connection refused")},
		"tls":      &scu.Error{Step: "tls", Err: io.EOF},
		"tls ":     &scu.Error{Step: "associate", Err: &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}},
		"rejected": &scu.Error{Step: "associate", Err: &scu.RejectedError{Result: 1}},
		"status":   &scu.Error{Step: "echo", Err: &pduconn.StatusError{Status: 0x0110}},
		"timeout":  &scu.Error{Step: "store", Err: os.ErrDeadlineExceeded},
		"closed":   &scu.Error{Step: "associate", Err: fmt.Errorf("waiting: %w", io.EOF)},
		"accepted": errAccepted,
		"protocol": &scu.Error{Step: "associate", Err: errors.New("got A-RELEASE-RP instead of the A-ASSOCIATE-AC")},
	} {
		require.Equal(t, strings.TrimSpace(want), Kind(err), "%v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for want, cfg := range map[string]Config{
		"no address":             {Scenario: Echo, Concurrency: 1, Count: 1},
		"concurrency 0":          {SCU: scu.Config{Addr: "a:1"}, Scenario: Echo, Count: 1},
		"neither a count nor":    {SCU: scu.Config{Addr: "a:1"}, Scenario: Echo, Concurrency: 1},
		"no instance to store":   {SCU: scu.Config{Addr: "a:1"}, Scenario: Store, Concurrency: 1, Count: 1},
		"how long each":          {SCU: scu.Config{Addr: "a:1"}, Scenario: Hold, Concurrency: 1, Count: 1},
		`scenario "find": want`:  {SCU: scu.Config{Addr: "a:1"}, Scenario: "find", Concurrency: 1, Count: 1},
		"cannot be negative":     {SCU: scu.Config{Addr: "a:1"}, Scenario: Echo, Concurrency: 1, Count: 1, Rate: -1},
		"stores per association": {SCU: scu.Config{Addr: "a:1"}, Scenario: Store, Concurrency: 1, Count: 1, StoresPerAssoc: -1, Instances: []*scu.Instance{{}}},
	} {
		_, err := Run(context.Background(), cfg)
		require.ErrorContains(t, err, want)
	}
}
