// Command envoyab measures what the dicomgate filter costs inside a real Envoy (issue #17, item 4): one Envoy
// process with two listeners on the same mutual TLS — "filter" (the compiled build/dicomgate.wasm in
// envoy.filters.network.wasm on V8, routing the benchmark AE with tcp_proxy max_early_data_bytes) and "plain"
// (tcp_proxy only) — in front of one in-process DICOM acceptor (internal/demopacs, nothing stored). It runs
// interleaved repetitions (filter and plain alternate within every phase, and the order flips every repetition)
// of: sequential associations (A-ASSOCIATE-RQ -> AC -> A-RELEASE-RQ -> RP, new TCP + TLS connection each, Go
// client with TCP_NODELAY) for latency p50/p99; associations/s with 8 and 32 concurrent clients; one C-STORE of a
// 200 MiB instance for MB/s; and Envoy's CPU time (/proc/<pid>/stat utime+stime, cross-checked with the threads'
// schedstat) around every phase. Then it starts Envoy repeatedly with and without the filter listener at 1 and 4
// workers for RSS (/proc/<pid>/status) and the V8 cold start (from Envoy's own log timestamps).
//
// Every measured operation is checked: an association counts only on an A-ASSOCIATE-AC accepting the context and
// an A-RELEASE-RP, a C-STORE only on a C-STORE-RSP with status Success; after every phase Envoy's counters must
// show exactly that many connections on the listener and, on the filter listener, that many routed decisions, and
// the "unrouted" cluster must never have been connected. Any failure stops the run.
//
//	make bench-envoy                   # builds the .wasm, runs with the defaults below
//	go run ./bench/cmd/envoyab -h      # flags
//
// Diagnostics, each an extra side in the same interleaved rotation or an extra pass: -early (default on: tcp_proxy
// with max_early_data_bytes and no filter), -noop (a do-nothing Go proxy-wasm filter, bench/cmd/envoyab/noopfilter,
// in front of plain tcp_proxy: the fixed cost of any Go filter on V8), -noop-calls N (the same filter making N
// proxy_get_property calls per connection: the cost of a host call), -noop-held (the same filter holding each
// connection until its first bytes: tcp_proxy connects after the A-ASSOCIATE-RQ as with dicomgate), -noop-wat (a
// do-nothing filter in WebAssembly text, no language runtime: Envoy's and V8's own cost), -before-wasm FILE
// (another build of the filter on its own listener: a change measured in the same run), -mtls=false (server-only
// TLS: the filter reads no peer-certificate property), -wasm-log LEVEL (audit lines on or off), -perf N (Envoy's
// CPU per association by shared object from `perf record`, filter vs plain, 4 rounds ABBA).
//
// The tables it prints (markdown) are what bench/RESULTS.md §7 records.
package main

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dicomgate/dicomgate/bench/internal/machine"
	"github.com/dicomgate/dicomgate/gateway"
	"github.com/dicomgate/dicomgate/internal/demopacs"
	"github.com/dicomgate/dicomgate/internal/scu"
	"github.com/dicomgate/dicomgate/internal/wasmbuild"
)

// options are the command-line flags.
type options struct {
	envoy, wasm   string
	workers       int
	reps          int
	seq, assocs   int
	clients       []int
	storeMiB      int
	rssWorkers    []int
	rssReps       int
	rssAssocs     int
	dir           string
	keep          bool
	skipColdStart bool
	early         bool
	wasmLog       string
	perfAssocs    int
	noop          bool
	noopCalls     int
	noopHeld      bool
	noopWAT       bool
	beforeWasm    string
	mtls          bool
}

// Benchmark identities: the policy routes exactly this caller (AE titles and client-certificate URI SAN).
const (
	benchCallingAE = "AB-SCU"
	benchCalledAE  = "AB-PACS"
	benchRule      = "bench"
)

