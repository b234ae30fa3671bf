package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dicomgate/dicomgate/internal/demopacs"
	"github.com/dicomgate/dicomgate/internal/loadgen"
	"github.com/dicomgate/dicomgate/internal/scu"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// benchFlags are the flags of `dicomgate bench` and `dicomgate bench compare`: the scenario and how to reach
// the endpoint.
type benchFlags struct {
	scenario            string
	callingAE, calledAE string
	useTLS, insecure    bool
	cert, key, ca       string
	serverName          string
	username, passcode  string
	concurrency, count  int
	duration, timeout   time.Duration
	hold                time.Duration
	rate                float64
	stores              int
	files               []string
	size                string
	quiet               bool
	out                 *outputFormat
}

func (f *benchFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.scenario, "scenario", "s", "echo", "what each association does: echo (C-ECHO), store (C-STORE of --file or a generated --size instance), reject (expects an A-ASSOCIATE-RJ or a close), hold (stays idle for --hold)")
	fl.StringVar(&f.callingAE, "calling-ae", "BENCH-SCU", "calling AE title of the A-ASSOCIATE-RQ")
	fl.StringVar(&f.calledAE, "called-ae", "ANY-SCP", "called AE title of the A-ASSOCIATE-RQ")
	fl.BoolVar(&f.useTLS, "tls", false, "connect with TLS (implied by --tls-cert, --tls-ca, --tls-server-name, --tls-insecure)")
	fl.BoolVar(&f.insecure, "tls-insecure", false, "do not verify the server certificate (tests only)")
	// The optional strings: empty by default.
	for _, o := range []struct {
		p           *string
		name, usage string
	}{
		{&f.cert, "tls-cert", "client certificate chain (PEM) for mutual TLS; with --tls-key"},
		{&f.key, "tls-key", "client private key (PEM)"},
		{&f.ca, "tls-ca", "CA bundle (PEM) the server certificate must verify against (default: the system roots)"},
		{&f.serverName, "tls-server-name", "name the server certificate must carry (default: the host of the address)"},
		{&f.username, "username", "user identity (A-ASSOCIATE-RQ sub-item 0x58): type 1 username, or type 2 with --passcode"},
		{&f.passcode, "passcode", "passcode of the user identity (type 2; visible in the process list: prefer a test account)"},
		{&f.size, "size", "store: size of a generated Secondary Capture instance's data set, e.g. 512KiB, 200MiB (default without --file: 1MiB)"},
	} {
		fl.StringVar(o.p, o.name, "", o.usage)
	}
	fl.IntVarP(&f.concurrency, "concurrency", "c", 1, "workers, each running one association at a time (hold: associations held at once)")
	fl.IntVarP(&f.count, "count", "n", 0, "associations to start (default 100, hold: --concurrency; with --duration, whichever ends first)")
	fl.DurationVarP(&f.duration, "duration", "d", 0, "stop starting associations after this long (0: run --count)")
	fl.Float64Var(&f.rate, "rate", 0, "at most this many associations started per second, all workers together (0: no limit)")
	fl.IntVar(&f.stores, "stores-per-assoc", 1, "store: C-STOREs per association")
	fl.StringArrayVarP(&f.files, "file", "f", nil, "store: a DICOM Part 10 file to send (repeatable; sent in turn, each with the SOP class and transfer syntax its meta information names)")
	fl.DurationVar(&f.hold, "hold", 10*time.Second, "hold: how long each association stays idle before its release")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "bound of every network step of an association (connect, handshake, each response)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress line on standard error (it is shown only on a terminal anyway)")
	f.out = addOutputFlag(cmd, formatText, formatJSON)
	_ = cmd.RegisterFlagCompletionFunc("scenario", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"echo", "store", "reject", "hold"}, cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.MarkFlagFilename("file", "dcm")
	for _, n := range []string{"tls-cert", "tls-key", "tls-ca"} {
		_ = cmd.MarkFlagFilename(n)
	}
}

