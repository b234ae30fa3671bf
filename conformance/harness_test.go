package conformance

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/gateway"
	"github.com/dicomgate/dicomgate/internal/wasmbuild"
	"github.com/dicomgate/dicomgate/wasm/host"
)

// tlsMode is how a shape's listener terminates the client connection.
type tlsMode int

const (
	plain tlsMode = iota
	serverTLS
	mutualTLS
)

// shape is one listener configuration, run by both sides: Envoy gets one listener per shape, all in one
// process, the host side one gateway (and plugin) per shape. The shape's name is its plugin name and root_id.
// In Envoy the probe shapes share one VM per thread (vm_id "tf": V8 compiles the module once, not once per
// shape; the probe keeps its configuration per root context) unless ownVM is set. Cases that use the same
// shape run one after the other.
type shape struct {
	name      string             // listener name, plugin name and vm_id
	filter    string             // the probe's plugin configuration (JSON, see wasm/testdata/testfilter)
	tls       tlsMode            // listener TLS
	earlyData int                // tcp_proxy max_early_data_bytes (0: Envoy's default, reads disabled until connected)
	failure   host.FailurePolicy // plugin failure_policy
	module    string             // "" the probe module; "dicomgate" the real filter (internal/wasmbuild.Dicomgate)
	cluster   string             // tcp_proxy's cluster; "" means "a"
	ownVM     bool               // a VM of its own (vm_id = name), for cases that make the VM trap
	// noInspector leaves out the tls_inspector listener filter that TLS listeners get otherwise (Istio adds
	// it to gateway listeners that match on SNI); without it Envoy builds the filter chain at accept.
	noInspector bool
}

// vmID is the shape's vm_id on both sides (property plugin_vm_id).
func (s *shape) vmID() string {
	if s.ownVM || s.module != "" {
		return s.name
	}
	return "tf"
}

func (s *shape) defaultCluster() string {
	if s.cluster == "" {
		return "a"
	}
	return s.cluster
}

// shapes are all listener configurations of the suite, registered by the case files' package-level variables
// (Envoy is started once with all of them).
var shapes []*shape

func newShape(s shape) *shape {
	p := &s
	shapes = append(shapes, p)
	return p
}

// nodeID is Envoy's node id (property xds.node.id), given to the host as a static property.
const nodeID = "router~127.0.0.1~conformance.default~default.svc.cluster.local"

// clusterNames are the STATIC clusters of both sides: a, b and tick-cluster (the probe's on_tick choice) are
// recording backends, dead refuses connections.
var clusterNames = []string{"a", "b", "tick-cluster", "dead"}

// --- the suite ---------------------------------------------------------------------------------------------

// suite is what every case shares: the PKI, the backends of each side, the Envoy process and the gateways.
type suite struct {
	dir   string
	pki   *gateway.DemoPKI
	probe []byte // the probe module
	envoy *envoySide
	host  *hostSide
}

var (
	suiteOnce sync.Once
	theSuite  *suite
	suiteErr  error
)

// getSuite starts the suite on first use. It fails the test when Envoy is missing (ground rule: only
// DICOMGATE_NO_ENVOY=1 skips, loudly).
func getSuite(t *testing.T) *suite {
	t.Helper()
	if os.Getenv("DICOMGATE_NO_ENVOY") == "1" {
		t.Skip("DICOMGATE_NO_ENVOY=1: the real-Envoy conformance comparison was NOT run; wasm/host is unchecked against Envoy")
	}
	suiteOnce.Do(func() { theSuite, suiteErr = startSuite() })
	require.NoError(t, suiteErr)
	return theSuite
}

