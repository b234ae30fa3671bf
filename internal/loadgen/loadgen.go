// Package loadgen is the engine of `dicomgate bench`: it drives one DICOM scenario (echo, store, reject, hold)
// against one endpoint from concurrent workers, optionally rate-limited, for a count or a duration, and
// summarizes what it measured (latency percentiles, associations/s, MB/s, errors by kind); Compare runs the
// same scenario against several endpoints, interleaved, and WriteSVG draws the comparison.
//
// It checks what it measures (through internal/scu): an association counts only on an A-ASSOCIATE-AC
// accepting a context and an A-RELEASE-RP; a C-ECHO or C-STORE only on its response with status Success; a
// reject only on an A-ASSOCIATE-RJ or a close before any AC. Everything else is an error, counted by kind.
// Latencies are those of the successful associations only, every sample kept (percentiles are exact).
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dicomgate/dicomgate/internal/pduconn"
	"github.com/dicomgate/dicomgate/internal/scu"
)

// Scenario is what one association does.
type Scenario string

// The scenarios.
const (
	// Echo: association, C-ECHO, release.
	Echo Scenario = "echo"
	// Store: association, Config.StoresPerAssoc C-STOREs of Config.Instances (in turn), release.
	Store Scenario = "store"
	// Reject: the A-ASSOCIATE-RQ must be answered by an A-ASSOCIATE-RJ or a close (a policy deny).
	Reject Scenario = "reject"
	// Hold: association, Config.Hold of silence, release (idle associations held at once: Concurrency).
	Hold Scenario = "hold"
)

// Scenarios lists the scenarios in the order the CLI documents them.
var Scenarios = []Scenario{Echo, Store, Reject, Hold}

// Config is one run.
type Config struct {
	// SCU says how to connect and associate (address, TLS, AE titles, user identity, timeout); Run sets
	// its presentation contexts from the scenario.
	SCU scu.Config
	// Scenario is what each association does.
	Scenario Scenario
	// Concurrency is the number of workers, each running one association at a time.
	Concurrency int
	// Count is how many associations to start (0: until Duration ends).
	Count int
	// Duration stops starting associations once it has passed (0: until Count are started).
	Duration time.Duration
	// Rate is the most associations started per second, all workers together (0: no limit); start i is
	// scheduled at i/Rate after the beginning.
	Rate float64
	// StoresPerAssoc is the number of C-STOREs per association (store; 0 means 1).
	StoresPerAssoc int
	// Instances are stored in turn (store).
	Instances []*scu.Instance
	// Hold is how long each association stays idle before its release (hold).
	Hold time.Duration
	// Progress, when set, is called at most once a second while the run lasts.
	Progress func(Progress)

	clock clock // nil: the wall clock (tests pass a virtual one)
}

// Progress is a snapshot of a running run.
type Progress struct {
	Elapsed              time.Duration
	Associations, Errors int64
	Bytes                int64
}

// Result is what one run measured.
type Result struct {
	Target      string    `json:"target,omitempty"`
	Address     string    `json:"address"`
	Scenario    Scenario  `json:"scenario"`
	Concurrency int       `json:"concurrency"`
	Started     time.Time `json:"started"`
	// ElapsedSeconds runs from the first start to the end of the last association.
	ElapsedSeconds float64 `json:"elapsed_s"`
	// Attempts is the number of associations started; Associations those that succeeded; Errors the rest.
	Attempts     int64 `json:"attempts"`
	Associations int64 `json:"associations"`
	Errors       int64 `json:"errors"`
	// ErrorsByKind counts errors by kind: connect, tls, rejected, closed, timeout, status (a DIMSE
	// response with a failing status), accepted (reject scenario: the association was accepted), protocol.
	ErrorsByKind map[string]int64 `json:"errors_by_kind,omitempty"`
	// FirstError holds the first error message of each kind.
	FirstError map[string]string `json:"first_error,omitempty"`
	// RejectedBy counts, in the reject scenario, how the associations were refused: a-associate-rj, close.
	RejectedBy map[string]int64 `json:"rejected_by,omitempty"`
	// Operations counts successful C-ECHOs or C-STOREs; Bytes the data set bytes stored.
	Operations int64 `json:"operations"`
	Bytes      int64 `json:"bytes"`
	// Latency is the distribution of the successful associations' latency: TCP connect to A-RELEASE-RP
	// (reject: to the RJ or close; hold: without the idle time).
	Latency               Latency `json:"latency"`
	AssociationsPerSecond float64 `json:"associations_per_s"`
	// MBPerSecond is data set bytes stored per second, MB = 10^6 bytes.
	MBPerSecond float64 `json:"mb_per_s"`

	latencies []time.Duration // sorted
}

