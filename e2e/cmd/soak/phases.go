package main

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// phaseStore opens N TLS associations at once (all of them hold an accepted
// association before the first C-STORE is sent), then each stores its own
// instance and releases; every stored file is compared with what was sent.
func (e *env) phaseStore() []row {
	n := e.o.associations
	start := time.Now()
	type opened struct {
		a    *scu
		c    net.Conn
		fail string
	}
	res := make([]opened, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, _, err := e.dialLimited(e.tlsCfg)
			if err != nil {
				res[i].fail = "connect: " + err.Error()
				return
			}
			called := []string{"PACS_A", "PACS_B"}[i%2]
			a, err := open(c, rqBytes("SOAK", called), e.o.stepTimeout)
			if err != nil {
				c.Close()
				res[i].fail = err.Error()
				return
			}
			res[i].a, res[i].c = a, c
		}(i)
	}
	wg.Wait()
	concurrent := 0
	for _, r := range res {
		if r.a != nil {
			concurrent++
		}
	}
	active := e.serve.metric("dicomgate_gateway_connections_active")
	var mu sync.Mutex
	var fails []string
	for i := range res {
		if res[i].fail != "" {
			fails = append(fails, res[i].fail)
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer res[i].c.Close()
			called := []string{"PACS_A", "PACS_B"}[i%2]
			if msg := e.storeOn(res[i].a, called); msg != "" {
				mu.Lock()
				fails = append(fails, msg)
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	return []row{{phase: "store", what: fmt.Sprintf("concurrent TLS associations, C-STORE %d-byte instance each", e.o.instanceBytes),
		tried: n, ok: n - len(fails), lost: len(fails), lostDetail: fails, elapsed: time.Since(start),
		expected: "all stored byte for byte",
		note:     fmt.Sprintf("%d open at once (gateway connections_active %.0f)", concurrent, active)}}
}

// storeOn stores a fresh instance on an open association, releases it and
// checks the stored file ("" when all is well).
func (e *env) storeOn(a *scu, called string) string {
	k := e.nextInst.Add(1)
	uid := fmt.Sprintf("2.25.%d%09d", time.Now().UnixNano()%1_000_000_000, k)
	inst := newInstance(uid, e.o.instanceBytes, k)
	if err := a.store(inst, 1, e.o.stepTimeout); err != nil {
		return err.Error()
	}
	if err := a.release(e.o.stepTimeout); err != nil {
		return err.Error()
	}
	return e.checkStored(inst, called)
}

// checkStored compares the stored copy of inst with what was sent.
func (e *env) checkStored(inst instance, called string) string {
	v, ok := e.stored.Load(inst.uid)
	if !ok {
		return "instance " + inst.uid + " acknowledged but not stored"
	}
	st := v.(storedT)
	b, err := os.ReadFile(st.Path)
	if err != nil {
		return "reading the stored instance: " + err.Error()
	}
	if !strings.HasSuffix(string(b), string(inst.dataSet)) || st.DataSetBytes != int64(len(inst.dataSet)) {
		return fmt.Sprintf("instance %s stored with different bytes (%d stored, %d sent)", inst.uid, st.DataSetBytes, len(inst.dataSet))
	}
	if filepath.Dir(st.Path) != e.pacs[called].dir {
		return fmt.Sprintf("instance %s stored by the wrong acceptor (%s)", inst.uid, filepath.Dir(st.Path))
	}
	return ""
}

// attackResult is what became of one kind of attack connection.
type attackResult struct {
	closed, notClosed int // closed by the gateway / still open at the limit
	early             int // of closed: closed before the attack was fully sent (e.g. in the TLS handshake)
	slowest           time.Duration
	details           []string
}

// errStillOpen: the gateway did not close an attack connection in time.
type errStillOpen struct{ limit time.Duration }

func (e errStillOpen) Error() string { return fmt.Sprintf("still open after %v", e.limit) }

// dialSlots bounds the TLS handshakes the soak runs at once, so that the
// client side (on the same machine) does not starve the gateway.
var dialSlots = make(chan struct{}, 64)

// runAttack starts n attackers (each given its index) concurrently and waits
// for them; each returns the time from its start to the gateway's close,
// errStillOpen when the gateway did not close it, or another error when the
// gateway closed it before the attack was fully sent.
func runAttack(n int, one func(i int) (time.Duration, error)) attackResult {
	var r attackResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			d, err := one(i)
			mu.Lock()
			defer mu.Unlock()
			var so errStillOpen
			switch {
			case errors.As(err, &so):
				r.notClosed++
				r.details = append(r.details, err.Error())
			case err != nil:
				r.closed++
				r.early++
			default:
				r.closed++
				r.slowest = max(r.slowest, d)
			}
		}(i)
	}
	wg.Wait()
	return r
}