func startSuite() (_ *suite, err error) {
	bin, err := envoyBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "dicomgate-conformance-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	s := &suite{dir: dir}
	if s.pki, err = gateway.WriteDemoPKI(filepath.Join(dir, "pki"), gateway.PKIOptions{ClientCN: "CT1", ClientOrg: "Hospital"}); err != nil {
		return nil, err
	}
	if s.probe, err = wasmbuild.TestFilter(""); err != nil {
		return nil, err
	}
	modules := map[string][]byte{"": s.probe}
	for _, sh := range shapes {
		if sh.module == "dicomgate" && modules["dicomgate"] == nil {
			b, _, err := wasmbuild.Dicomgate()
			if err != nil {
				return nil, err
			}
			modules["dicomgate"] = b
		}
	}
	if s.host, err = startHostSide(s, modules); err != nil {
		return nil, err
	}
	// The listener ports are picked free and bound by Envoy a moment later; another test binary may take
	// one in between, so a bind failure is retried with fresh ports.
	for attempt := 1; ; attempt++ {
		s.envoy, err = startEnvoySide(s, bin, modules)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "Address already in use") && !strings.Contains(err.Error(), "duplicate address") {
			break
		}
	}
	if err != nil {
		s.host.close()
		return nil, err
	}
	return s, nil
}

func (s *suite) close() {
	if s == nil {
		return
	}
	if s.envoy != nil {
		s.envoy.close()
	}
	if s.host != nil {
		s.host.close()
	}
	_ = os.RemoveAll(s.dir)
}

func TestMain(m *testing.M) {
	code := m.Run()
	theSuite.close()
	os.Exit(code)
}

// repoRoot is the module root (this package is <root>/conformance).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), ".."))
}

// envoyBin is $ENVOY_BIN, else <repo>/build/envoy; neither existing is an error naming the install command.
func envoyBin() (string, error) {
	if b := os.Getenv("ENVOY_BIN"); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("ENVOY_BIN=%s: %v; unset it to use the pinned Envoy (run `make envoy` (or make deps))", b, err)
		}
		return b, nil
	}
	b := filepath.Join(repoRoot(), "build", "envoy")
	if _, err := os.Stat(b); err != nil {
		return "", fmt.Errorf("no Envoy at %s and ENVOY_BIN unset: run `make envoy` (or make deps); "+
			"DICOMGATE_NO_ENVOY=1 skips the real-Envoy conformance suite", b)
	}
	return b, nil
}

// --- log lines -----------------------------------------------------------------------------------------------

// lines collects one shape's filter log lines on one side.
type lines struct {
	mu   sync.Mutex
	all  []string
	last time.Time // when the last line that is not periodic arrived
}

func (l *lines) add(msg string) {
	l.mu.Lock()
	l.all = append(l.all, msg)
	if !periodic(msg) {
		l.last = time.Now()
	}
	l.mu.Unlock()
}

// periodic reports whether a probe line comes from its tick rather than from a connection.
func periodic(msg string) bool {
	return strings.HasPrefix(msg, "EVT tick ") || strings.HasPrefix(msg, "PROBE tick_effective_unknown")
}

func (l *lines) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.all)
}

func (l *lines) since(mark int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all[mark:]...)
}

func (l *lines) quietFor() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Since(l.last)
}

// --- backends ------------------------------------------------------------------------------------------------

// backend is a cluster endpoint that records every connection: the bytes it received and whether the client
// half-closed. It answers with reply once it has received replyAfter bytes (when set), and closes its side when
// the peer half-closes.
type backend struct {
	ln net.Listener

	mu         sync.Mutex
	conns      []*backendConn
	replyAfter int
	reply      []byte
	closeAfter bool // close the connection right after replying
}

type backendConn struct {
	received []byte
	eof      bool
}

func newBackend() (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &backend{ln: ln}
	go b.serve()
	return b, nil
}

func (b *backend) addr() string { return b.ln.Addr().String() }

