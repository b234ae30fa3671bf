package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/tetratelabs/wazero"

	"github.com/dicomgate/dicomgate/cmd/dicomgate/defaults"
	"github.com/dicomgate/dicomgate/gateway"
	"github.com/dicomgate/dicomgate/internal/demopacs"
	"github.com/dicomgate/dicomgate/internal/rejector"
	"github.com/dicomgate/dicomgate/internal/wasmbuild"
	"github.com/dicomgate/dicomgate/sdk/metricname"
	"github.com/dicomgate/dicomgate/sdk/policy"
	"github.com/dicomgate/dicomgate/wasm/host"
)

// defaultWasmPath is where `make wasm` puts the filter module.
const defaultWasmPath = "build/dicomgate.wasm"

// serveFlags holds the flags of `dicomgate serve`.
type serveFlags struct {
	listen           string
	tlsCert, tlsKey  string
	clientCA         string
	clusters         []string
	defaultCluster   string
	policyFile       string
	wasm             string
	earlyDataBytes   int
	workers          int
	metrics          string
	failPolicy       string
	logLevel         string
	logFormat        string
	connectTimeout   time.Duration
	handshakeTimeout time.Duration
	drainTimeout     time.Duration
	idleTimeout      time.Duration
	demoDir          string
	maxConnections   int
	maxBuffered      int64
}

func init() {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Run the local TLS gateway: TLS termination, the dicomgate Wasm filter, a TCP proxy to DICOM peers",
		Long: `Run dicomgate's local stand-in for an Istio ingress gateway: a TCP listener
with optional TLS (and mutual TLS with --client-ca), the compiled proxy-wasm
filter (--wasm) running in an Envoy-faithful host with the policy (--policy),
and a TCP proxy to the named clusters (--cluster NAME=HOST:PORT[,HOST:PORT...],
round robin). The filter's audit lines and the gateway's diagnostics go to
standard error (--log-format json: one JSON object per line, the audit
records as the filter wrote them); Prometheus metrics, /healthz and /readyz are served on
--metrics (/readyz fails while starting, draining, or after a filter VM
trapped under --fail-policy close). When listening it prints exactly "dicomgate: listening on ADDR".
SIGINT or SIGTERM stops accepting, drains open associations (up to
--drain-timeout; a second signal closes them at once) and exits 0. SIGHUP
re-reads --policy and applies it to new associations if it is valid (like an
Envoy configuration update: a rejected policy leaves the old one in force).

Routing on the A-ASSOCIATE-RQ (policy action "route", or upstreamConnect
"after-decision") needs tcp_proxy early data: give --early-data-bytes N
(Envoy max_early_data_bytes, at most 1048576). 0, the Istio default, only
supports allow/deny with upstreamConnect "immediate".

Without --policy and --cluster it runs a self-contained demo: it generates a
throw-away CA with server and client certificates, starts two in-process DICOM
acceptors PACS_A and PACS_B (clusters pacs-a and pacs-b, instances stored
under the demo directory) and an in-process rejector (cluster rejector, what
"dicomgate reject" runs, with a random key; its dicomgate_reject_* counters
are on --metrics too), loads the embedded demo policy
with early data on, and prints echoscu/storescu command lines that show allow,
route and deny (the deny is answered with an A-ASSOCIATE-RJ).`,
		Example: `  # the demo (after 'make wasm'):
  dicomgate serve

  # a real setup:
  dicomgate serve --listen 0.0.0.0:11112 --tls-cert server.crt --tls-key server.key \
    --client-ca ca.crt --policy policy.yaml --early-data-bytes 65536 \
    --cluster pacs-a=10.0.0.5:104 --cluster pacs-b=10.0.0.6:104,10.0.0.7:104 \
    --default-cluster pacs-a --metrics 127.0.0.1:9901`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, cmd, cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:11112", "HOST:PORT of the DICOM listener")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "server certificate chain (PEM); with --tls-key terminates TLS")
	fl.StringVar(&f.tlsKey, "tls-key", "", "server private key (PEM)")
	fl.StringVar(&f.clientCA, "client-ca", "", "CA bundle (PEM) that client certificates must verify against: mutual TLS (Istio tls.mode MUTUAL)")
	fl.StringArrayVar(&f.clusters, "cluster", nil, "upstream cluster NAME=HOST:PORT[,HOST:PORT...] (repeatable; endpoints used round robin)")
	fl.StringVar(&f.defaultCluster, "default-cluster", "", "tcp_proxy's configured cluster: where allowed (not routed) associations go")
	fl.StringVar(&f.policyFile, "policy", "", "policy file, JSON or YAML (sdk/policy format), passed to the filter as its plugin configuration")
	fl.StringVar(&f.wasm, "wasm", defaultWasmPath, "the compiled filter module (make wasm)")
	fl.IntVar(&f.earlyDataBytes, "early-data-bytes", 0, "tcp_proxy max_early_data_bytes: bytes read before the upstream connects (0 = Istio default: none, no routing)")
	fl.IntVar(&f.workers, "workers", 0, "number of filter VMs (Envoy worker threads); 0 = number of CPUs")
	fl.StringVar(&f.metrics, "metrics", "", "HOST:PORT serving /metrics (Prometheus text), /healthz and /readyz")
	fl.StringVar(&f.failPolicy, "fail-policy", "close", "what a filter VM crash does: close (FAIL_CLOSE), open (FAIL_OPEN: pass through) or reload (FAIL_RELOAD)")
	fl.StringVar(&f.logLevel, "log-level", "info", "lowest filter log level printed: trace, debug, info, warn, error, critical")
	fl.StringVar(&f.logFormat, "log-format", logFormatText, "standard error format: text (timestamped lines) or json (one JSON object per line: the filter's audit records as they are, every other line as {time, level, logger, msg, conn})")
	fl.DurationVar(&f.connectTimeout, "connect-timeout", 5*time.Second, "upstream connect timeout (Envoy cluster connect_timeout)")
	fl.DurationVar(&f.handshakeTimeout, "handshake-timeout", 15*time.Second, "TLS handshake timeout (Envoy transport_socket_connect_timeout); the filter runs from accept, so its inspect deadline covers the handshake")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", time.Hour, "close connections without traffic for this long (tcp_proxy idle_timeout; 0 disables)")
	fl.DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long open associations may take to finish")
	fl.IntVar(&f.maxConnections, "max-connections", 0, "client connections open at once; more are closed at accept and counted (0 = sized from the file descriptor limit: (RLIMIT_NOFILE - 64) / 2; negative = no limit)")
	fl.Int64Var(&f.maxBuffered, "max-buffered-bytes", 128<<20, "budget of bytes held for unfinished A-ASSOCIATE-RQs and queued writes, all connections; above it only connections holding nothing are read (negative = no budget)")
	fl.StringVar(&f.demoDir, "demo-dir", "", "demo only: directory for the generated certificates and stored instances (kept); default a temporary directory removed at exit")
	rootCmd.AddCommand(cmd)
}

