// Command soak is the attacker campaign against `dicomgate serve`, as a
// rerunnable program (make soak; make soak SOAK_FLAGS=-short in CI).
//
// It starts two in-process DICOM acceptors (internal/demopacs, storing every
// instance), runs the dicomgate CLI (build/dicomgate, with
// build/dicomgate.wasm) as a subprocess with mutual TLS, a routing policy and
// metrics, and then, phase by phase:
//
//   - store: N concurrent TLS associations (2,000 by default), each a C-STORE
//     of its own pseudo-random instance; every stored file is compared byte
//     for byte with what was sent;
//   - slowloris: connections that stall in the TLS handshake or after 3 bytes
//     of an A-ASSOCIATE-RQ must be closed by the filter's inspect deadline
//     (which runs from accept) while honest associations go through;
//   - oversize and malformed: an RQ declaring more than maxAssociateRQBytes,
//     garbage, HTTP, a PDU that is not an RQ, a NUL inside the calling AE
//     title (the AE-to-certificate binding bypass): each refused, none
//     reaching a backend;
//   - memory flood: connections each holding 1 MB of an unfinished RQ while
//     honest associations go through; the gateway's RSS peak and RSS after the
//     flood are reported;
//   - fd flood: more idle connections than --max-connections (sized from the
//     descriptor limit), and a second gateway with no connection limit under
//     a small RLIMIT_NOFILE (accept fails with EMFILE): both keep serving and
//     associations in flight are not cut.
//
// It prints a table of what was tried and what was lost; it exits 1 when
// anything was lost (an honest association failed or stored different bytes,
// an attack reached a backend, the gateway died) and 2 on a setup error.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dicomgate/dicomgate/gateway"
	"github.com/dicomgate/dicomgate/internal/demopacs"
)

// inspectTimeout is the policy's inspectTimeoutMs: how long a connection may
// take from accept to a complete A-ASSOCIATE-RQ.
const inspectTimeout = 5 * time.Second

// opts are the command-line options.
type opts struct {
	bin, wasm       string
	short           bool
	associations    int
	floodConns      int
	keep            bool
	instanceBytes   int
	stepTimeout     time.Duration
	serveNoFileSoft int
	serveExtra      string
	phases          string
}

func main() {
	var o opts
	flag.StringVar(&o.bin, "bin", "build/dicomgate", "the dicomgate CLI (make build)")
	flag.StringVar(&o.wasm, "wasm", "build/dicomgate.wasm", "the filter module (make wasm)")
	flag.BoolVar(&o.short, "short", false, "the CI variant: fewer connections, same phases (< 60 s)")
	flag.IntVar(&o.associations, "associations", 0, "concurrent C-STORE associations (0: 2000, or 300 with -short)")
	flag.IntVar(&o.floodConns, "flood", 0, "connections of the memory flood (0: 1000, or 200 with -short)")
	flag.IntVar(&o.instanceBytes, "instance-bytes", 32<<10, "size of each stored instance's data set")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, stored instances)")
	flag.StringVar(&o.serveExtra, "serve-flags", "", "extra flags for dicomgate serve, space-separated (e.g. \"--max-buffered-bytes -1\" to compare)")
	flag.StringVar(&o.phases, "phases", "store,slowloris,malformed,memory,fd,emfile", "the phases to run, comma-separated")
	flag.Parse()
	if o.associations == 0 {
		o.associations = map[bool]int{false: 2000, true: 300}[o.short]
	}
	if o.floodConns == 0 {
		o.floodConns = map[bool]int{false: 1000, true: 200}[o.short]
	}
	o.stepTimeout = 60 * time.Second
	o.serveNoFileSoft = 8192
	os.Exit(run(o))
}

// row is one line of the report.
type row struct {
	phase, what     string
	tried, ok, lost int
	expected, note  string
	lostDetail      []string
	elapsed         time.Duration
}

// env is the running setup.
type env struct {
	o        opts
	dir      string
	tlsCfg   *tls.Config
	pacs     map[string]*backend // by AE title
	serve    *serveProc
	stored   sync.Map // SOP instance UID → demopacs.Stored
	nextInst atomic.Uint64
	// serveBaseArgs are the first gateway's serve arguments.
	serveBaseArgs []string
}

// storedT is what the acceptors report per instance.
type storedT = demopacs.Stored