func main() {
	var o options
	var clients, rssWorkers string
	flag.StringVar(&o.envoy, "envoy", "", "Envoy binary (default $ENVOY_BIN, else <repo>/build/envoy)")
	flag.StringVar(&o.wasm, "wasm", "", "the compiled filter (default $DICOMGATE_WASM, else <repo>/build/dicomgate.wasm)")
	flag.IntVar(&o.workers, "workers", 1, "Envoy worker threads (--concurrency) for the A/B phases")
	flag.IntVar(&o.reps, "reps", 5, "interleaved repetitions (>= 3)")
	flag.IntVar(&o.seq, "seq", 1000, "sequential associations per listener and repetition (latency)")
	flag.IntVar(&o.assocs, "assocs", 2000, "associations per listener, repetition and concurrency level (associations/s)")
	flag.StringVar(&clients, "clients", "8,32", "concurrency levels, comma-separated")
	flag.IntVar(&o.storeMiB, "store-mib", 200, "size of the C-STORE instance's data set, MiB")
	flag.StringVar(&rssWorkers, "rss-workers", "1,4", "worker counts for the RSS and cold-start starts, comma-separated")
	flag.IntVar(&o.rssReps, "rss-reps", 3, "Envoy starts per worker count and configuration (with and without the filter listener)")
	flag.IntVar(&o.rssAssocs, "rss-assocs", 200, "associations per listener after each start before the second RSS reading")
	flag.StringVar(&o.dir, "dir", "", "work directory (default: a new temporary directory, removed unless -keep)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (bootstraps, Envoy logs)")
	flag.BoolVar(&o.skipColdStart, "skip-cold-start", false, "skip the RSS / cold-start starts")
	flag.BoolVar(&o.early, "early", true, "add the diagnostic listener \"early\" (tcp_proxy with max_early_data_bytes, no filter) to the A/B rotation")
	flag.StringVar(&o.wasmLog, "wasm-log", "info", "Envoy's wasm log level in the A/B run (info: the filter's audit line per association is written, as with the manifests' install values; warning drops it)")
	flag.IntVar(&o.perfAssocs, "perf", 0, "after the A/B run, profile Envoy with `perf record` during this many associations per side (filter, plain) and print the CPU per association by shared object; 0: no profile")
	flag.BoolVar(&o.noop, "noop", false, "add the diagnostic listener \"noop\" (a do-nothing Go proxy-wasm filter, built from bench/cmd/envoyab/noopfilter, in front of plain tcp_proxy) to the A/B rotation")
	flag.IntVar(&o.noopCalls, "noop-calls", 0, "with -noop, also add the listener \"calls\": the noop filter making this many proxy_get_property calls per connection (calls − noop = their cost)")
	flag.BoolVar(&o.noopHeld, "noop-held", false, "with -noop, also add the listener \"held\": the noop filter pausing each connection until its first bytes, with max_early_data_bytes, so tcp_proxy connects after the A-ASSOCIATE-RQ as with dicomgate (held − noop = the latency and CPU of connecting upstream after the first bytes; filter − held = dicomgate's decision)")
	flag.BoolVar(&o.noopWAT, "noop-wat", false, "with -noop, also add the listener \"watnoop\": a do-nothing filter written in WebAssembly text (bench/cmd/envoyab/noopfilter/noop.wat, built with wat2wasm from the Debian package wabt), no language runtime: watnoop − plain is Envoy's and V8's own cost per connection, noop − watnoop what stock Go and the SDK add")
	flag.StringVar(&o.beforeWasm, "before-wasm", "", "another build of the filter (e.g. the previous commit's) for the diagnostic listener \"before\", same policy and configuration as \"filter\": filter/before measures a change in the same run")
	flag.BoolVar(&o.mtls, "mtls", true, "mutual TLS on every listener (false, a diagnostic: server-only TLS, so the filter reads no peer-certificate property and the policy matches AE titles only)")
	flag.Parse()
	var err error
	if o.clients, err = parseInts("clients", clients); err == nil {
		o.rssWorkers, err = parseInts("rss-workers", rssWorkers)
	}
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "envoyab:", err)
		os.Exit(1)
	}
}

func parseInts(name, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-%s %q: want positive integers separated by commas, e.g. 8,32", name, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// repoRoot finds the directory holding go.mod, from the working directory up.
func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", errors.New("no go.mod above the working directory: run from the repository (or pass -envoy and -wasm)")
		}
		d = p
	}
}