// dialLimited is dialTLS within dialSlots; it also returns when the TCP
// connect started (the gateway's accept, from which its deadline counts).
func (e *env) dialLimited(cfg *tls.Config) (net.Conn, time.Time, error) {
	dialSlots <- struct{}{}
	defer func() { <-dialSlots }()
	t0 := time.Now()
	c, err := dialTLS(e.serve.addr, cfg, e.o.stepTimeout)
	return c, t0, err
}

// waitClosed reads c until the gateway closes it (EOF or reset) and returns
// how long that took since start; an error when c stays open past limit.
func waitClosed(c net.Conn, start time.Time, limit time.Duration) (time.Duration, error) {
	_ = c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return 0, errStillOpen{limit}
	}
	return time.Since(start), nil
}

// phaseSlowloris: connections stalling in the TLS handshake or in the
// A-ASSOCIATE-RQ are closed by the filter's inspect deadline (from accept),
// while honest associations go through.
func (e *env) phaseSlowloris() []row {
	n := map[bool]int{false: 300, true: 60}[e.o.short]
	limit := inspectTimeout + 3*time.Second // the deadline is checked every 500 ms at most
	start := time.Now()
	beforeBackend := e.backendConns()
	var honestFails []string
	honestDone := make(chan struct{})
	go func() {
		time.Sleep(200 * time.Millisecond) // while the stalled connections are open
		honestFails = e.honestBatch(50, 10)
		close(honestDone)
	}()
	var partial attackResult
	partialDone := make(chan struct{})
	go func() {
		defer close(partialDone)
		partial = runAttack(n, func(int) (time.Duration, error) {
			c, t0, err := e.dialLimited(e.tlsCfg)
			if err != nil {
				return 0, err
			}
			defer c.Close()
			if _, err := c.Write(rqBytes("SOAK", "PACS_A")[:3]); err != nil {
				return 0, err
			}
			return waitClosed(c, t0, limit)
		})
	}()
	handshake := runAttack(n, func(int) (time.Duration, error) {
		t0 := time.Now()
		c, err := net.Dial("tcp", e.serve.addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		_, _ = c.Write([]byte{0x16, 0x03, 0x01}) // 3 bytes of a TLS ClientHello record, then silence
		return waitClosed(c, t0, limit)
	})
	<-partialDone
	<-honestDone
	honestOK := 50 - len(honestFails)
	leaked := e.backendConns() - beforeBackend - int64(honestOK)
	rows := []row{
		{phase: "slowloris", what: "TCP connect, 3 bytes of a ClientHello, silence", tried: n, ok: handshake.closed, lost: handshake.notClosed,
			lostDetail: handshake.details, expected: fmt.Sprintf("closed by the inspect deadline (%v from accept)", inspectTimeout),
			note: fmt.Sprintf("slowest close %.1f s", handshake.slowest.Seconds())},
		{phase: "slowloris", what: "TLS done, 3 bytes of an A-ASSOCIATE-RQ, silence", tried: n, ok: partial.closed, lost: partial.notClosed,
			lostDetail: partial.details, expected: "closed by the inspect deadline",
			note: fmt.Sprintf("slowest close %.1f s; %d closed in the TLS handshake", partial.slowest.Seconds(), partial.early)},
		{phase: "slowloris", what: "honest associations meanwhile (C-STORE)", tried: 50, ok: honestOK, lost: len(honestFails),
			lostDetail: honestFails, expected: "all stored byte for byte"},
	}
	if leaked > 0 {
		rows = append(rows, row{phase: "slowloris", what: "stalled connections reaching a backend", tried: 2 * n, lost: int(leaked), expected: "none"})
	}
	rows[0].elapsed = time.Since(start)
	return rows
}

// phaseMalformed: inputs the filter must refuse, none reaching a backend.
func (e *env) phaseMalformed() []row {
	n := map[bool]int{false: 100, true: 20}[e.o.short]
	var rows []row
	tlsAttack := func(what, expected string, payload func(i int) []byte, mtls bool) {
		before := e.backendConns()
		cfg := e.tlsCfg
		if !mtls {
			cfg = cfg.Clone()
			cfg.Certificates = nil
		}
		r := runAttack(n, func(i int) (time.Duration, error) {
			c, t0, err := e.dialLimited(cfg)
			if err != nil {
				if !mtls { // refused in the handshake: the expected close
					return time.Since(t0), nil
				}
				return 0, err
			}
			defer c.Close()
			_, _ = c.Write(payload(i))
			return waitClosed(c, t0, 10*time.Second)
		})
		reached := int(e.backendConns() - before)
		rows = append(rows, row{phase: "malformed", what: what, tried: n, ok: r.closed - reached, lost: r.notClosed + reached,
			lostDetail: append(r.details, repeat(reached, "reached a backend")...), expected: expected,
			note: fmt.Sprintf("slowest close %.2f s", r.slowest.Seconds())})
	}
	tlsAttack("A-ASSOCIATE-RQ header declaring 2 MiB (> maxAssociateRQBytes)", "closed at the header (too_large)", func(int) []byte {
		h := []byte{0x01, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(h[2:], 2<<20)
		return append(h, make([]byte, 4096)...)
	}, true)
	tlsAttack("random bytes", "closed as not DICOM", func(i int) []byte {
		b := make([]byte, 512)
		x := uint64(i)*0x9E3779B97F4A7C15 | 1
		for k := range b {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			b[k] = byte(x)
		}
		b[0] = 0x47 // never a valid first PDU type
		return b
	}, true)
	tlsAttack("an HTTP request", "closed as not DICOM", func(int) []byte {
		return []byte("GET / HTTP/1.1\r\nHost: pacs\r\n\r\n")
	}, true)
	tlsAttack("a P-DATA-TF before any A-ASSOCIATE-RQ", "closed as not an association", func(int) []byte {
		return []byte{0x04, 0, 0, 0, 0, 6, 0, 0, 0, 2, 1, 3}
	}, true)
	tlsAttack(`calling AE "CT1\0SPOOF" without CT1's certificate (bypass)`, "refused as malformed (NUL in an AE title)", func(int) []byte {
		rq := rqBytes("SOAK", "PACS_A")
		copy(rq[26:42], "CT1\x00SPOOF       ") // calling AE title: bytes 26..41 of the RQ
		return rq
	}, true)
	tlsAttack(`two user identities, "alice" then "mallory" (bypass of a deny-mallory rule)`, "refused as malformed (a second user-identity sub-item)", func(int) []byte {
		return rqTwoIdentities("SOAK", "PACS_A", "alice", "mallory")
	}, true)
	tlsAttack("no client certificate (mutual TLS)", "refused in the TLS handshake", func(int) []byte {
		return rqBytes("SOAK", "PACS_A")
	}, false)
	return rows
}

func repeat(n int, s string) []string {
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, s)
	}
	return out
}