func serveLogLevel(s string) (host.LogLevel, error) {
	for lv := host.LogTrace; lv <= host.LogCritical; lv++ {
		if s == lv.String() || (s == "warn" && lv == host.LogWarn) {
			return lv, nil
		}
	}
	return 0, fmt.Errorf("--log-level %q: want trace, debug, info, warn, error or critical", s)
}

// serveIdle maps --idle-timeout (0 disables) to gateway.Config.IdleTimeout
// (0 means the default, negative disables).
func serveIdle(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

func serveFailPolicy(s string) (host.FailurePolicy, error) {
	switch strings.ToLower(s) {
	case "close", "closed", "fail_close", "fail_closed":
		return host.FailClosed, nil
	case "open", "fail_open":
		return host.FailOpen, nil
	case "reload", "fail_reload":
		return host.FailReload, nil
	}
	return 0, fmt.Errorf("--fail-policy %q: want close, open or reload", s)
}

// serveSetup is everything runServe prepared before listening.
type serveSetup struct {
	policyJSON []byte
	clusters   []*gateway.Cluster
	defCluster string
	earlyData  int
	tlsCert    string
	tlsKey     string
	clientCA   string
	metrics    string
	demo       *serveDemo
}

// serveDemo is the state of the demo mode.
type serveDemo struct {
	dir       string
	removeDir bool
	pki       *gateway.DemoPKI
	sample    string
	pacsA     *demopacs.Server
	pacsB     *demopacs.Server
	// rejector is the in-process rejector (its counters are on /metrics);
	// stopRejector stops it (nil: not started).
	rejector     *rejector.Server
	stopRejector func()
	storeA       string
	storeB       string
	listenHost   string
}

func (d *serveDemo) close() {
	if d == nil {
		return
	}
	if d.pacsA != nil {
		d.pacsA.Close()
	}
	if d.pacsB != nil {
		d.pacsB.Close()
	}
	if d.stopRejector != nil {
		d.stopRejector()
	}
	if d.removeDir {
		os.RemoveAll(d.dir)
	}
}

// runServe runs the gateway until ctx is done (a signal), then drains.
func runServe(ctx context.Context, cmd *cobra.Command, stderr io.Writer, f serveFlags) (err error) {
	lv, err := serveLogLevel(f.logLevel)
	if err != nil {
		return &exitError{2, err}
	}
	jsonLog, err := serveLogFormat(f.logFormat)
	if err != nil {
		return &exitError{2, err}
	}
	log := &serveLog{w: stderr, min: lv, json: jsonLog}
	if jsonLog {
		// The error that ends serve is a JSON line too (main does not print it again).
		defer func() { err = log.fatal(err) }()
	}
	failPolicy, err := serveFailPolicy(f.failPolicy)
	if err != nil {
		return &exitError{2, err}
	}
	if f.earlyDataBytes < 0 || f.earlyDataBytes > 1<<20 {
		return &exitError{2, fmt.Errorf("--early-data-bytes %d: must be 0..1048576 (Envoy's max_early_data_bytes limit)", f.earlyDataBytes)}
	}
	if f.workers < 0 {
		return &exitError{2, fmt.Errorf("--workers %d: must be >= 0", f.workers)}
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return &exitError{2, errors.New("--tls-cert and --tls-key go together: give both (or neither for plaintext)")}
	}
	if f.clientCA != "" && f.tlsCert == "" {
		return &exitError{2, errors.New("--client-ca needs TLS: add --tls-cert and --tls-key")}
	}

	changed := func(name string) bool { return cmd != nil && cmd.Flags().Changed(name) }
	var setup *serveSetup
	if f.policyFile == "" && len(f.clusters) == 0 {
		setup, err = serveDemoSetup(f, log, changed)
	} else {
		setup, err = serveConfigSetup(f, log)
	}
	if err != nil {
		return err
	}
	defer setup.demo.close()

	wasmBytes, err := serveLoadWasm(ctx, f.wasm, changed("wasm"), log)
	if err != nil {
		return &exitError{1, err}
	}
	return serveRun(ctx, log, f, setup, wasmBytes, failPolicy)
}

// serveMaxConnections maps --max-connections to gateway.Config.MaxConnections:
// 0 sizes it from the file descriptor limit, negative means no limit.
func serveMaxConnections(n int) int {
	switch {
	case n < 0:
		return 0
	case n == 0:
		return gateway.DefaultMaxConnections()
	}
	return n
}

// serveRun runs the gateway with the prepared setup and the filter module
// until ctx is done (a signal), then drains.
func serveRun(ctx context.Context, log *serveLog, f serveFlags, setup *serveSetup, wasmBytes []byte, failPolicy host.FailurePolicy) error {
	var err error
	var tlsCfg *tls.Config
	if setup.tlsCert != "" {
		if tlsCfg, err = gateway.ServerTLSConfig(setup.tlsCert, setup.tlsKey, setup.clientCA); err != nil {
			return &exitError{1, err}
		}
	}

	// The tags the filter encodes into its metric names, extracted the way Istio does for
	// meshConfig.defaultConfig.extraStatTags [action, rule, reason] (see manifests/README.md).
	metrics := host.NewMetrics(host.IstioExtraStatTag("action"), host.IstioExtraStatTag("rule"), host.IstioExtraStatTag("reason"))
	for name, help := range metricname.Help() {
		metrics.SetHelp(name, help)
	}
	// One Engine for the process; compiled modules are kept on disk, so a restart skips the compile.
	cacheDir := filepath.Join(os.TempDir(), "dicomgate", "wazero")
	if base, err := os.UserCacheDir(); err == nil {
		cacheDir = filepath.Join(base, "dicomgate", "wazero")
	}
	cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		return &exitError{1, fmt.Errorf("wazero compilation cache %s: %w (make the directory writable or set XDG_CACHE_HOME)", cacheDir, err)}
	}
	defer cache.Close(context.Background())
	engine, err := host.NewEngine(ctx, host.EngineConfig{CompilationCache: cache})
	if err != nil {
		return &exitError{1, err}
	}
	defer engine.Close(context.Background())
	plugin, err := engine.NewPlugin(ctx, wasmBytes, host.PluginConfig{
		Name:          "dicomgate",
		RootID:        "dicomgate",
		Configuration: setup.policyJSON,
		FailurePolicy: failPolicy,
		Workers:       f.workers,
		Logger:        log,
		Metrics:       metrics,
	})
	if err != nil {
		return &exitError{1, fmt.Errorf("loading the filter %s: %w", f.wasm, err)}
	}
	defer plugin.Close(context.Background())
	// Ticks (the filter's inspect deadline) keep running while draining.
	tickCtx, stopTicks := context.WithCancel(context.Background())
	defer stopTicks()
	plugin.Start(tickCtx)
	// Compiling (or loading) the module and starting the VMs leave tens of
	// MiB of garbage; the Go runtime would hand it back to the OS only
	// gradually. Return it once now, before serving, so an idle gateway's RSS
	// is what it holds (bench/RESULTS.md §8.5).
	debug.FreeOSMemory()

	gcfg := gateway.Config{
		Clusters:          setup.clusters,
		DefaultCluster:    setup.defCluster,
		MaxEarlyDataBytes: setup.earlyData,
		NewFilter:         gateway.PluginFilters(plugin),
		ConnectTimeout:    f.connectTimeout,
		HandshakeTimeout:  f.handshakeTimeout,
		IdleTimeout:       serveIdle(f.idleTimeout),
		MaxConnections:    serveMaxConnections(f.maxConnections),
		MaxBufferedBytes:  f.maxBuffered,
		Log:               log.gateway,
	}
	if f.maxBuffered == 0 {
		gcfg.MaxBufferedBytes = -1 // the flag's 0 is "no budget" too
	}
	gcfg.TLS = tlsCfg
	gw, err := gateway.New(gcfg)
	if err != nil {
		return &exitError{2, err}
	}

	var ready atomic.Bool
	var msrv *http.Server
	if setup.metrics != "" {
		mln, err := net.Listen("tcp", setup.metrics)
		if err != nil {
			return &exitError{1, fmt.Errorf("--metrics %s: %w", setup.metrics, err)}
		}
		var extra []func(io.Writer) error
		if setup.demo != nil && setup.demo.rejector != nil {
			extra = append(extra, setup.demo.rejector.WriteMetrics)
		}
		msrv = &http.Server{Handler: serveMetricsHandler(plugin, gw, &ready, failPolicy, extra...), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			// ErrServerClosed is the deferred Close; anything else leaves
			// the gateway without /metrics and /readyz: say so.
			if err := msrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.printf("dicomgate: metrics server on %s stopped: %v", mln.Addr(), err)
			}
		}()
		defer msrv.Close()
		log.printf("metrics: http://%s/metrics (also /healthz, /readyz)", mln.Addr())
	}

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return &exitError{1, fmt.Errorf("--listen %s: %w", f.listen, err)}
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()
	ready.Store(true)
	if setup.demo != nil {
		serveDemoBanner(log, setup, ln.Addr().String())
	}
	hup := make(chan os.Signal, 1)
	if f.policyFile != "" {
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	log.listening(ln.Addr().String())

wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-hup:
			serveReload(ctx, plugin, f.policyFile, setup.clusters, log)
		case err := <-served:
			if err != nil && !errors.Is(err, gateway.ErrServerClosed) {
				return &exitError{1, fmt.Errorf("accepting on %s: %w", ln.Addr(), err)}
			}
			break wait
		}
	}
	ready.Store(false)
	n := gw.ActiveConnections()
	log.printf("dicomgate: shutting down: not accepting; draining %d open connection(s) for up to %v (signal again to close them now)", n, f.drainTimeout)
	dctx, cancel := context.WithTimeout(context.Background(), f.drainTimeout)
	defer cancel()
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	go func() {
		select {
		case <-again:
			cancel()
		case <-dctx.Done():
		}
	}()
	if err := gw.Shutdown(dctx); err != nil {
		log.printf("dicomgate: drain ended early (%v); closed the remaining connections", err)
	}
	log.printf("dicomgate: stopped")
	return nil
}