func init() {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench HOST:PORT [flags]",
		Short: "Load-test any DICOM endpoint (PACS, gateway, proxy): latency percentiles, associations/s, MB/s",
		Long: `Drive one DICOM scenario against one endpoint from --concurrency workers, for
--count associations or for --duration, optionally at most --rate starts a
second, and print what was measured: latency p50/p90/p99/max of the successful
associations (TCP connect to A-RELEASE-RP; reject: to the A-ASSOCIATE-RJ or
close; hold: without the idle time), associations/s, MB/s of data set stored,
and the errors by kind (connect, tls, rejected, closed, timeout, status,
accepted, protocol) with the first message of each.

It checks what it measures: an association counts only on an A-ASSOCIATE-AC
accepting a proposed context and an A-RELEASE-RP; a C-ECHO or C-STORE only on
its response with status Success (any other status is an error of kind
status); a reject only on an A-ASSOCIATE-RJ or a close before any AC.

The client is Go with TCP_NODELAY (dcmtk's tools measure their own start-up
and Nagle delays), TLS 1.2+ without session resumption (every association is a
full handshake, like a modality's), a client certificate for mutual TLS, and
an optional user identity. Progress goes to standard error once a second when
it is a terminal; the summary to standard output. Exit status 1 when any
association failed.

"dicomgate bench compare" runs the same scenario against several endpoints
side by side.`,
		Example: `  dicomgate bench 127.0.0.1:11112 --tls-ca ca.crt --tls-cert client.crt --tls-key client.key --calling-ae ECHOSCU --called-ae DICOMGATE -c 8 -n 2000
  dicomgate bench pacs.example:11112 --tls -s store --size 50MiB -c 4 -d 60s -o json
  dicomgate bench 127.0.0.1:11112 --tls-ca ca.crt -s reject --calling-ae INTRUDER --called-ae PACS_A -n 100`,
		Args: exactArgs("HOST:PORT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runBench(ctx, cmd, f, args[0])
		},
	}
	f.register(cmd)
	cmd.AddCommand(benchCompareCmd())
	rootCmd.AddCommand(cmd)
}

// runBench implements `dicomgate bench`.
func runBench(ctx context.Context, cmd *cobra.Command, f benchFlags, addr string) error {
	cfg, err := f.config(cmd.Flags())
	if err != nil {
		return err
	}
	if cfg.SCU.Addr, err = checkAddr(addr); err != nil {
		return err
	}
	if cfg.SCU.TLS != nil && cfg.SCU.TLS.ServerName == "" {
		cfg.SCU.TLS.ServerName, _, _ = net.SplitHostPort(addr)
	}
	stderr := cmd.ErrOrStderr()
	p := newProgressLine(stderr, f.quiet)
	cfg.Progress = p.print
	res, err := loadgen.Run(ctx, cfg)
	p.done()
	if err != nil {
		return usage("%v", err)
	}
	if f.out.format() == formatJSON {
		if err := writeJSON(cmd.OutOrStdout(), res); err != nil {
			return err
		}
	} else if err := writeBenchText(cmd.OutOrStdout(), res, cfg.SCU.TLS != nil); err != nil {
		return err
	}
	if res.Errors > 0 {
		return &exitError{exitNegative, fmt.Errorf("%d of %d associations failed (%s)", res.Errors, res.Attempts, kinds(res.ErrorsByKind))}
	}
	return nil
}

// checkAddr refuses an address that is not HOST:PORT.
func checkAddr(addr string) (string, error) {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return "", usage("%q is not HOST:PORT of a DICOM endpoint (e.g. 127.0.0.1:11112 or pacs.example:104)", addr)
	}
	return addr, nil
}