// phaseMemoryFlood: connections each holding 1 MB of an unfinished RQ (the
// declared length is 1,000,000 bytes, under maxAssociateRQBytes) until the
// inspect deadline closes them; honest associations go through meanwhile;
// the gateway's RSS peak and RSS after the flood are measured.
func (e *env) phaseMemoryFlood() []row {
	n := e.o.floodConns
	const declared, sent = 1_000_000, 999_000
	start := time.Now()
	rss0, _ := e.serve.rss()
	var peakDuring atomic.Int64
	stopSample := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if cur, _ := e.serve.rss(); cur > peakDuring.Load() {
				peakDuring.Store(cur)
			}
			select {
			case <-stopSample:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	before := e.backendConns()
	var honestFails []string
	honestDone := make(chan struct{})
	go func() {
		time.Sleep(500 * time.Millisecond)
		honestFails = e.honestBatch(50, 10)
		close(honestDone)
	}()
	payload := make([]byte, sent)
	payload[0] = 0x01
	binary.BigEndian.PutUint32(payload[2:6], declared-6)
	r := runAttack(n, func(int) (time.Duration, error) {
		c, t0, err := e.dialLimited(e.tlsCfg)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		// The write blocks while the gateway's budget holds it back; how it
		// ends is the close waitClosed measures.
		go func() { _, _ = c.Write(payload) }()
		return waitClosed(c, t0, inspectTimeout+10*time.Second)
	})
	<-honestDone
	close(stopSample)
	<-sampled
	honestOK := 50 - len(honestFails)
	reached := int(e.backendConns() - before - int64(honestOK))
	pauses := e.serve.metric("dicomgate_gateway_buffer_budget_pauses_total")
	// After the flood: the gateway returns freed memory (debug.FreeOSMemory) once buffered drains.
	buffered := e.serve.waitMetric("dicomgate_gateway_buffered_bytes", func(v float64) bool { return v == 0 })
	returns := e.serve.waitMetric("dicomgate_gateway_memory_returns_total", func(v float64) bool { return v >= 1 })
	time.Sleep(time.Second)
	rssAfter, hwm := e.serve.rss()
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	rows := []row{
		{phase: "memory flood", what: fmt.Sprintf("%d TLS connections each sending 1 MB of a 1,000,000-byte RQ", n), tried: n,
			ok: r.closed, lost: r.notClosed + max(0, reached), lostDetail: r.details, elapsed: time.Since(start),
			expected: "held, closed by the inspect deadline, none reaching a backend",
			note: fmt.Sprintf("%d closed in the TLS handshake; gateway RSS %.0f MiB before, peak %.0f MiB (VmHWM %.0f), %.0f MiB after; budget pauses %.0f; buffered after %.0f; memory returns %.0f",
				r.early, mib(rss0), mib(peakDuring.Load()), mib(hwm), mib(rssAfter), pauses, buffered, returns)},
		{phase: "memory flood", what: "honest associations meanwhile (C-STORE)", tried: 50, ok: honestOK, lost: len(honestFails),
			lostDetail: honestFails, expected: "all stored byte for byte"},
	}
	return rows
}

// phaseFDFlood: more idle TCP connections than --max-connections; the excess
// is closed at accept and counted; associations in flight continue; once the
// flood ends, new associations succeed.
func (e *env) phaseFDFlood() []row {
	limit := e.serve.maxConnections
	n := limit + map[bool]int{false: 500, true: 200}[e.o.short]
	start := time.Now()
	overflow0 := e.serve.metric("dicomgate_gateway_connections_overflow_total")
	// Associations in flight across the flood: opened before, stored after.
	inflight := 20
	type held struct {
		a *scu
		c net.Conn
	}
	var opens []held
	var fails []string
	for i := 0; i < inflight; i++ {
		c, err := dialTLS(e.serve.addr, e.tlsCfg, e.o.stepTimeout)
		if err != nil {
			fails = append(fails, "connect: "+err.Error())
			continue
		}
		a, err := open(c, rqBytes("SOAK", "PACS_A"), e.o.stepTimeout)
		if err != nil {
			c.Close()
			fails = append(fails, err.Error())
			continue
		}
		opens = append(opens, held{a, c})
	}
	var flood []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", e.serve.addr)
		if err != nil {
			break
		}
		flood = append(flood, c)
	}
	overflow := e.serve.waitMetric("dicomgate_gateway_connections_overflow_total", func(v float64) bool { return v-overflow0 >= float64(len(flood)-limit+inflight) })
	for _, o := range opens { // in flight: must not have been cut
		if msg := e.storeOn(o.a, "PACS_A"); msg != "" {
			fails = append(fails, "in flight during the flood: "+msg)
		}
		o.c.Close()
	}
	for _, c := range flood {
		c.Close()
	}
	// The flood's connections close on their own (client EOF); then new associations succeed.
	e.serve.waitMetric("dicomgate_gateway_connections_active", func(v float64) bool { return v == 0 })
	after := e.honestBatch(20, 10)
	return []row{
		{phase: "fd flood", what: fmt.Sprintf("%d idle TCP connections vs --max-connections %d", len(flood), limit), tried: len(flood),
			ok: len(flood), expected: "excess closed at accept, counted; the gateway keeps serving", elapsed: time.Since(start),
			note: fmt.Sprintf("connections_overflow_total +%.0f", overflow-overflow0)},
		{phase: "fd flood", what: "associations in flight across the flood, then new ones", tried: inflight + 20,
			ok: inflight + 20 - len(fails) - len(after), lost: len(fails) + len(after), lostDetail: append(fails, after...),
			expected: "in-flight ones complete, new ones succeed after the flood"},
	}
}