// resolve fills the Envoy and module paths: flag, then environment, then the repository's build/ directory.
func (o *options) resolve() error {
	root, rootErr := repoRoot()
	pick := func(flagVal, env, rel, fix string) (string, error) {
		p := flagVal
		if p == "" {
			p = os.Getenv(env)
		}
		if p == "" {
			if rootErr != nil {
				return "", rootErr
			}
			p = filepath.Join(root, rel)
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w; %s", p, err, fix)
		}
		return filepath.Abs(p)
	}
	var err error
	if o.envoy, err = pick(o.envoy, "ENVOY_BIN", "build/envoy", "run `make envoy` (or make deps), or set ENVOY_BIN"); err != nil {
		return err
	}
	if o.wasm, err = pick(o.wasm, "DICOMGATE_WASM", "build/dicomgate.wasm", "run `make wasm`, or set DICOMGATE_WASM"); err != nil {
		return err
	}
	if o.reps < 3 {
		return fmt.Errorf("-reps %d: want at least 3 interleaved repetitions", o.reps)
	}
	if o.seq < 100 {
		return fmt.Errorf("-seq %d: want at least 100 sequential associations (p99 needs them)", o.seq)
	}
	return nil
}

// buildWATNoop assembles bench/cmd/envoyab/noopfilter/noop.wat into dir with wat2wasm.
func buildWATNoop(dir string) (string, error) {
	out := filepath.Join(dir, "watnoop.wasm")
	cmd := exec.Command("wat2wasm", "bench/cmd/envoyab/noopfilter/noop.wat", "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("assembling the WebAssembly-text noop filter (%s; wat2wasm is in the Debian package wabt: apt-get install wabt): %w\n%s",
			strings.Join(cmd.Args, " "), err, b)
	}
	return out, nil
}

// buildNoop compiles bench/cmd/envoyab/noopfilter for wasip1 into dir (same flags as `make wasm`).
func buildNoop(dir string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "noop.wasm")
	cmd := exec.Command("go", wasmbuild.Args(out, "./bench/cmd/envoyab/noopfilter", false)...)
	cmd.Dir = root
	cmd.Env = wasmbuild.Env()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the noop filter (%s): %w\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	return out, nil
}

// benchPolicy routes the benchmark caller to the backend cluster; everything else is denied.
// An empty clientURI leaves the certificate out of the match (server-only TLS).
func benchPolicy(clientURI string) (string, error) {
	match := map[string]any{"callingAETitles": []string{benchCallingAE}, "calledAETitles": []string{benchCalledAE}}
	if clientURI != "" {
		match["peerURISANs"] = []string{clientURI}
	}
	b, err := json.Marshal(map[string]any{
		"defaultAction":   "deny",
		"upstreamConnect": "after-decision",
		"rules": []map[string]any{{
			"name":   benchRule,
			"match":  match,
			"action": "route", "cluster": "backend",
		}},
	})
	return string(b), err
}

// env is everything shared by the runs: certificates, backend, ports.
type env struct {
	o       options
	dir     string
	pki     *gateway.DemoPKI
	tls     *tls.Config
	backend *demopacs.Server
	policy  string
}

func run(o options) error {
	if err := o.resolve(); err != nil {
		return err
	}
	e := &env{o: o}
	var err error
	if o.dir == "" {
		if e.dir, err = os.MkdirTemp("", "envoyab-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(e.dir)
		}
	} else {
		e.dir = o.dir
	}
	if e.pki, err = gateway.WriteDemoPKI(filepath.Join(e.dir, "pki"), gateway.PKIOptions{ClientCN: benchCallingAE}); err != nil {
		return err
	}
	if e.tls, err = clientTLS(e.pki, o.mtls); err != nil {
		return err
	}
	uri := e.pki.ClientURI
	if !o.mtls {
		uri = ""
	}
	if e.policy, err = benchPolicy(uri); err != nil {
		return err
	}
	// The backend discards instances (no directory): the benchmark measures the proxy, not a disk.
	if e.backend, err = demopacs.Start("127.0.0.1:0", demopacs.Config{Name: "backend"}); err != nil {
		return err
	}
	defer e.backend.Close()

	printHeader(o)
	ab, err := e.runAB()
	if err != nil {
		return err
	}
	var cs []startResult
	if !o.skipColdStart {
		if cs, err = e.runStarts(); err != nil {
			return err
		}
	}
	printReport(o, ab, cs)
	fmt.Printf("\nload after: %s\n", machine.LoadAvg())
	if o.keep {
		fmt.Printf("work directory kept: %s\n", e.dir)
	}
	return nil
}

