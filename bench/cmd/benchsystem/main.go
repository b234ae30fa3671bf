// Command benchsystem is `make bench-system` (issue 16): it starts, on loopback, every alternative a DICOM TLS
// listener could run behind — all with the same certificates (mutual TLS), the same backend (an in-process
// internal/demopacs acceptor that discards what it receives) and the same number of workers — and compares them
// with `dicomgate bench compare`:
//
//   - direct: the backend itself terminating TLS (no proxy);
//   - bare: bench/cmd/bareproxy, crypto/tls + io.Copy (the floor of a TLS proxy in Go; the baseline);
//   - serve-1, serve-1000: `dicomgate serve` with the compiled filter and a 1-rule and a 1,000-rule policy (the
//     benchmark caller matched by the last rule);
//   - nginx: nginx `stream` (TLS, proxy_pass); haproxy: HAProxy `mode tcp` (Debian packages);
//   - envoy, envoy-filter: one real Envoy, plain tcp_proxy and the dicomgate filter (V8) in front of tcp_proxy.
//
// Three passes, each `dicomgate bench compare` over every target with --rounds interleaved rounds (the order
// rotating): sequential echo associations (latency), echo associations from 32 clients (associations/s), and
// C-STOREs of a generated instance (MB/s). It prints the Markdown tables bench/RESULTS.md records (with
// machine, date, load average, versions and the commands) and writes one SVG chart per pass into -out.
//
// Every target must answer a checked C-ECHO before the passes start, and every association of every pass must
// succeed (the compare's exit status), or the run fails.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/dicomgate/dicomgate/bench/internal/machine"
	"github.com/dicomgate/dicomgate/internal/loadgen"
)

// options are the flags.
type options struct {
	bin, wasm, envoy string
	out, dir         string
	keep             bool
	rounds, workers  int
	seq, assocs      int
	clients          int
	storeSize        string
	storeAssocs      int
	skip             string
}

func main() {
	var o options
	for _, f := range []struct {
		p               *string
		name, def, help string
	}{
		{&o.bin, "bin", "build/dicomgate", "the dicomgate CLI (make build): runs `serve` and `bench compare`"},
		{&o.wasm, "wasm", "build/dicomgate.wasm", "the compiled filter (make wasm)"},
		{&o.envoy, "envoy", os.Getenv("ENVOY_BIN"), "Envoy binary (default $ENVOY_BIN, else build/envoy)"},
		{&o.out, "out", "bench", "directory for the charts system-<pass>.svg"},
		{&o.dir, "dir", "", "work directory (default: a temporary one, removed unless -keep)"},
		{&o.storeSize, "store-size", "16MiB", "data set size of the generated instance of the store pass"},
		{&o.skip, "skip", "", "targets to leave out, comma-separated (e.g. nginx,haproxy when they cannot be installed)"},
	} {
		flag.StringVar(f.p, f.name, f.def, f.help)
	}
	for _, f := range []struct {
		p    *int
		name string
		def  int
		help string
	}{
		{&o.rounds, "rounds", 5, "interleaved rounds per pass"},
		{&o.workers, "workers", runtime.NumCPU(), "workers of every proxy (nginx worker_processes, HAProxy nbthread, Envoy --concurrency, serve --workers)"},
		{&o.seq, "seq", 300, "sequential echo associations per target and round"},
		{&o.assocs, "assocs", 2000, "echo associations per target and round from -clients clients"},
		{&o.clients, "clients", 32, "concurrent clients of the associations/s pass"},
		{&o.storeAssocs, "store-assocs", 6, "store pass: associations per target and round (2 C-STOREs each, 2 clients)"},
	} {
		flag.IntVar(f.p, f.name, f.def, f.help)
	}
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configurations, logs)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "benchsystem:", err)
		os.Exit(1)
	}
}

// env is the running system.
type env struct {
	o       options
	dir     string
	pki     pkiFiles
	client  *tls.Config
	backend int // port of the plain backend
	procs   []*exec.Cmd
	names   []string // of procs
	targets []loadgen.Target
	cancel  context.CancelFunc
}