// phaseFDExhaustion: a second gateway without a connection limit under
// RLIMIT_NOFILE 256: accept fails with EMFILE; the gateway backs off, keeps
// its open associations, and serves again once descriptors are free.
func (e *env) phaseFDExhaustion() []row {
	start := time.Now()
	second, err := startServe(e.o.bin, e.serveArgs("--max-connections", "-1"), 256, filepath.Join(e.dir, "serve-emfile.log"))
	if err != nil {
		return []row{{phase: "fd exhaustion", what: "start a gateway under ulimit -n 256", tried: 1, lost: 1, lostDetail: []string{err.Error()}}}
	}
	defer second.stop()
	var fails []string
	// In flight before the exhaustion.
	c, err := dialTLS(second.addr, e.tlsCfg, e.o.stepTimeout)
	var a *scu
	if err == nil {
		a, err = open(c, rqBytes("SOAK", "PACS_B"), e.o.stepTimeout)
	}
	if err != nil {
		fails = append(fails, "before the flood: "+err.Error())
	}
	var flood []net.Conn
	for i := 0; i < 400; i++ {
		fc, err := net.Dial("tcp", second.addr)
		if err != nil {
			break
		}
		flood = append(flood, fc)
	}
	acceptErrs := second.waitMetric("dicomgate_gateway_accept_errors_total", func(v float64) bool { return v > 0 })
	if a != nil {
		if msg := e.storeOn(a, "PACS_B"); msg != "" {
			fails = append(fails, "in flight during EMFILE: "+msg)
		}
		c.Close()
	}
	for _, fc := range flood {
		fc.Close()
	}
	alive := second.alive()
	second.waitMetric("dicomgate_gateway_connections_active", func(v float64) bool { return v == 0 })
	for i := 0; i < 10; i++ {
		if msg := e.honest(second.addr, "PACS_B"); msg != "" {
			fails = append(fails, "after the flood: "+msg)
		}
	}
	lost := len(fails)
	if !alive {
		lost++
		fails = append(fails, "the gateway exited under EMFILE: "+second.exitErr())
	}
	if acceptErrs <= 0 {
		fails = append(fails, "no EMFILE was provoked (accept_errors_total 0): the phase proved nothing")
		lost++
	}
	return []row{{phase: "fd exhaustion", what: fmt.Sprintf("%d idle connections, ulimit -n 256, no --max-connections", len(flood)),
		tried: 11, ok: 11 - min(11, lost), lost: lost, lostDetail: fails, elapsed: time.Since(start),
		expected: "EMFILE backs off; in-flight and later associations succeed",
		note:     fmt.Sprintf("accept_errors_total %.0f", acceptErrs)}}
}

// serveArgs returns the first gateway's serve arguments plus extra.
func (e *env) serveArgs(extra ...string) []string {
	return append(append([]string{}, e.serveBaseArgs...), extra...)
}