// clientTLS is the requester's TLS: TLS 1.3, the demo client certificate, the demo CA, no session cache (every
// association is a full handshake on both listeners alike).
func clientTLS(p *gateway.DemoPKI, withCert bool) (*tls.Config, error) {
	cert, key := "", ""
	if withCert {
		cert, key = p.ClientCert, p.ClientKey
	}
	c, err := scu.ClientTLS(p.CACert, cert, key)
	if err != nil {
		return nil, err
	}
	c.ServerName, c.MinVersion = "localhost", tls.VersionTLS13
	return c, nil
}

func printHeader(o options) {
	fmt.Printf("# envoyab %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	if out, err := exec.Command(o.envoy, "--version").Output(); err == nil {
		fmt.Printf("envoy: %s\n", strings.TrimSpace(string(out)))
	}
	fmt.Printf("envoy binary: %s\n", o.envoy)
	if b, err := os.ReadFile(o.wasm); err == nil {
		fmt.Printf("filter: %s (%d bytes, sha256 %x)\n", o.wasm, len(b), sha256.Sum256(b))
	}
	fmt.Printf("machine: %d CPUs (%s), %s\n", runtime.NumCPU(), machine.CPUModel(), runtime.Version())
	fmt.Printf("load before: %s\n", machine.LoadAvg())
	fmt.Printf("A/B: %d workers, %d repetitions; per listener and repetition: %d sequential associations, %d associations at each of %v clients, one C-STORE of %d MiB\n\n",
		o.workers, o.reps, o.seq, o.assocs, o.clients, o.storeMiB)
}

// listener is one side of the comparison.
type listener struct {
	name string // "filter" or "plain"
	port int
}

// cpuDelta is Envoy CPU time spent during one phase, seconds.
type cpuDelta struct{ stat, sched float64 }

// sideResult is one listener's measurements in one repetition.
type sideResult struct {
	seq      []scu.Timing
	seqCPU   cpuDelta
	rate     map[int]float64 // clients -> associations/s
	rateCPU  map[int]cpuDelta
	storeMBs float64
	storeCPU cpuDelta
	storeGB  float64 // data set bytes / 1e9
}

// abResult is the whole A/B run.
type abResult struct {
	reps   []map[string]*sideResult // per repetition, by listener name
	orders []string
	// rssKiB/hwmKiB: Envoy (both listeners, o.workers workers) after the last repetition.
	rssKiB, hwmKiB int64
	assocs         int // associations per listener and repetition (sequential + concurrent)
}