// serveConfigSetup validates the explicit configuration (--policy, --cluster …).
func serveConfigSetup(f serveFlags, log *serveLog) (*serveSetup, error) {
	if f.policyFile == "" {
		return nil, &exitError{2, errors.New("--policy is required with --cluster (run without --policy and --cluster for the demo)")}
	}
	if len(f.clusters) == 0 {
		return nil, &exitError{2, errors.New("give at least one --cluster NAME=HOST:PORT for the policy to send associations to")}
	}
	if f.demoDir != "" {
		return nil, &exitError{2, errors.New("--demo-dir only applies to the demo (no --policy, no --cluster)")}
	}
	s := &serveSetup{defCluster: f.defaultCluster, earlyData: f.earlyDataBytes,
		tlsCert: f.tlsCert, tlsKey: f.tlsKey, clientCA: f.clientCA, metrics: f.metrics}
	var err error
	if s.clusters, err = serveParseClusters(f.clusters); err != nil {
		return nil, &exitError{2, err}
	}
	raw, err := os.ReadFile(f.policyFile)
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("--policy: %w", err)}
	}
	if s.policyJSON, err = policyJSON(raw); err != nil {
		return nil, &exitError{2, fmt.Errorf("--policy %s: %w", f.policyFile, err)}
	}
	pol, err := serveCheckPolicy(s.policyJSON, f.policyFile, log)
	if err != nil {
		return nil, err
	}
	if err := serveCheckRouteClusters(s.policyJSON, f.policyFile, s.clusters); err != nil {
		return nil, &exitError{2, err}
	}
	serveWarnMismatch(pol, s, log)
	return s, nil
}