// config turns the flags into a run (the address is the caller's).
func (f benchFlags) config(fs *pflag.FlagSet) (loadgen.Config, error) {
	cfg := loadgen.Config{Scenario: loadgen.Scenario(f.scenario), Concurrency: f.concurrency, Count: f.count,
		Duration: f.duration, Rate: f.rate, StoresPerAssoc: f.stores, Hold: f.hold}
	cfg.SCU = scu.Config{CallingAE: f.callingAE, CalledAE: f.calledAE, Username: f.username, Passcode: f.passcode,
		Timeout: f.timeout, VersionName: "DICOMGATE_BENCH"}
	switch {
	case !validScenario(cfg.Scenario):
		return cfg, usage("--scenario %q: want echo, store, reject or hold", f.scenario)
	case f.concurrency < 1:
		return cfg, usage("--concurrency %d: want 1 or more", f.concurrency)
	case f.count < 0:
		return cfg, usage("--count %d: want 1 or more (or --duration)", f.count)
	case f.rate < 0:
		return cfg, usage("--rate %g: want 0 (no limit) or more", f.rate)
	case f.stores < 1:
		return cfg, usage("--stores-per-assoc %d: want 1 or more", f.stores)
	case f.timeout <= 0:
		return cfg, usage("--timeout %v: must be positive", f.timeout)
	case f.passcode != "" && f.username == "":
		return cfg, usage("--passcode without --username: a user identity of type 2 needs both")
	}
	for name, ae := range map[string]string{"--calling-ae": f.callingAE, "--called-ae": f.calledAE} {
		if ae == "" || len(ae) > 16 || strings.TrimSpace(ae) == "" {
			return cfg, usage("%s %q: an AE title has 1 to 16 characters, not only spaces", name, ae)
		}
	}
	if cfg.Count == 0 && cfg.Duration == 0 {
		cfg.Count = 100
		if cfg.Scenario == loadgen.Hold {
			cfg.Count = cfg.Concurrency
		}
	}
	if cfg.Scenario == loadgen.Store {
		var err error
		if cfg.Instances, err = f.instances(); err != nil {
			return cfg, err
		}
	} else if len(f.files) > 0 || f.size != "" {
		return cfg, usage("--file and --size belong to --scenario store (this is %s)", f.scenario)
	}
	tlsCfg, err := f.tlsConfig(fs)
	if err != nil {
		return cfg, err
	}
	cfg.SCU.TLS = tlsCfg
	return cfg, nil
}

func validScenario(s loadgen.Scenario) bool {
	for _, v := range loadgen.Scenarios {
		if s == v {
			return true
		}
	}
	return false
}