func run(o opts) int {
	start := time.Now()
	e, err := setup(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak: setup:", err)
		return 2
	}
	defer e.close()
	var rows []row
	all := []struct {
		name string
		run  func() []row
	}{{"store", e.phaseStore}, {"slowloris", e.phaseSlowloris}, {"malformed", e.phaseMalformed},
		{"memory", e.phaseMemoryFlood}, {"fd", e.phaseFDFlood}, {"emfile", e.phaseFDExhaustion}}
	want := map[string]bool{}
	for _, p := range strings.Split(o.phases, ",") {
		want[strings.TrimSpace(p)] = true
	}
	for _, phase := range all {
		if !want[phase.name] {
			continue
		}
		rs := phase.run()
		rows = append(rows, rs...)
		if !e.serve.alive() {
			rows = append(rows, row{phase: "gateway", what: "process alive after the phase", tried: 1, lost: 1, note: "dicomgate serve exited: " + e.serve.exitErr()})
			break
		}
	}
	lost := printReport(os.Stdout, rows, time.Since(start))
	if lost > 0 || o.keep {
		fmt.Printf("work directory (logs, stored instances): %s\n", e.dir)
		e.dir = "" // keep it
	}
	if lost > 0 {
		return 1
	}
	return 0
}

// printReport prints the table and returns the total lost.
func printReport(w io.Writer, rows []row, elapsed time.Duration) int {
	fmt.Fprintf(w, "\n%-14s %-58s %8s %8s %6s  %s\n", "phase", "what", "tried", "ok", "lost", "expected / measured")
	fmt.Fprintln(w, strings.Repeat("-", 140))
	total := 0
	for _, r := range rows {
		fmt.Fprintf(w, "%-14s %-58s %8d %8d %6d  %s", r.phase, r.what, r.tried, r.ok, r.lost, r.expected)
		if r.note != "" {
			fmt.Fprintf(w, "; %s", r.note)
		}
		if r.elapsed > 0 {
			fmt.Fprintf(w, " (%.1f s)", r.elapsed.Seconds())
		}
		fmt.Fprintln(w)
		for i, d := range r.lostDetail {
			if i == 5 {
				fmt.Fprintf(w, "%16s… %d more\n", "", len(r.lostDetail)-5)
				break
			}
			fmt.Fprintf(w, "%16s lost: %s\n", "", d)
		}
		total += r.lost
	}
	fmt.Fprintln(w, strings.Repeat("-", 140))
	fmt.Fprintf(w, "total lost: %d (must be 0); %.1f s\n", total, elapsed.Seconds())
	return total
}