// runAB starts one Envoy with both listeners and runs the interleaved repetitions.
func (e *env) runAB() (*abResult, error) {
	ports, err := freePorts(10)
	if err != nil {
		return nil, err
	}
	v := e.values(ports, true)
	v.Early = e.o.early
	if e.o.beforeWasm != "" {
		v.BeforeWasmFile, v.BeforePort = e.o.beforeWasm, ports[7]
	}
	if e.o.noop {
		v.NoopListeners = []noopListener{{Name: "noop", Port: ports[5]}}
		if e.o.noopCalls > 0 {
			v.NoopListeners = append(v.NoopListeners, noopListener{Name: "calls", Port: ports[6], Config: strconv.Itoa(e.o.noopCalls)})
		}
		if e.o.noopHeld {
			v.NoopListeners = append(v.NoopListeners, noopListener{Name: "held", Port: ports[8], Config: "pause", EarlyData: true})
		}
		if e.o.noopWAT {
			wat, err := buildWATNoop(e.dir)
			if err != nil {
				return nil, err
			}
			v.NoopListeners = append(v.NoopListeners, noopListener{Name: "watnoop", Port: ports[9], WasmFile: wat})
		}
		if v.NoopWasmFile, err = buildNoop(e.dir); err != nil {
			return nil, err
		}
	}
	p, ready, err := startEnvoy(e.o.envoy, filepath.Join(e.dir, "ab"), v, e.o.workers, e.o.wasmLog)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	fmt.Printf("A/B Envoy ready after %.0f ms (pid %d)\n", ready.Seconds()*1e3, p.pid)
	sides := []listener{{"filter", v.FilterPort}, {"plain", v.PlainPort}}
	if v.Early {
		sides = append(sides, listener{"early", v.EarlyPort})
	}
	if v.BeforeWasmFile != "" {
		sides = append(sides, listener{"before", v.BeforePort})
	}
	for _, n := range v.NoopListeners {
		sides = append(sides, listener{n.Name, n.Port})
	}
	// Warm-up (not measured): V8 tiers the filter's code up, Envoy and the backend grow their buffers.
	for _, l := range sides {
		if _, err := e.concurrent(p, l, 8, 200); err != nil {
			return nil, fmt.Errorf("warm-up on %s: %w", l.name, err)
		}
	}
	inst, err := scu.GenerateInstance(int64(e.o.storeMiB)<<20, demopacs.NewUID())
	if err != nil {
		return nil, err
	}
	// The acceptor is the demo PACS: it accepts the single proposed context as ID 1 and takes 16 KiB PDUs.
	store, err := scu.EncodeStream(inst, 1, scu.DefaultMaxPDU)
	if err != nil {
		return nil, err
	}
	res := &abResult{assocs: e.o.seq + e.o.assocs*len(e.o.clients)}
	for r := range e.o.reps {
		// The order rotates (2 sides: ABAB...; 3 sides: ABC, BCA, CAB, ...), so no side always runs first.
		var order []listener
		var tag string
		for i := range sides {
			l := sides[(r+i)%len(sides)]
			order = append(order, l)
			tag += l.name[:1]
		}
		res.orders = append(res.orders, tag)
		rep := map[string]*sideResult{}
		for _, l := range order {
			rep[l.name] = &sideResult{rate: map[int]float64{}, rateCPU: map[int]cpuDelta{}}
		}
		for _, l := range order {
			t, c, err := e.sequential(p, l, e.o.seq)
			if err != nil {
				return nil, fmt.Errorf("repetition %d, sequential, %s: %w", r+1, l.name, err)
			}
			rep[l.name].seq, rep[l.name].seqCPU = t, c
		}
		for _, n := range e.o.clients {
			for _, l := range order {
				ph, err := e.concurrent(p, l, n, e.o.assocs)
				if err != nil {
					return nil, fmt.Errorf("repetition %d, %d clients, %s: %w", r+1, n, l.name, err)
				}
				rep[l.name].rate[n], rep[l.name].rateCPU[n] = float64(e.o.assocs)/ph.elapsed.Seconds(), ph.cpu
			}
		}
		for _, l := range order {
			ph, err := e.storeOnce(p, l, store)
			if err != nil {
				return nil, fmt.Errorf("repetition %d, C-STORE, %s: %w", r+1, l.name, err)
			}
			sr := rep[l.name]
			sr.storeGB = float64(len(inst.DataSet)) / 1e9
			sr.storeMBs, sr.storeCPU = float64(len(inst.DataSet))/1e6/ph.elapsed.Seconds(), ph.cpu
		}
		res.reps = append(res.reps, rep)
		f, pl := rep["filter"], rep["plain"]
		fmt.Printf("repetition %d (%s): p50 %.3f/%.3f ms, %d clients %.0f/%.0f assoc/s, C-STORE %.0f/%.0f MB/s (filter/plain); load %s\n",
			r+1, res.orders[r], ms(pct(totals(f.seq), 50)), ms(pct(totals(pl.seq), 50)), e.o.clients[len(e.o.clients)-1],
			f.rate[e.o.clients[len(e.o.clients)-1]], pl.rate[e.o.clients[len(e.o.clients)-1]], f.storeMBs, pl.storeMBs, machine.LoadAvg())
	}
	if res.rssKiB, res.hwmKiB, err = machine.ReadRSS(p.pid); err != nil {
		return nil, err
	}
	if e.o.perfAssocs > 0 {
		if err := e.profileSides(p, sides[:2]); err != nil {
			return nil, err
		}
	}
	if err := e.checkNothingUnrouted(p); err != nil {
		return nil, err
	}
	return res, nil
}