func run(o options) error {
	if o.envoy == "" {
		o.envoy = "build/envoy"
	}
	for _, p := range []struct{ path, fix string }{{o.bin, "run `make build`"}, {o.wasm, "run `make wasm`"}, {o.envoy, "run `make envoy`, or set ENVOY_BIN"}} {
		if _, err := os.Stat(p.path); err != nil {
			return fmt.Errorf("%s: %w; %s", p.path, err, p.fix)
		}
	}
	e := &env{o: o}
	var err error
	if e.dir = o.dir; e.dir == "" {
		if e.dir, err = os.MkdirTemp("", "benchsystem-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(e.dir)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	defer e.stopAll()
	if err := e.setup(ctx); err != nil {
		return err
	}
	fmt.Print(header(o))
	for _, p := range e.passes() {
		if err := e.runPass(p); err != nil {
			return err
		}
	}
	if err := e.printRSS(); err != nil {
		return err
	}
	fmt.Printf("\nload average after: %s\n", machine.LoadAvg())
	if o.keep {
		fmt.Printf("work directory kept: %s\n", e.dir)
	}
	return nil
}

// pass is one `dicomgate bench compare` over every target.
type pass struct {
	name, what string
	args       []string
}

func (e *env) passes() []pass {
	return []pass{
		{"echo-seq", fmt.Sprintf("sequential associations with C-ECHO (%d per target and round, 1 client)", e.o.seq),
			[]string{"-s", "echo", "-c", "1", "-n", strconv.Itoa(e.o.seq)}},
		{fmt.Sprintf("echo-%d", e.o.clients), fmt.Sprintf("associations with C-ECHO from %d clients (%d per target and round)", e.o.clients, e.o.assocs),
			[]string{"-s", "echo", "-c", strconv.Itoa(e.o.clients), "-n", strconv.Itoa(e.o.assocs)}},
		{"store", fmt.Sprintf("C-STORE of a generated %s instance (%d associations per target and round, 2 C-STOREs each, 2 clients)", e.o.storeSize, e.o.storeAssocs),
			[]string{"-s", "store", "--size", e.o.storeSize, "-c", "2", "-n", strconv.Itoa(e.o.storeAssocs), "--stores-per-assoc", "2"}},
	}
}

// runPass runs the compare and prints its tables.
func (e *env) runPass(p pass) error {
	if err := os.MkdirAll(e.o.out, 0o755); err != nil {
		return err
	}
	svg := filepath.Join(e.o.out, "system-"+p.name+".svg")
	args := []string{"bench", "compare", "--baseline", "bare", "--rounds", strconv.Itoa(e.o.rounds), "-o", "json", "--svg", svg,
		"--tls-ca", e.pki.ca, "--tls-cert", filepath.Join(filepath.Dir(e.pki.ca), "client.crt"), "--tls-key", filepath.Join(filepath.Dir(e.pki.ca), "client.key"),
		"--tls-server-name", "localhost", "--calling-ae", benchCallingAE, "--called-ae", benchCalledAE}
	for _, t := range e.targets {
		args = append(args, "-t", t.Name+"="+t.Addr)
	}
	args = append(args, p.args...)
	fmt.Printf("\n### %s: %s\n\n```sh\n%s %s\n```\n\n", p.name, p.what, e.o.bin, strings.Join(args, " "))
	fmt.Fprintf(os.Stderr, "benchsystem: pass %s (load %s)\n", p.name, machine.LoadAvg())
	cpu0, err := e.cpuOf()
	if err != nil {
		return err
	}
	cmd := exec.Command(e.o.bin, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("pass %s: %s: %w", p.name, e.o.bin, err)
	}
	cpu1, err := e.cpuOf()
	if err != nil {
		return err
	}
	var cmp loadgen.Comparison
	if err := json.Unmarshal(out, &cmp); err != nil {
		return fmt.Errorf("pass %s: the compare's JSON: %w", p.name, err)
	}
	if err := cmp.WriteMarkdown(os.Stdout); err != nil {
		return err
	}
	printCPU(&cmp, cpu0, cpu1)
	fmt.Printf("\nchart: %s; load average after the pass: %s\n", svg, machine.LoadAvg())
	return nil
}

// printCPU prints each proxy process's CPU time during the pass per association and per GB stored. Each
// process is busy only during its own target's runs (the targets take turns), so its CPU over the whole pass is
// its target's. The direct target runs in this process with the shared backend and is not listed.
func printCPU(cmp *loadgen.Comparison, before, after map[string]int64) {
	fmt.Printf("\n| target | CPU of the proxy process during the pass (s) | per association (µs) | per GB stored (s) |\n| --- | ---: | ---: | ---: |\n")
	for _, t := range cmp.Targets {
		b, ok := before[t.Name]
		if !ok {
			continue
		}
		sec := float64(after[t.Name]-b) / 1e9
		perGB := "–"
		if t.Bytes > 0 {
			perGB = fmt.Sprintf("%.3f", sec/(float64(t.Bytes)/1e9))
		}
		perAssoc := 0.0
		if t.Associations > 0 {
			perAssoc = sec / float64(t.Associations) * 1e6
		}
		fmt.Printf("| %s | %.3f | %.0f | %s |\n", t.Name, sec, perAssoc, perGB)
	}
}

// header names the machine, date, load and versions.
func header(o options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# bench-system %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "machine: %d CPUs (%s), %s; load average before: %s\n", runtime.NumCPU(), machine.CPUModel(), runtime.Version(), machine.LoadAvg())
	fmt.Fprintf(&b, "commit: %s\n", firstLine("git", "rev-parse", "--short", "HEAD"))
	fmt.Fprintf(&b, "envoy: %s\n", firstLine(o.envoy, "--version"))
	fmt.Fprintf(&b, "nginx: %s; haproxy: %s\n", firstLine("nginx", "-v"), firstLine("haproxy", "-v"))
	fmt.Fprintf(&b, "workers per proxy: %d; rounds per pass: %d; baseline: bare (crypto/tls + io.Copy)\n", o.workers, o.rounds)
	return b.String()
}

// firstLine is the first line a command prints (stdout or stderr), or why it could not run.
func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil { // e.g. git outside a checkout: its message is no version
		return "unavailable (" + err.Error() + ")"
	}
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return s
}