// backend is one demopacs acceptor with a count of the TCP connections it
// accepted (an attack that reaches it shows up there).
type backend struct {
	srv      *demopacs.Server
	ln       net.Listener
	accepted atomic.Int64
	dir      string
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func setup(o opts) (*env, error) {
	for _, p := range []string{o.bin, o.wasm} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w (run `make build` first, or pass -bin/-wasm)", err)
		}
	}
	dir, err := os.MkdirTemp("", "dicomgate-soak-")
	if err != nil {
		return nil, err
	}
	e := &env{o: o, dir: dir, pacs: map[string]*backend{}}
	pki, err := gateway.WriteDemoPKI(filepath.Join(dir, "pki"), gateway.PKIOptions{ClientCN: "SOAK", ClientOrg: "Soak"})
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(pki.CACert)
	if err != nil {
		return nil, err
	}
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
	if err != nil {
		return nil, err
	}
	e.tlsCfg = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "localhost", ClientSessionCache: nil}
	for _, ae := range []string{"PACS_A", "PACS_B"} {
		b := &backend{dir: filepath.Join(dir, strings.ToLower(ae))}
		b.srv = demopacs.New(demopacs.Config{Name: ae, Dir: b.dir, OnStored: func(s demopacs.Stored) { e.stored.Store(s.SOPInstanceUID, s) }})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		b.ln = ln
		go func() {
			// A demo PACS that stops accepting shows up as lost associations.
			_ = b.srv.Serve(countingListener{ln, &b.accepted})
		}()
		e.pacs[ae] = b
	}
	policy := fmt.Sprintf(`defaultAction: deny
inspectTimeoutMs: %d
rules:
  - name: deny-mallory
    match: {userIdentityUsernames: [mallory]}
    action: deny
  - name: ct1-bound
    match: {callingAETitles: [CT1], peerSubjects: ["CN=CT1,O=Hospital"]}
    action: route
    cluster: pacs-a
  - name: ct-others
    match: {callingAETitles: ["CT*"]}
    action: route
    cluster: pacs-b
  - name: soak-a
    match: {callingAETitles: [SOAK], calledAETitles: [PACS_A]}
    action: route
    cluster: pacs-a
  - name: soak-b
    match: {callingAETitles: [SOAK], calledAETitles: [PACS_B]}
    action: route
    cluster: pacs-b
`, inspectTimeout.Milliseconds())
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(policy), 0o644); err != nil {
		return nil, err
	}
	args := []string{"serve", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
		"--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey, "--client-ca", pki.CACert,
		"--policy", policyFile, "--wasm", o.wasm, "--early-data-bytes", "1048576",
		"--cluster", "pacs-a=" + e.pacs["PACS_A"].ln.Addr().String(),
		"--cluster", "pacs-b=" + e.pacs["PACS_B"].ln.Addr().String()}
	args = append(args, strings.Fields(o.serveExtra)...)
	e.serveBaseArgs = args
	e.serve, err = startServe(o.bin, args, o.serveNoFileSoft, filepath.Join(dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (e *env) close() {
	if e.serve != nil {
		e.serve.stop()
	}
	for _, b := range e.pacs {
		b.srv.Close()
	}
	if e.dir != "" {
		os.RemoveAll(e.dir)
	}
}

// serveProc is a running `dicomgate serve`.
type serveProc struct {
	cmd            *exec.Cmd
	addr, metrics  string
	logPath        string
	done           chan struct{}
	err            error
	maxConnections int
}

// startServe runs bin args under `ulimit -n nofile` with stderr to logPath
// and waits for its listening line.
func startServe(bin string, args []string, nofile int, logPath string) (*serveProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("bash", "-c", fmt.Sprintf("ulimit -n %d && exec '%s' %s", nofile, abs, strings.Join(quoted, " ")))
	cmd.Stderr, cmd.Stdout = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &serveProc{cmd: cmd, logPath: logPath, done: make(chan struct{}), maxConnections: (nofile - gateway.FDReserve) / 2}
	go func() { s.err = cmd.Wait(); logf.Close(); close(s.done) }()
	listening := regexp.MustCompile(`(?m)^dicomgate: listening on (\S+)$`)
	metrics := regexp.MustCompile(`metrics: http://(\S+)/metrics`)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(logPath)
		if m, mm := listening.FindSubmatch(b), metrics.FindSubmatch(b); m != nil && mm != nil {
			s.addr, s.metrics = string(m[1]), string(mm[1])
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("dicomgate serve exited (%v):\n%s", s.err, b)
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.stop()
	return nil, fmt.Errorf("dicomgate serve did not start in 60 s; log %s", logPath)
}

func (s *serveProc) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

func (s *serveProc) exitErr() string {
	if s.err == nil {
		return "exit 0"
	}
	return s.err.Error()
}

func (s *serveProc) stop() {
	if s.alive() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
}

// rss returns the process's resident set size and its peak (VmRSS, VmHWM), in bytes.
func (s *serveProc) rss() (cur, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			cur = v << 10
		case "VmHWM:":
			peak = v << 10
		}
	}
	return cur, peak
}

// metric returns the value of an unlabelled series of /metrics (-1 when missing).
func (s *serveProc) metric(name string) float64 {
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// waitMetric waits until metric name satisfies ok (10 s at most).
func (s *serveProc) waitMetric(name string, ok func(float64) bool) float64 {
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := s.metric(name)
		if ok(v) || time.Now().After(deadline) {
			return v
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// backendConns is the total number of connections the acceptors accepted.
func (e *env) backendConns() int64 {
	var n int64
	for _, b := range e.pacs {
		n += b.accepted.Load()
	}
	return n
}

// honest runs one TLS association through addr: C-STORE of a fresh instance
// to called (PACS_A or PACS_B), release, then checks the stored file byte for
// byte. It returns "" on success or what went wrong.
func (e *env) honest(addr, called string) string {
	n := e.nextInst.Add(1)
	uid := fmt.Sprintf("2.25.%d%09d", time.Now().UnixNano()%1_000_000_000, n)
	inst := newInstance(uid, e.o.instanceBytes, n)
	c, err := dialTLS(addr, e.tlsCfg, e.o.stepTimeout)
	if err != nil {
		return "connect: " + err.Error()
	}
	defer c.Close()
	a, err := open(c, rqBytes("SOAK", called), e.o.stepTimeout)
	if err != nil {
		return err.Error()
	}
	if err := a.store(inst, 1, e.o.stepTimeout); err != nil {
		return err.Error()
	}
	if err := a.release(e.o.stepTimeout); err != nil {
		return err.Error()
	}
	return e.checkStored(inst, called)
}

// honestBatch runs n honest associations with the given concurrency and
// returns the failures.
func (e *env) honestBatch(n, concurrency int) []string {
	var mu sync.Mutex
	var fails []string
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			called := "PACS_A"
			if i%2 == 1 {
				called = "PACS_B"
			}
			if msg := e.honest(e.serve.addr, called); msg != "" {
				mu.Lock()
				fails = append(fails, msg)
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	return fails
}