// values are the bootstrap values for ports [admin, filter, plain, unrouted, early (optional)].
func (e *env) values(ports []int, filter bool) bootstrapValues {
	early := 0
	if len(ports) > 4 {
		early = ports[4]
	}
	v := bootstrapValues{EarlyPort: early,
		AdminPort: ports[0], FilterPort: ports[1], PlainPort: ports[2], UnroutedPort: ports[3],
		BackendPort: e.backend.Addr().(*net.TCPAddr).Port,
		Filter:      filter, WasmFile: e.o.wasm, PolicyJSON: e.policy, EarlyDataBytes: 1 << 20,
		CertFile: e.pki.ServerCert, KeyFile: e.pki.ServerKey, ClientCAFile: e.pki.CACert,
	}
	if !e.o.mtls {
		v.ClientCAFile = ""
	}
	return v
}

func (e *env) assocConfig(l listener, abstract string) scu.Config {
	return scu.Config{Addr: fmt.Sprintf("127.0.0.1:%d", l.port), TLS: e.tls, CallingAE: benchCallingAE, CalledAE: benchCalledAE,
		Contexts: []scu.Context{{AbstractSyntax: abstract, TransferSyntax: scu.UIDImplicitVRLittleEndian}}, VersionName: "DICOMGATE_AB",
		Timeout: 30 * time.Second}
}

// phase is one measured phase.
type phase struct {
	elapsed time.Duration
	cpu     cpuDelta
}

// measure runs f between two CPU samples of Envoy, after checking (outside the window) the listener's counters
// before and after: n more connections on the listener's tcp_proxy and, on the filter listener, n more
// associations inspected and n more routed by the benchmark rule. The end sample is taken once Envoy has closed
// every connection of the phase (listener's active connection gauge back to 0), so the teardown is counted.
func (e *env) measure(p *envoyProc, l listener, n int, f func() error) (phase, error) {
	var ph phase
	before, err := p.stats(statsFilter)
	if err != nil {
		return ph, err
	}
	c0, err := machine.ReadCPU(p.pid)
	if err != nil {
		return ph, err
	}
	start := time.Now()
	if err := f(); err != nil {
		return ph, err
	}
	ph.elapsed = time.Since(start)
	active := fmt.Sprintf("listener.127.0.0.1_%d.downstream_cx_active", l.port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		s, err := p.stats(`^listener\.127\.0\.0\.1_` + strconv.Itoa(l.port) + `\.downstream_cx_active$`)
		if err != nil {
			return ph, err
		}
		v, ok := s[active]
		if !ok {
			return ph, fmt.Errorf("no gauge %s in Envoy's stats", active)
		}
		if v == 0 {
			break
		}
		if time.Now().After(deadline) {
			return ph, fmt.Errorf("%s still %d 10 s after the phase", active, v)
		}
		time.Sleep(2 * time.Millisecond)
	}
	c1, err := machine.ReadCPU(p.pid)
	if err != nil {
		return ph, err
	}
	ph.cpu.stat, ph.cpu.sched = c1.Sub(c0)
	after, err := p.stats(statsFilter)
	if err != nil {
		return ph, err
	}
	want := map[string]int64{"tcp." + l.name + ".downstream_cx_total": int64(n)}
	if l.name == "filter" || l.name == "before" {
		// Both builds define the same metric names, which Envoy keeps as one counter each; only one side runs
		// at a time, so the phase's delta is still this side's.
		want[statAssociations] = int64(n)
		want[statRouted] = int64(n)
	}
	for k, d := range want {
		a, ok1 := after[k]
		b, ok2 := before[k]
		if !ok1 || !ok2 {
			return ph, fmt.Errorf("no counter %s in Envoy's stats (stats: %v)", k, keys(after))
		}
		if a-b != d {
			return ph, fmt.Errorf("counter %s grew by %d during the phase, want %d", k, a-b, d)
		}
	}
	return ph, nil
}