// serveCheckRouteClusters refuses a policy whose route rule names a cluster
// no --cluster defines: every association that rule matches would be closed
// (NoClusterFound), which is a configuration error to report at start, not
// per association.
func serveCheckRouteClusters(policyJSON []byte, file string, clusters []*gateway.Cluster) error {
	var doc struct {
		RejectCluster   string `json:"rejectCluster"`
		UpstreamConnect string `json:"upstreamConnect"`
		Rules           []struct {
			Name    string `json:"name"`
			Action  string `json:"action"`
			Cluster string `json:"cluster"`
			Service *struct {
				Host   string `json:"host"`
				Port   int    `json:"port"`
				Subset string `json:"subset"`
			} `json:"service"`
		} `json:"rules"`
	}
	if err := json.Unmarshal(policyJSON, &doc); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	defined := map[string]bool{}
	var names []string
	for _, c := range clusters {
		defined[c.Name] = true
		names = append(names, c.Name)
	}
	sort.Strings(names)
	var errs []error
	for i, r := range doc.Rules {
		cluster := r.Cluster
		if cluster == "" && r.Service != nil { // sdk/policy's service → cluster name
			cluster = fmt.Sprintf("outbound|%d|%s|%s", r.Service.Port, r.Service.Subset, r.Service.Host)
		}
		if cluster == "" || defined[cluster] {
			continue
		}
		name := fmt.Sprintf("rules[%d]", i)
		if r.Name != "" {
			name = fmt.Sprintf("rule %q (rules[%d])", r.Name, i)
		}
		errs = append(errs, fmt.Errorf("%s: %s routes to cluster %q, which no --cluster defines (defined: %s); add --cluster %s=HOST:PORT or route the rule to a defined cluster",
			file, name, cluster, strings.Join(names, ", "), cluster))
	}
	if c := doc.RejectCluster; c != "" && doc.UpstreamConnect != "immediate" && !defined[c] {
		errs = append(errs, fmt.Errorf("%s: rejectCluster %q is not defined by any --cluster (defined: %s); add --cluster %s=HOST:PORT pointing at `dicomgate reject`",
			file, c, strings.Join(names, ", "), c))
	}
	return errors.Join(errs...)
}