// Latencies returns the successful associations' latencies, sorted (shared: do not modify).
func (r *Result) Latencies() []time.Duration { return r.latencies }

// clock is the time the runner schedules by.
type clock interface {
	Now() time.Time
	// SleepUntil returns at t, or with ctx's error when ctx is done first.
	SleepUntil(ctx context.Context, t time.Time) error
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }
func (wallClock) SleepUntil(ctx context.Context, at time.Time) error {
	return sleep(ctx, time.Until(at))
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// validate checks cfg and fills its defaults.
func (cfg *Config) validate() error {
	switch {
	case cfg.SCU.Addr == "":
		return errors.New("no address: give the DICOM endpoint as HOST:PORT")
	case cfg.Concurrency < 1:
		return fmt.Errorf("concurrency %d: want 1 or more workers", cfg.Concurrency)
	case cfg.Count < 0 || cfg.Duration < 0 || cfg.Rate < 0:
		return errors.New("count, duration and rate cannot be negative")
	case cfg.Count == 0 && cfg.Duration == 0:
		return errors.New("neither a count nor a duration: give one (e.g. count 1000 or duration 30s)")
	}
	switch cfg.Scenario {
	case Echo, Reject:
	case Store:
		if len(cfg.Instances) == 0 {
			return errors.New("store: no instance to store: give Part 10 files or the size of a generated instance")
		}
		if cfg.StoresPerAssoc == 0 {
			cfg.StoresPerAssoc = 1
		}
		if cfg.StoresPerAssoc < 0 {
			return fmt.Errorf("stores per association %d: want 1 or more", cfg.StoresPerAssoc)
		}
	case Hold:
		if cfg.Hold <= 0 {
			return errors.New("hold: give how long each association stays idle (e.g. 10s)")
		}
	default:
		return fmt.Errorf("scenario %q: want one of echo, store, reject, hold", cfg.Scenario)
	}
	if cfg.clock == nil {
		cfg.clock = wallClock{}
	}
	return nil
}

// contexts are the presentation contexts the scenario proposes: Verification, plus each instance's
// (SOP class, transfer syntax) for store.
func (cfg *Config) contexts() ([]scu.Context, error) {
	out := []scu.Context{{AbstractSyntax: scu.UIDVerification, TransferSyntax: scu.UIDImplicitVRLittleEndian}}
	if cfg.Scenario != Store {
		return out, nil
	}
	seen := map[scu.Context]bool{out[0]: true}
	for _, in := range cfg.Instances {
		if pc := in.Context(); !seen[pc] {
			seen[pc] = true
			out = append(out, pc)
		}
	}
	if len(out) > 128 {
		return nil, fmt.Errorf("the instances need %d presentation contexts; an association carries at most 128: store fewer kinds of instance per run", len(out))
	}
	return out, nil
}

// runner is one run's shared state.
type runner struct {
	cfg     Config
	scu     scu.Config
	rq      []byte
	ok, bad atomic.Int64
	ops     atomic.Int64
	bytes   atomic.Int64
	nextIns atomic.Int64

	mu         sync.Mutex
	kinds      map[string]int64
	first      map[string]string
	rejectedBy map[string]int64
	streams    map[streamKey]*scu.Stream
}

type streamKey struct {
	in     *scu.Instance
	id     uint8
	maxPDU uint32
}

// Run runs cfg until its count or duration is reached or ctx is done (associations in flight finish). It
// returns an error only for a configuration that cannot run; failures of associations are counted in the
// Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, scu: cfg.SCU, kinds: map[string]int64{}, first: map[string]string{},
		rejectedBy: map[string]int64{}, streams: map[streamKey]*scu.Stream{}}
	var err error
	if r.scu.Contexts, err = cfg.contexts(); err != nil {
		return nil, err
	}
	r.rq = r.scu.RQ()
	// Encode every instance before the clock starts, for the context ID it is proposed on and the default
	// fragment size; an acceptor announcing a smaller maximum gets its own encoding on first use (store).
	for i, pc := range r.scu.Contexts {
		for _, in := range cfg.Instances {
			if in.Context() != pc {
				continue
			}
			id := uint8(2*i + 1)
			if _, done := r.streams[streamKey{in, id, scu.DefaultMaxPDU}]; done {
				continue
			}
			st, err := scu.EncodeStream(in, id, scu.DefaultMaxPDU)
			if err != nil {
				return nil, err
			}
			r.streams[streamKey{in, id, scu.DefaultMaxPDU}] = st
		}
	}
	clk := cfg.clock
	start := clk.Now()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	var next atomic.Int64
	// take reserves the next start, waiting for its slot under a rate limit; false: no more starts.
	take := func() bool {
		i := next.Add(1) - 1
		if (cfg.Count > 0 && i >= int64(cfg.Count)) || ctx.Err() != nil {
			return false
		}
		if interval == 0 {
			return deadline.IsZero() || clk.Now().Before(deadline)
		}
		at := start.Add(time.Duration(i) * interval)
		if !deadline.IsZero() && !at.Before(deadline) {
			return false
		}
		if at.After(clk.Now()) {
			return clk.SleepUntil(ctx, at) == nil
		}
		return true
	}
	lat := make([][]time.Duration, cfg.Concurrency)
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for take() {
				if d, ok := r.one(ctx); ok {
					lat[w] = append(lat[w], d)
				}
			}
		}()
	}
	stopProgress := r.progress(start)
	wg.Wait()
	stopProgress()
	elapsed := clk.Now().Sub(start)

	res := &Result{Address: cfg.SCU.Addr, Scenario: cfg.Scenario, Concurrency: cfg.Concurrency, Started: start,
		ElapsedSeconds: elapsed.Seconds(), Associations: r.ok.Load(), Errors: r.bad.Load(), Operations: r.ops.Load(),
		Bytes: r.bytes.Load()}
	res.Attempts = res.Associations + res.Errors
	if len(r.kinds) > 0 {
		res.ErrorsByKind, res.FirstError = r.kinds, r.first
	}
	if len(r.rejectedBy) > 0 {
		res.RejectedBy = r.rejectedBy
	}
	for _, l := range lat {
		res.latencies = append(res.latencies, l...)
	}
	res.Latency = Summarize(res.latencies)
	if s := elapsed.Seconds(); s > 0 {
		res.AssociationsPerSecond = float64(res.Associations) / s
		res.MBPerSecond = float64(res.Bytes) / 1e6 / s
	}
	return res, nil
}