// Envoy counters the checks read. The filter's metrics carry Envoy's "wasmcustom." prefix for proxy-wasm
// custom metrics, and their labels inside the name (KEY=.=VALUE;.;).
const (
	statAssociations = "wasmcustom.dicomgate_associations_total"
	statRouted       = "wasmcustom.action=.=route;.;rule=.=" + benchRule + ";.;dicomgate_decisions_total"
	statsFilter      = `^(tcp\.(filter|plain|early|noop|calls|held|before|watnoop)\.downstream_cx_total|wasmcustom\..*|cluster\.unrouted\.upstream_cx_total)$`
)

func keys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkNothingUnrouted fails when the filter ever let tcp_proxy connect its default cluster or closed a
// connection.
func (e *env) checkNothingUnrouted(p *envoyProc) error {
	s, err := p.stats(statsFilter)
	if err != nil {
		return err
	}
	v, ok := s["cluster.unrouted.upstream_cx_total"]
	if !ok {
		return errors.New("no counter cluster.unrouted.upstream_cx_total in Envoy's stats")
	}
	if v != 0 {
		return fmt.Errorf("the unrouted cluster was connected %d times: the filter did not route every association", v)
	}
	for k, v := range s {
		if strings.HasSuffix(k, "dicomgate_denied_total") && v != 0 {
			return fmt.Errorf("%s = %d: the filter closed connections during the benchmark", k, v)
		}
	}
	return nil
}

// sequential runs n associations one after another.
func (e *env) sequential(p *envoyProc, l listener, n int) ([]scu.Timing, cpuDelta, error) {
	cfg := e.assocConfig(l, scu.UIDVerification)
	rq := cfg.RQ()
	out := make([]scu.Timing, 0, n)
	ph, err := e.measure(p, l, n, func() error {
		for i := range n {
			t, err := scu.Run(cfg, rq)
			if err != nil {
				return fmt.Errorf("association %d: %w", i+1, err)
			}
			out = append(out, t)
		}
		return nil
	})
	return out, ph.cpu, err
}

// concurrent runs count associations from clients goroutines.
func (e *env) concurrent(p *envoyProc, l listener, clients, count int) (phase, error) {
	cfg := e.assocConfig(l, scu.UIDVerification)
	rq := cfg.RQ()
	return e.measure(p, l, count, func() error {
		var next atomic.Int64
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first error
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(count) {
					if _, err := scu.Run(cfg, rq); err != nil {
						mu.Lock()
						if first == nil {
							first = err
						}
						mu.Unlock()
						next.Store(int64(count)) // stop the others
						return
					}
				}
			}()
		}
		wg.Wait()
		return first
	})
}

// storeOnce opens an association, sends s and releases. The phase's elapsed time covers the C-STORE only (from
// the first P-DATA-TF byte to the C-STORE-RSP); its CPU covers the whole association.
func (e *env) storeOnce(p *envoyProc, l listener, s *scu.Stream) (phase, error) {
	cfg := e.assocConfig(l, scu.UIDSecondaryCapture)
	var storeTime time.Duration
	ph, err := e.measure(p, l, 1, func() error {
		a, _, err := scu.Associate(cfg, cfg.RQ())
		if err != nil {
			return err
		}
		t0 := time.Now()
		if err := a.Store(s, 1, 5*time.Minute); err != nil {
			a.Abort()
			return err
		}
		storeTime = time.Since(t0)
		return a.Release()
	})
	ph.elapsed = storeTime
	return ph, err
}

func totals(ts []scu.Timing) []float64 {
	out := make([]float64, len(ts))
	for i, t := range ts {
		out[i] = t.Total.Seconds()
	}
	return out
}

func rqacs(ts []scu.Timing) []float64 {
	out := make([]float64, len(ts))
	for i, t := range ts {
		out[i] = t.RQAC.Seconds()
	}
	return out
}

func ms(sec float64) float64 { return sec * 1e3 }