// serveReload re-reads the policy file, checks it and reconfigures the
// plugin (a canary VM validates it first, Envoy WasmHandleBase::canary). It
// reports whether the new policy is in force.
func serveReload(ctx context.Context, p *host.Plugin, file string, clusters []*gateway.Cluster, log *serveLog) bool {
	raw, err := os.ReadFile(file)
	if err == nil {
		raw, err = policyJSON(raw)
	}
	if err != nil {
		log.printf("dicomgate: SIGHUP: keeping the current policy: %s: %v", file, err)
		return false
	}
	if _, err := serveCheckPolicy(raw, file, log); err != nil {
		log.printf("dicomgate: SIGHUP: keeping the current policy: %v", err)
		return false
	}
	if err := serveCheckRouteClusters(raw, file, clusters); err != nil {
		log.printf("dicomgate: SIGHUP: keeping the current policy: %v", err)
		return false
	}
	if err := p.Reconfigure(ctx, raw); err != nil {
		log.printf("dicomgate: SIGHUP: the filter rejected %s, keeping the current policy: %v", file, err)
		return false
	}
	log.printf("dicomgate: SIGHUP: policy %s reloaded; it applies to new associations", file)
	return true
}

// serveParseClusters parses the --cluster values.
func serveParseClusters(specs []string) ([]*gateway.Cluster, error) {
	var out []*gateway.Cluster
	seen := map[string]bool{}
	for _, spec := range specs {
		c, err := gateway.ParseCluster(spec)
		if err != nil {
			return nil, fmt.Errorf("--cluster: %w", err)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("--cluster %q: cluster %q given twice; list all its endpoints in one flag: %s=HOST:PORT,HOST:PORT", spec, c.Name, c.Name)
		}
		seen[c.Name] = true
		out = append(out, c)
	}
	return out, nil
}