// progress calls cfg.Progress once a second until the returned stop is called.
func (r *runner) progress(start time.Time) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.cfg.Progress(Progress{Elapsed: r.cfg.clock.Now().Sub(start), Associations: r.ok.Load(), Errors: r.bad.Load(), Bytes: r.bytes.Load()})
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// one runs one association of the scenario and returns its latency and whether it succeeded.
func (r *runner) one(ctx context.Context) (time.Duration, bool) {
	a, tm, err := scu.Associate(r.scu, r.rq)
	if r.cfg.Scenario == Reject {
		return r.judgeReject(a, tm, err)
	}
	if err != nil {
		return 0, r.fail(err)
	}
	var idle time.Duration
	switch r.cfg.Scenario {
	case Echo:
		if err := a.Echo(1); err != nil {
			a.Abort()
			return 0, r.fail(err)
		}
		r.ops.Add(1)
	case Store:
		for k := range r.cfg.StoresPerAssoc {
			if err := r.store(a, uint16(k+1)); err != nil {
				a.Abort()
				return 0, r.fail(err)
			}
		}
	case Hold:
		t0 := time.Now()
		_ = sleep(ctx, r.cfg.Hold) // cancelled: release early, still a held association
		idle = time.Since(t0)
	}
	if err := a.Release(); err != nil {
		return 0, r.fail(err)
	}
	r.ok.Add(1)
	return time.Since(a.Started) - idle, true
}