// instances reads --file or generates the --size instance.
func (f benchFlags) instances() ([]*scu.Instance, error) {
	if len(f.files) > 0 && f.size != "" {
		return nil, usage("--file and --size exclude each other: store given files or a generated instance")
	}
	var out []*scu.Instance
	for _, name := range f.files {
		in, err := scu.ReadPart10(name)
		if err != nil {
			return nil, invalid(fmt.Errorf("--file: %w", err))
		}
		out = append(out, in)
	}
	if len(out) > 0 {
		return out, nil
	}
	size := int64(1 << 20)
	if f.size != "" {
		var err error
		if size, err = parseSize(f.size); err != nil {
			return nil, usage("--size %q: %v", f.size, err)
		}
	}
	in, err := scu.GenerateInstance(size, demopacs.NewUID())
	if err != nil {
		return nil, usage("--size %q: %v", f.size, err)
	}
	return []*scu.Instance{in}, nil
}

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$`)

// parseSize reads a byte count with an optional unit (KB = 1000, KiB = 1024, …).
func parseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, errors.New("want a number of bytes with an optional unit B, KB, KiB, MB, MiB, GB or GiB (e.g. 512KiB)")
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, err
	}
	mult := map[string]int64{"": 1, "B": 1, "KB": 1e3, "KiB": 1 << 10, "MB": 1e6, "MiB": 1 << 20, "GB": 1e9, "GiB": 1 << 30}[m[2]]
	if n > (4<<30)/mult {
		return 0, errors.New("at most 4 GiB (one Pixel Data element)")
	}
	return n * mult, nil
}

// tlsConfig is the client TLS of the flags; nil without TLS.
func (f benchFlags) tlsConfig(fs *pflag.FlagSet) (*tls.Config, error) {
	if !f.useTLS && f.cert == "" && f.key == "" && f.ca == "" && f.serverName == "" && !f.insecure {
		return nil, nil
	}
	if fs.Changed("tls") && !f.useTLS {
		return nil, usage("--tls=false contradicts the --tls-* flags given: drop one")
	}
	if (f.cert == "") != (f.key == "") {
		return nil, usage("--tls-cert and --tls-key go together (the client certificate and its key)")
	}
	c, err := scu.ClientTLS(f.ca, f.cert, f.key)
	if err != nil {
		return nil, invalid(fmt.Errorf("--tls-ca/--tls-cert/--tls-key: %w", err))
	}
	c.ServerName, c.InsecureSkipVerify = f.serverName, f.insecure
	return c, nil
}

// writeBenchText prints a run's summary.
func writeBenchText(w io.Writer, r *loadgen.Result, withTLS bool) error {
	var b strings.Builder
	transport := "TCP"
	if withTLS {
		transport = "TLS"
	}
	name := r.Address
	if r.Target != "" {
		name = r.Target + " (" + r.Address + ")"
	}
	workers := "workers"
	if r.Concurrency == 1 {
		workers = "worker"
	}
	fmt.Fprintf(&b, "%s against %s (%s), %d %s: %d associations in %.2f s\n", r.Scenario, name, transport, r.Concurrency, workers, r.Attempts, r.ElapsedSeconds)
	fmt.Fprintf(&b, "  succeeded  %d, failed %d\n", r.Associations, r.Errors)
	if r.Associations > 0 {
		l := r.Latency
		fmt.Fprintf(&b, "  latency    p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms, mean %.3f ms\n", l.P50, l.P90, l.P99, l.Max, l.Mean)
	}
	fmt.Fprintf(&b, "  rate       %.1f associations/s\n", r.AssociationsPerSecond)
	switch r.Scenario {
	case loadgen.Store:
		fmt.Fprintf(&b, "  stored     %d instances, %.4g MB of data set, %.4g MB/s\n", r.Operations, float64(r.Bytes)/1e6, r.MBPerSecond)
	case loadgen.Reject:
		fmt.Fprintf(&b, "  refused    %s\n", kinds(r.RejectedBy))
	}
	for _, k := range slices.Sorted(maps.Keys(r.ErrorsByKind)) {
		fmt.Fprintf(&b, "  error      %s × %d, first: %s\n", k, r.ErrorsByKind[k], r.FirstError[k])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// kinds renders counts as "a 3, b 1".
func kinds(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// progressLine rewrites one status line on a terminal at most once a second.
type progressLine struct {
	w       io.Writer
	on      bool
	printed bool
}

// newProgressLine shows progress on w only when w is a terminal and not quiet.
func newProgressLine(w io.Writer, quiet bool) *progressLine {
	f, ok := w.(*os.File)
	on := false
	if ok && !quiet {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			on = true
		}
	}
	return &progressLine{w: w, on: on}
}

func (p *progressLine) print(s loadgen.Progress) {
	if !p.on {
		return
	}
	rate := 0.0
	if sec := s.Elapsed.Seconds(); sec > 0 {
		rate = float64(s.Associations) / sec
	}
	fmt.Fprintf(p.w, "\r%6.0fs  %d associations (%.0f/s), %d errors, %.1f MB stored   ", s.Elapsed.Seconds(), s.Associations, rate, s.Errors, float64(s.Bytes)/1e6)
	p.printed = true
}

// done ends the progress line.
func (p *progressLine) done() {
	if p.printed {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