// serveCheckPolicy loads the policy with sdk/policy so mistakes are reported
// with their JSON paths before the filter is started.
func serveCheckPolicy(js []byte, file string, log *serveLog) (*policy.Policy, error) {
	pol, diags, err := policy.Load(js)
	if err == nil {
		diags = append(diags, lintPolicy(js)...) // the warnings `check` gives (peerSubjects Envoy never prints)
	}
	var b strings.Builder
	printDiagnostics(&b, file, diags)
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line != "" {
			log.printf("%s", line)
		}
	}
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("%s: policy is invalid (%d problem(s) listed above)", file, policy.ErrorCount(diags))}
	}
	return pol, nil
}

// serveWarnMismatch warns about settings that make the policy misbehave.
func serveWarnMismatch(pol *policy.Policy, s *serveSetup, log *serveLog) {
	if pol.UpstreamConnect() == policy.ConnectAfterDecision && s.earlyData == 0 {
		log.printf("warning: the policy uses upstreamConnect \"after-decision\" but --early-data-bytes is 0: " +
			"tcp_proxy will not read the A-ASSOCIATE-RQ before connecting, so every association stalls until inspectTimeoutMs and is closed; " +
			"give --early-data-bytes 65536 (or set \"upstreamConnect\": \"immediate\" for allow/deny only)")
	}
	if s.defCluster == "" {
		log.printf("warning: no --default-cluster: associations the policy allows (action \"allow\") have no upstream and are closed (no_route)")
	}
}