// judgeReject counts an A-ASSOCIATE-RJ or a close before any AC as a success.
func (r *runner) judgeReject(a *scu.Assoc, tm scu.Timing, err error) (time.Duration, bool) {
	if err == nil {
		a.Abort()
		return 0, r.fail(errAccepted)
	}
	var se *scu.Error
	if !errors.As(err, &se) || se.Step != "associate" {
		return 0, r.fail(err)
	}
	how := ""
	switch Kind(err) {
	case "rejected":
		how = "a-associate-rj"
	case "closed":
		how = "close"
	default:
		return 0, r.fail(err)
	}
	r.mu.Lock()
	r.rejectedBy[how]++
	r.mu.Unlock()
	r.ok.Add(1)
	return tm.Connect + tm.Handshake + tm.RQAC, true
}

// store sends the next instance as message msgID.
func (r *runner) store(a *scu.Assoc, msgID uint16) error {
	in := r.cfg.Instances[int((r.nextIns.Add(1)-1)%int64(len(r.cfg.Instances)))]
	id, ok := a.ContextID(in.Context())
	if !ok {
		return &scu.Error{Step: "store", Err: fmt.Errorf("the acceptor did not accept %s with transfer syntax %s (%s)", in.SOPClass, in.TransferSyntax, in.Source)}
	}
	maxPDU := uint32(scu.DefaultMaxPDU)
	if a.PeerMax != 0 {
		maxPDU = min(maxPDU, a.PeerMax)
	}
	key := streamKey{in, id, maxPDU}
	r.mu.Lock()
	s := r.streams[key]
	if s == nil {
		var err error
		if s, err = scu.EncodeStream(in, id, maxPDU); err != nil {
			r.mu.Unlock()
			return &scu.Error{Step: "store", Err: err}
		}
		r.streams[key] = s
	}
	r.mu.Unlock()
	if err := a.Store(s, msgID, max(r.scu.Timeout, time.Minute)); err != nil {
		return err
	}
	r.ops.Add(1)
	r.bytes.Add(int64(len(in.DataSet)))
	return nil
}

// fail counts err by kind; it returns false (not a success).
func (r *runner) fail(err error) bool {
	k := Kind(err)
	r.bad.Add(1)
	r.mu.Lock()
	if r.kinds[k]++; r.first[k] == "" {
		r.first[k] = err.Error()
	}
	r.mu.Unlock()
	return false
}

// Kind names the kind of an association's failure: connect (TCP), tls (handshake, or a TLS alert after it),
// rejected (A-ASSOCIATE-RJ),
// status (a DIMSE response with a failing status), timeout, closed (the peer closed or reset the connection),
// accepted (the reject scenario's A-ASSOCIATE-AC), or protocol (anything else the peer did wrong: an unexpected PDU, an AC accepting no context, …).
func Kind(err error) string {
	var se *scu.Error
	if errors.As(err, &se) && (se.Step == "connect" || se.Step == "tls") {
		return se.Step
	}
	var rj *scu.RejectedError
	var st *pduconn.StatusError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &oe) && oe.Op == "remote error": // a TLS alert from the peer (crypto/tls), e.g. a refused client certificate under TLS 1.3
		return "tls"
	case errors.As(err, &rj):
		return "rejected"
	case errors.As(err, &st):
		return "status"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "closed"
	case errors.Is(err, errAccepted):
		return "accepted"
	}
	return "protocol"
}

// errAccepted is the reject scenario's failure: the A-ASSOCIATE-RQ was accepted.
var errAccepted = errors.New("the association was accepted (A-ASSOCIATE-AC), want an A-ASSOCIATE-RJ or a close")