func (b *backend) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		bc := &backendConn{}
		b.conns = append(b.conns, bc)
		replyAfter, reply, closeAfter := b.replyAfter, b.reply, b.closeAfter
		b.mu.Unlock()
		go func() {
			defer c.Close()
			buf := make([]byte, 64<<10)
			replied := false
			for {
				n, err := c.Read(buf)
				b.mu.Lock()
				bc.received = append(bc.received, buf[:n]...)
				total := len(bc.received)
				if err != nil {
					bc.eof = errors.Is(err, io.EOF)
				}
				b.mu.Unlock()
				if !replied && replyAfter > 0 && total >= replyAfter {
					replied = true
					_, _ = c.Write(reply)
					if closeAfter {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// reset forgets the recorded connections and sets the reply for the next case.
func (b *backend) reset(r reply) {
	b.mu.Lock()
	b.conns, b.replyAfter, b.reply, b.closeAfter = nil, r.after, r.data, r.close
	b.mu.Unlock()
}

// reply is how the backends of a case answer: data once they received after bytes (after 0: never), then
// close when close is set.
type reply struct {
	after int
	data  []byte
	close bool
}

// observed is what the backend saw, one entry per connection: the bytes (digested when long) and "+eof" when
// the proxy half-closed.
func (b *backend) observed() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, c := range b.conns {
		s := digest(c.received)
		if c.eof {
			s += " +eof"
		}
		out = append(out, s)
	}
	return out
}

// digest shows short byte strings quoted and long ones as their length and a sha256 prefix.
func digest(b []byte) string {
	if len(b) <= 64 {
		return strconv.Quote(string(b))
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("%d bytes sha256:%s", len(b), hex.EncodeToString(sum[:8]))
}

// --- a side --------------------------------------------------------------------------------------------------

// side is one implementation under comparison: real Envoy or gateway + wasm/host.
type side interface {
	label() string
	addr(sh *shape) string
	logs(sh *shape) *lines
	backends() map[string]*backend
}

// --- Envoy ---------------------------------------------------------------------------------------------------

type envoySide struct {
	cmd      *exec.Cmd
	done     chan struct{}
	admin    string
	ports    map[string]int
	logsBy   map[string]*lines // by root_id (= shape name)
	raw      *lines            // every stderr line
	bes      map[string]*backend
	bootPath string
}

func (e *envoySide) label() string                 { return "envoy" }
func (e *envoySide) addr(sh *shape) string         { return fmt.Sprintf("127.0.0.1:%d", e.ports[sh.name]) }
func (e *envoySide) logs(sh *shape) *lines         { return e.logsBy[sh.name] }
func (e *envoySide) backends() map[string]*backend { return e.bes }

var bootstrapTmpl = template.Must(template.New("b").Funcs(template.FuncMap{"json": func(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}}).Parse(`node: {id: {{json .NodeID}}, cluster: conformance}
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: {{.Admin}}}}
static_resources:
  listeners:
{{- range .Listeners}}
  - name: {{json .Name}}
    address: {socket_address: {address: 127.0.0.1, port_value: {{.Port}}}}
{{- if .Inspector}}
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}
{{- end}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.wasm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm
          config:
            name: {{json .Name}}
            root_id: {{json .Name}}
            failure_policy: {{.Failure}}
            vm_config:
              vm_id: {{json .VMID}}
              runtime: envoy.wasm.runtime.v8
              code: {local: {filename: {{json .Wasm}}}}
            configuration:
              "@type": type.googleapis.com/google.protobuf.StringValue
              value: {{json .Config}}
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: {{json .Name}}
          cluster: {{json .Cluster}}
{{- if .EarlyData}}
          max_early_data_bytes: {{.EarlyData}}
{{- end}}
{{- if .TLS}}
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: {{.Mutual}}
          common_tls_context:
            tls_params: {tls_minimum_protocol_version: TLSv1_2, tls_maximum_protocol_version: TLSv1_3}
            tls_certificates:
            - certificate_chain: {filename: {{json $.Cert}}}
              private_key: {filename: {{json $.Key}}}
{{- if .Mutual}}
            validation_context:
              trusted_ca: {filename: {{json $.CA}}}
{{- end}}
{{- end}}
{{- end}}
  clusters:
{{- range .Clusters}}
  - name: {{json .Name}}
    type: STATIC
    connect_timeout: 2s
    load_assignment:
      cluster_name: {{json .Name}}
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{.Port}}}}}}]}]
{{- end}}
`))

type bootListener struct {
	Name, VMID, Failure, Wasm, Config, Cluster string
	Port, EarlyData                            int
	TLS, Mutual, Inspector                     bool
}

type bootCluster struct {
	Name string
	Port int
}

// envoyFailurePolicy is the Envoy enum name of a failure policy.
func envoyFailurePolicy(f host.FailurePolicy) string { return f.String() }

func startEnvoySide(s *suite, bin string, modules map[string][]byte) (*envoySide, error) {
	e := &envoySide{ports: map[string]int{}, logsBy: map[string]*lines{}, raw: &lines{}, bes: map[string]*backend{},
		done: make(chan struct{})}
	wasmFiles := map[string]string{}
	for name, b := range modules {
		p := filepath.Join(s.dir, "module-"+name+".wasm")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, err
		}
		wasmFiles[name] = p
	}
	data := struct {
		Admin         int
		NodeID        string
		Cert, Key, CA string
		Listeners     []bootListener
		Clusters      []bootCluster
	}{Cert: s.pki.ServerCert, Key: s.pki.ServerKey, CA: s.pki.CACert, NodeID: nodeID}
	var err error
	if data.Admin, err = freePort(); err != nil {
		return nil, err
	}
	for _, sh := range shapes {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		e.ports[sh.name] = port
		e.logsBy[sh.name] = &lines{}
		data.Listeners = append(data.Listeners, bootListener{Name: sh.name, VMID: sh.vmID(), Failure: envoyFailurePolicy(sh.failure),
			Wasm: wasmFiles[sh.module], Config: sh.filter, Cluster: sh.defaultCluster(), Port: port, EarlyData: sh.earlyData,
			TLS: sh.tls != plain, Mutual: sh.tls == mutualTLS, Inspector: sh.tls != plain && !sh.noInspector})
	}
	for _, c := range clusterNames {
		port := 0
		if c == "dead" {
			if port, err = freePort(); err != nil { // nothing listens there: connections are refused
				return nil, err
			}
		} else {
			b, err := newBackend()
			if err != nil {
				return nil, err
			}
			e.bes[c] = b
			port = b.ln.Addr().(*net.TCPAddr).Port
		}
		data.Clusters = append(data.Clusters, bootCluster{Name: c, Port: port})
	}
	var y strings.Builder
	if err := bootstrapTmpl.Execute(&y, data); err != nil {
		return nil, err
	}
	e.bootPath = filepath.Join(s.dir, "envoy.yaml")
	if err := os.WriteFile(e.bootPath, []byte(y.String()), 0o644); err != nil {
		return nil, err
	}
	e.admin = fmt.Sprintf("127.0.0.1:%d", data.Admin)
	// One worker, like the host side's Workers: 1, so connection ids and VM state are comparable.
	e.cmd = exec.Command(bin, "-c", e.bootPath, "--disable-hot-restart", "--concurrency", "1", "-l", "warning",
		"--component-log-level", "wasm:info", "--log-format", "[%Y-%m-%d %T.%e][%l][%n] %v")
	stderr, err := e.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	e.cmd.Stdout = io.Discard
	dieWithParent(e.cmd)
	if err := e.cmd.Start(); err != nil {
		return nil, err
	}
	logDone := make(chan struct{})
	go func() { e.readLog(stderr); close(logDone) }()
	go func() { _ = e.cmd.Wait(); close(e.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + e.admin + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return e, nil
			}
		}
		select {
		case <-e.done:
			e.close()
			select { // the last lines (the reason) may still be in the pipe
			case <-logDone:
			case <-time.After(2 * time.Second):
			}
			return nil, fmt.Errorf("envoy exited during start-up; bootstrap %s; log:\n%s", e.bootPath, strings.Join(e.raw.since(0), "\n"))
		default:
		}
		if time.Now().After(deadline) {
			e.close()
			return nil, fmt.Errorf("envoy not ready after 60 s; bootstrap %s; log:\n%s", e.bootPath, strings.Join(e.raw.since(0), "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wasmLogLine matches Envoy's guest log lines in the --log-format above (source/extensions/common/wasm/context.cc
// Context::log: "wasm log <plugin name> <root_id> <vm_id>: <message>" from a stream context, without the plugin
// name from a root context). The header ends at the first ": " (its tokens hold no colon); its second-last
// token is the root_id (= the shape's name).
var wasmLogLine = regexp.MustCompile(`^\[[^\]]*\]\[(\w+)\]\[wasm\] wasm log ([^:]*): (.*)$`)

func (e *envoySide) readLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		e.raw.add(line)
		if m := wasmLogLine.FindStringSubmatch(line); m != nil {
			if h := strings.Fields(m[2]); len(h) >= 2 {
				if l := e.logsBy[h[len(h)-2]]; l != nil {
					l.add(m[3])
				}
			}
		}
	}
}

func (e *envoySide) close() {
	if e.cmd != nil && e.cmd.Process != nil {
		_ = e.cmd.Process.Signal(os.Interrupt)
		select {
		case <-e.done:
		case <-time.After(5 * time.Second):
			_ = e.cmd.Process.Kill()
			<-e.done
		}
	}
	for _, b := range e.bes {
		b.ln.Close()
	}
}

// freePort returns a port nothing listens on. The ports of one test binary are held until the binary exits
// (heldPorts), so two calls never return the same port; another process may still take one before it is
// bound (startSuite retries Envoy's start for that).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	heldMu.Lock()
	defer heldMu.Unlock()
	if heldPorts[port] {
		// The kernel handed out a port picked before (and released again below): try once more.
		defer ln.Close()
		return freePort()
	}
	heldPorts[port] = true
	ln.Close()
	return port, nil
}

var (
	heldMu    sync.Mutex
	heldPorts = map[int]bool{}
)

// --- gateway + wasm/host --------------------------------------------------------------------------------

// hostEngine is the Engine of every host-side gateway of the test binary (like Envoy's one Wasm
// engine per process: the shapes' plugins share its shared data by vm_id).
var hostEngine = sync.OnceValues(func() (*host.Engine, error) {
	return host.NewEngine(context.Background(), host.EngineConfig{CompilationCache: wasmbuild.CompilationCache()})
})

type hostSide struct {
	mu       sync.Mutex
	s        *suite
	modules  map[string][]byte
	bes      map[string]*backend
	clusters []*gateway.Cluster
	gws      map[string]*hostGateway
}

type hostGateway struct {
	g      *gateway.Gateway
	ln     net.Listener
	plugin *host.Plugin
	logs   *lines
	err    error
}

type logTo struct{ l *lines }

func (t logTo) Log(_ host.LogLevel, _ string, msg string) { t.l.add(msg) }

func startHostSide(s *suite, modules map[string][]byte) (*hostSide, error) {
	h := &hostSide{s: s, modules: modules, bes: map[string]*backend{}, gws: map[string]*hostGateway{}}
	for _, c := range clusterNames {
		var ep string
		if c == "dead" {
			port, err := freePort()
			if err != nil {
				return nil, err
			}
			ep = fmt.Sprintf("127.0.0.1:%d", port)
		} else {
			b, err := newBackend()
			if err != nil {
				return nil, err
			}
			h.bes[c] = b
			ep = b.addr()
		}
		h.clusters = append(h.clusters, &gateway.Cluster{Name: c, Endpoints: []string{ep}})
	}
	return h, nil
}

func (h *hostSide) label() string                 { return "host" }
func (h *hostSide) backends() map[string]*backend { return h.bes }
func (h *hostSide) addr(sh *shape) string         { return h.gateway(sh).ln.Addr().String() }
func (h *hostSide) logs(sh *shape) *lines         { return h.gateway(sh).logs }

// gateway starts the shape's gateway on first use (the host side is cheap to start).
func (h *hostSide) gateway(sh *shape) *hostGateway {
	h.mu.Lock()
	defer h.mu.Unlock()
	if g := h.gws[sh.name]; g != nil {
		return g
	}
	g := &hostGateway{logs: &lines{}}
	h.gws[sh.name] = g
	g.err = func() error {
		engine, err := hostEngine()
		if err != nil {
			return err
		}
		g.plugin, err = engine.NewPlugin(context.Background(), h.modules[sh.module], host.PluginConfig{
			Name: sh.name, RootID: sh.name, VMID: sh.vmID(), Configuration: []byte(sh.filter),
			FailurePolicy: sh.failure, Workers: 1, Logger: logTo{g.logs},
			Properties: map[string][]byte{"xds.node.id": []byte(nodeID)},
		})
		if err != nil {
			return err
		}
		g.plugin.Start(context.Background())
		cfg := gateway.Config{Clusters: h.clusters, DefaultCluster: sh.defaultCluster(), MaxEarlyDataBytes: sh.earlyData,
			NewFilter: gateway.PluginFilters(g.plugin)}
		if sh.tls != plain {
			ca := ""
			if sh.tls == mutualTLS {
				ca = h.s.pki.CACert
			}
			if cfg.TLS, err = gateway.ServerTLSConfig(h.s.pki.ServerCert, h.s.pki.ServerKey, ca); err != nil {
				return err
			}
		}
		if g.g, err = gateway.New(cfg); err != nil {
			return err
		}
		if g.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
		go func() { _ = g.g.Serve(g.ln) }()
		return nil
	}()
	return g
}

func (h *hostSide) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, g := range h.gws {
		if g.g != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = g.g.Shutdown(ctx)
			cancel()
		}
		if g.plugin != nil {
			_ = g.plugin.Close(context.Background())
		}
	}
	for _, b := range h.bes {
		b.ln.Close()
	}
}

// --- clients -------------------------------------------------------------------------------------------------

// client is one downstream connection of a case script.
type client struct {
	t    *testing.T
	raw  *net.TCPConn
	conn net.Conn // raw or the TLS client on it

	mu       sync.Mutex
	received []byte
	end      string // "eof", "reset" or the read error; "" while open
	readDone chan struct{}
}

// dialOpts tune a client connection.
type dialOpts struct {
	handshakeDelay time.Duration // wait this long after the TCP connect before the TLS handshake
	noClientCert   bool          // on a mutual-TLS listener, offer no certificate
}

// run is one side's execution of a case: the script dials through it.
type run struct {
	t       *testing.T
	s       *suite
	side    side
	sh      *shape
	clients []*client
	// vmFails: the script makes the VM trap, after which the filter's connections get no more callbacks
	// (no stream_done to wait for); observe then only waits for the log to go quiet.
	vmFails bool
}

// dial opens a client connection to the shape's listener (TCP_NODELAY; TLS when the shape terminates TLS) and
// starts reading everything the proxy sends.
func (r *run) dial(o dialOpts) *client {
	r.t.Helper()
	c, err := net.DialTimeout("tcp", r.side.addr(r.sh), 5*time.Second)
	require.NoError(r.t, err, "%s: dial %s", r.side.label(), r.sh.name)
	raw := c.(*net.TCPConn)
	require.NoError(r.t, raw.SetNoDelay(true))
	cl := &client{t: r.t, raw: raw, conn: raw, readDone: make(chan struct{})}
	r.clients = append(r.clients, cl)
	if r.sh.tls != plain {
		time.Sleep(o.handshakeDelay)
		pool := x509.NewCertPool()
		ca, err := os.ReadFile(r.s.pki.CACert)
		require.NoError(r.t, err)
		pool.AppendCertsFromPEM(ca)
		cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
		if r.sh.tls == mutualTLS && !o.noClientCert {
			cert, err := tls.LoadX509KeyPair(r.s.pki.ClientCert, r.s.pki.ClientKey)
			require.NoError(r.t, err)
			cfg.Certificates = []tls.Certificate{cert}
		}
		tc := tls.Client(raw, cfg)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		err = tc.Handshake()
		_ = tc.SetDeadline(time.Time{})
		if err != nil {
			cl.end = "handshake: " + err.Error()
			close(cl.readDone)
			return cl
		}
		cl.conn = tc
	}
	go cl.read()
	return cl
}

// read reads until the proxy closes the connection, then closes it too (as a DICOM client does once the
// gateway has closed its side).
func (c *client) read() {
	defer close(c.readDone)
	defer c.conn.Close()
	buf := make([]byte, 64<<10)
	_ = c.conn.SetReadDeadline(time.Now().Add(8 * time.Second))
	for {
		n, err := c.conn.Read(buf)
		c.mu.Lock()
		c.received = append(c.received, buf[:n]...)
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				c.end = "eof"
			case strings.Contains(err.Error(), "connection reset"):
				c.end = "reset"
			case errors.Is(err, net.ErrClosed):
				c.end = "aborted-by-client"
			default:
				c.end = err.Error()
			}
		}
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// write sends b (one write call; over TLS one record per 16 KiB).
func (c *client) write(b []byte) {
	c.t.Helper()
	if c.conn == nil {
		return
	}
	_, _ = c.conn.Write(b)
}

// closeWrite half-closes: TLS close_notify then TCP FIN.
func (c *client) closeWrite() {
	if tc, ok := c.conn.(*tls.Conn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.raw.CloseWrite()
}

// abort closes the connection with a TCP reset (SO_LINGER 0).
func (c *client) abort() {
	_ = c.raw.SetLinger(0)
	_ = c.raw.Close()
}

// wait waits until the proxy closed the connection (or the read deadline passed) and returns what arrived
// and how it ended.
func (c *client) wait() string {
	<-c.readDone
	c.mu.Lock()
	defer c.mu.Unlock()
	return digest(c.received) + " " + c.end
}

// --- running a case ------------------------------------------------------------------------------------------

// observation is everything a case compares between the sides.
type observation struct {
	Events   []string            // the filter's EVT/PROBE lines, connection ids normalised to c1, c2, … in order
	Clients  []string            // per client: received bytes and how the connection ended
	Backends map[string][]string // per cluster: per upstream connection, received bytes and +eof
}

// script drives one side; it must leave every client closed or waited for.
type script func(r *run)

// observe runs script through one side and returns the normalised observation.
func observe(t *testing.T, s *suite, sd side, sh *shape, rp reply, sc script) observation {
	t.Helper()
	for _, b := range sd.backends() {
		b.reset(rp)
	}
	logs := sd.logs(sh)
	mark := logs.mark()
	r := &run{t: t, s: s, side: sd, sh: sh}
	sc(r)
	for _, c := range r.clients {
		c.wait()
	}
	ended := time.Now()
	// Every connection the filter saw must be done (stream_done), and the log quiet for a moment after the
	// clients finished: close callbacks run after the client saw its connection end, Envoy's log lines reach
	// the reader later still (a case whose client ended at once could otherwise be judged before any of its
	// lines arrived), and a failed VM's last lines (its trap) may come last.
	quiet := 300 * time.Millisecond
	if r.vmFails {
		quiet = 500 * time.Millisecond
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := logs.since(mark)
		done := r.vmFails || countPrefix(l, "EVT new_connection") == countPrefix(l, "EVT stream_done")
		if done && logs.quietFor() > quiet && time.Since(ended) > quiet {
			break
		}
		if time.Now().After(deadline) {
			require.FailNowf(t, "connections not done after 10 s", "%s %s: filter log:\n%s", sd.label(), sh.name, strings.Join(l, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	o := observation{Events: normalise(logs.since(mark)), Backends: map[string][]string{}}
	for _, c := range r.clients {
		o.Clients = append(o.Clients, c.wait())
	}
	for name, b := range sd.backends() {
		if obs := b.observed(); len(obs) > 0 {
			o.Backends[name] = obs
		}
	}
	return o
}

func countPrefix(l []string, p string) int {
	n := 0
	for _, x := range l {
		if strings.HasPrefix(x, p) {
			n++
		}
	}
	return n
}

var (
	idField = regexp.MustCompile(`\bid=(\d+)`)
	// vmLifecycle are the probe's VM start lines; Envoy may still log a worker's after /ready.
	vmLifecycle = regexp.MustCompile(`^EVT (plugin_context|vm_start|configure) `)
)

// normalise keeps the connection-scoped EVT/PROBE lines (not ticks, which depend on timing) and renames
// connection ids to c1, c2, … in order of first appearance.
func normalise(in []string) []string {
	ids := map[string]string{}
	var out []string
	for _, l := range in {
		if strings.HasPrefix(l, `{"time":`) { // the real filter's audit line
			out = append(out, normaliseAudit(l))
			continue
		}
		if !strings.HasPrefix(l, "EVT ") && !strings.HasPrefix(l, "PROBE ") {
			continue
		}
		if periodic(l) || vmLifecycle.MatchString(l) {
			continue
		}
		l = idField.ReplaceAllStringFunc(l, func(m string) string {
			id := strings.TrimPrefix(m, "id=")
			if _, ok := ids[id]; !ok {
				ids[id] = fmt.Sprintf("c%d", len(ids)+1)
			}
			return "id=" + ids[id]
		})
		out = append(out, l)
	}
	return out
}

var auditVarying = []struct {
	re  *regexp.Regexp
	out string
}{
	{regexp.MustCompile(`"time":"[^"]*"`), `"time":"T"`},
	{regexp.MustCompile(`"conn":\d+`), `"conn":N`},
	{regexp.MustCompile(`"source":"([^"]*):\d+"`), `"source":"$1:PORT"`},
	{regexp.MustCompile(`"latency_us":\d+`), `"latency_us":L`},
}

// normaliseAudit replaces the fields of the real filter's audit line that differ run to run.
func normaliseAudit(l string) string {
	for _, v := range auditVarying {
		l = v.re.ReplaceAllString(l, v.out)
	}
	return l
}

// compare runs sc through Envoy and through the host and returns both observations (Envoy first).
func compare(t *testing.T, sh *shape, rp reply, sc script) (envoy, hst observation) {
	t.Helper()
	s := getSuite(t)
	mark := s.envoy.raw.mark()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Envoy's log during the case:\n%s", strings.Join(s.envoy.raw.since(mark), "\n"))
		}
	})
	envoy = observe(t, s, s.envoy, sh, rp, sc)
	hst = observe(t, s, s.host, sh, rp, sc)
	t.Logf("envoy observed:\n%s", dump(envoy))
	return envoy, hst
}

// requireSame fails unless both sides observed the same.
func requireSame(t *testing.T, envoy, hst observation) {
	t.Helper()
	require.Equal(t, dump(envoy), dump(hst), "real Envoy (expected) vs wasm/host (actual)")
}

func dump(o observation) string {
	var b strings.Builder
	b.WriteString("events:\n")
	for _, e := range o.Events {
		b.WriteString("  " + e + "\n")
	}
	b.WriteString("clients:\n")
	for _, c := range o.Clients {
		b.WriteString("  " + c + "\n")
	}
	var names []string
	for n := range o.Backends {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "backend %s:\n", n)
		for _, c := range o.Backends[n] {
			b.WriteString("  " + c + "\n")
		}
	}
	return b.String()
}