// serveDemoSetup prepares the demo: PKI, acceptors, embedded policy.
func serveDemoSetup(f serveFlags, log *serveLog, changed func(string) bool) (_ *serveSetup, err error) {
	if f.defaultCluster != "" {
		return nil, &exitError{2, errors.New("--default-cluster needs --cluster and --policy (the demo defines its own clusters)")}
	}
	d := &serveDemo{dir: f.demoDir}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if d.dir == "" {
		if d.dir, err = os.MkdirTemp("", "dicomgate-demo-"); err != nil {
			return nil, &exitError{1, fmt.Errorf("demo directory: %w", err)}
		}
		d.removeDir = true
	} else if d.dir, err = filepath.Abs(d.dir); err != nil {
		return nil, &exitError{2, fmt.Errorf("--demo-dir: %w", err)}
	}
	lhost, _, _ := net.SplitHostPort(f.listen)
	d.listenHost = lhost
	var extra []string
	if lhost != "" && lhost != "0.0.0.0" && lhost != "::" {
		extra = append(extra, lhost)
	}
	s := &serveSetup{defCluster: defaults.DefaultCluster, earlyData: defaults.EarlyDataBytes, metrics: f.metrics, demo: d}
	if changed("early-data-bytes") {
		s.earlyData = f.earlyDataBytes
	}
	if f.tlsCert != "" {
		s.tlsCert, s.tlsKey, s.clientCA = f.tlsCert, f.tlsKey, f.clientCA
	} else {
		if d.pki, err = gateway.WriteDemoPKI(filepath.Join(d.dir, "pki"), gateway.PKIOptions{ExtraServerHosts: extra}); err != nil {
			return nil, &exitError{1, err}
		}
		s.tlsCert, s.tlsKey, s.clientCA = d.pki.ServerCert, d.pki.ServerKey, d.pki.CACert
	}
	if d.sample, err = filepath.Abs(filepath.Join(d.dir, "sample.dcm")); err != nil {
		return nil, &exitError{1, err}
	}
	if _, err = demopacs.WriteSample(d.sample); err != nil {
		return nil, &exitError{1, err}
	}
	d.storeA, d.storeB = filepath.Join(d.dir, defaults.ClusterA), filepath.Join(d.dir, defaults.ClusterB)
	plog := log.demopacsf
	if d.pacsA, err = demopacs.Start("127.0.0.1:0", demopacs.Config{Name: defaults.AETitleA, Dir: d.storeA, Logf: plog}); err != nil {
		return nil, &exitError{1, err}
	}
	if d.pacsB, err = demopacs.Start("127.0.0.1:0", demopacs.Config{Name: defaults.AETitleB, Dir: d.storeB, Logf: plog}); err != nil {
		return nil, &exitError{1, err}
	}
	rj, polJSON, rjs, stop, err := startDemoRejector(defaults.Policy, log.rejectorf)
	if err != nil {
		return nil, &exitError{1, err}
	}
	d.rejector, d.stopRejector = rjs, stop
	s.clusters = []*gateway.Cluster{
		{Name: defaults.ClusterA, Endpoints: []string{d.pacsA.Addr().String()}},
		{Name: defaults.ClusterB, Endpoints: []string{d.pacsB.Addr().String()}},
		rj,
	}
	s.policyJSON = polJSON
	pol, err := serveCheckPolicy(s.policyJSON, "embedded demo policy", log)
	if err != nil {
		return nil, err
	}
	if err := serveCheckRouteClusters(s.policyJSON, "embedded demo policy", s.clusters); err != nil {
		return nil, &exitError{2, err}
	}
	serveWarnMismatch(pol, s, log)
	return s, nil
}

// serveDemoBanner prints what the demo runs and commands that exercise it.
func serveDemoBanner(log *serveLog, s *serveSetup, listenAddr string) {
	d := s.demo
	h, port, _ := net.SplitHostPort(listenAddr)
	if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
		h = "127.0.0.1"
	}
	tlsArgs := ""
	if d.pki != nil {
		tlsArgs = fmt.Sprintf("+tls %s %s +cf %s ", shellQuote(d.pki.ClientKey), shellQuote(d.pki.ClientCert), shellQuote(d.pki.CACert))
	} else if s.tlsCert != "" {
		tlsArgs = "+tls CLIENT.key CLIENT.crt +cf CA.crt "
	}
	target := h + " " + port
	log.raw(`dicomgate demo
  directory : %s%s
  PKI       : CA %s, server %s, client %s (mutual TLS: the client certificate is required)
  acceptors : PACS_A on %s (cluster pacs-a, stores into %s)
              PACS_B on %s (cluster pacs-b, stores into %s)
  policy    : embedded (known callers ECHOSCU, STORESCU, DEMO-SCU): PACS_A -> pacs-a, PACS_B -> pacs-b,
              C-ECHO to DICOMGATE -> default cluster pacs-a; everything else denied with an A-ASSOCIATE-RJ
  rejector  : in-process on %s (cluster rejector, random rejectKey): answers the denies
  tcp_proxy : max_early_data_bytes %d%s
  try (dcmtk):
    allow: echoscu -v %s-aet ECHOSCU -aec DICOMGATE %s
    route: echoscu -v %s-aet ECHOSCU -aec PACS_A %s
    route: storescu -v %s-aet STORESCU -aec PACS_B %s %s
    deny : echoscu -v %s-aet INTRUDER -aec PACS_A %s   # Association Rejected: calling AE title not recognized`,
		d.dir, map[bool]string{true: " (removed at exit; keep it with --demo-dir DIR)", false: ""}[d.removeDir],
		pkiPath(d, "ca"), pkiPath(d, "server"), pkiPath(d, "client"),
		d.pacsA.Addr(), d.storeA, d.pacsB.Addr(), d.storeB, s.clusters[2].Endpoints[0],
		s.earlyData, map[bool]string{true: " (0: routing cannot work, every association times out)", false: " (the filter reads the A-ASSOCIATE-RQ before the upstream is chosen)"}[s.earlyData == 0],
		tlsArgs, target, tlsArgs, target, tlsArgs, target, shellQuote(d.sample), tlsArgs, target)
}

func pkiPath(d *serveDemo, which string) string {
	if d.pki == nil {
		return "(from --tls-cert/--client-ca)"
	}
	switch which {
	case "ca":
		return d.pki.CACert
	case "server":
		return d.pki.ServerCert
	}
	return d.pki.ClientCert
}

// shellQuote quotes s for a POSIX shell when needed.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// serveLoadWasm reads the filter module. When the default path is missing and
// a Go toolchain and the source tree are at hand, it builds the module the
// way `make wasm` does; otherwise it says how to get it.
func serveLoadWasm(ctx context.Context, path string, explicit bool, log *serveLog) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--wasm: %w", err)
	}
	if explicit || path != defaultWasmPath {
		return nil, fmt.Errorf("--wasm %s: no such file; build it with `make wasm` (or give the path of dicomgate.wasm)", path)
	}
	// `make build` puts the CLI and the module side by side in build/.
	if exe, err := os.Executable(); err == nil {
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(exe), filepath.Base(defaultWasmPath))); err == nil {
			return b, nil
		}
	}
	goBin, lookErr := exec.LookPath("go")
	_, srcErr := os.Stat(filepath.Join("filters", "dicomgate"))
	_, modErr := os.Stat("go.mod")
	if lookErr != nil || srcErr != nil || modErr != nil {
		return nil, fmt.Errorf("%s not found: run `make wasm` in the dicomgate source tree (or pass --wasm FILE)", path)
	}
	log.printf("dicomgate: %s not found; building it (make wasm): GOOS=wasip1 GOARCH=wasm go %s", path, strings.Join(wasmbuild.Args(path, wasmbuild.FilterPackage, false), " "))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	c := wasmbuild.Command(ctx, goBin, "", path, wasmbuild.FilterPackage)
	if out, err := c.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building %s failed (%v); run `make wasm` to see why:\n%s", path, err, out)
	}
	return os.ReadFile(path)
}

// serveMetricsHandler serves /metrics (the filter's metrics from the host
// registry, then the gateway's, then extra's: the demo's in-process
// rejector), /healthz and /readyz.
//
// /healthz (liveness) is OK as long as the process serves HTTP. /readyz
// (readiness) fails while starting or draining, and while the filter cannot
// decide: a VM trapped under FAIL_CLOSED stays failed and every association
// on its worker is refused, so the gateway must leave the load balancer (a
// restart recovers it). Under FAIL_RELOAD a failed VM is recreated by the
// next connection, and under FAIL_OPEN traffic passes unfiltered: both stay
// ready (failing readiness would stop the very connections that reload).
func serveMetricsHandler(p *host.Plugin, gw *gateway.Gateway, ready *atomic.Bool, failPolicy host.FailurePolicy, extra ...func(io.Writer) error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if err := p.Metrics().WritePrometheus(w); err != nil {
			return
		}
		if err := gw.WritePrometheus(w); err != nil {
			return
		}
		for _, write := range extra {
			if err := write(w); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n") // a client that left needs no answer
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready (starting or draining)", http.StatusServiceUnavailable)
			return
		}
		if failPolicy == host.FailClosed {
			if n := p.FailedVMs(); n > 0 {
				http.Error(w, fmt.Sprintf("not ready: %d of %d filter VM(s) trapped under FAIL_CLOSED; their associations are refused until dicomgate restarts (see the wasm log)", n, p.Workers()), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		names := []string{"/metrics", "/healthz", "/readyz"}
		sort.Strings(names)
		_, _ = io.WriteString(w, "dicomgate serve: "+strings.Join(names, " ")+"\n")
	})
	return mux
}
