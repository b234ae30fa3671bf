// Package host is an Envoy-faithful proxy-wasm host for NETWORK (L4) filters, built on wazero.
//
// It loads a proxy-wasm module (ABI 0.2.0/0.2.1, e.g. a Go wasip1 c-shared build of a proxy-wasm-go-sdk
// plugin), runs one VM per worker like Envoy does, and models Envoy's network filter manager with the
// plugin's filter followed by a tcp_proxy terminal filter. Every emulated behaviour names the Envoy or
// proxy-wasm-cpp-host source it mirrors (docs/internals.md, "Envoy's L4 chain and the two connect modes").
//
// Start with NewEngine (one per process: the wazero runtime, its compilation cache, the shared data
// of its plugins; the package keeps no state of its own), load plugins with Engine.NewPlugin and
// feed each downstream connection through Plugin.NewConn. The package is the public API over
// internal packages with one job each: filtermanager, vm, abi, wasi, properties, metrics, shared
// (README.md, "Structure").
//
// Concurrency: all guest calls for one VM are serialized by one mutex per VM (= per worker, like Envoy's
// worker thread). A Conn is pinned to one worker. Conn methods are safe to call from one goroutine per
// connection (and also concurrently with Plugin.Tick); a Transport implementation may call back into
// its Conn synchronously (the call is processed after the current Transport method returns).
// Conn.Release lets a later NewConn reuse a finished Conn's memory: after it, the caller must not
// touch that *Conn again (see Release).
//
// Known deviations from Envoy (deliberate, documented here so tests can rely on them):
//   - No upstream clusters are known: proxy_http_call and gRPC calls fail (BAD_ARGUMENT / NOT_FOUND).
//   - Only the foreign function set_envoy_filter_state exists; others return NOT_FOUND.
//   - proxy_get_log_level always reports info.
//   - NewPlugin validates the configuration on worker 0's VM instead of a separate canary VM;
//     Reconfigure uses a canary.
//   - tcp_proxy is modelled in its IMMEDIATE upstream_connect_mode only (ON_DOWNSTREAM_DATA and
//     ON_DOWNSTREAM_TLS_HANDSHAKE are not modelled).
//   - path_link / path_symlink use the WASI signatures (cpp-host declares one parameter fewer).
//   - Properties cover the L4 set of docs/internals.md ("Connection properties") plus static PluginConfig.Properties;
//     xds.*, metadata and request.* are only available through PluginConfig.Properties.
//   - Transport.CloseUpstream has no reset flag: Envoy closes the upstream with an RST when the client
//     reset the connection (tcp_proxy TcpUpstream::onDownstreamEvent), the host's owner cannot tell.
//
// What real Envoy 1.40 confirmed, what was fixed after comparing with it and the remaining differences
// of the gateway built on this host are in README.md ("Checked against real Envoy", conformance).
package host

import (
	"errors"
	"net/netip"
	"time"

	"github.com/dicomgate/dicomgate/wasm/host/internal/filtermanager"
	"github.com/dicomgate/dicomgate/wasm/host/internal/vm"
)

// FailurePolicy selects what happens to connections when a VM traps (Envoy
// envoy.extensions.wasm.v3.FailurePolicy; Istio WasmPlugin failStrategy).
type FailurePolicy int

const (
	// FailClosed (default): in-flight connections of the failed VM are closed, new ones are closed at
	// new connection (Envoy wasm.cc PluginConfig::createContext with an empty Context).
	FailClosed FailurePolicy = filtermanager.FailClosed
	// FailOpen: new connections get no filter at all (plain tcp_proxy). Connections already open on
	// the failed VM are closed like FailClosed, because Envoy's per-stream check (cpp-host context.cc
	// CHECK_FAIL) reads PluginBase::fail_open_, which Envoy fills from the legacy fail_open bool
	// (source/extensions/common/wasm/plugin.h), not from failure_policy — which is what Istio ≥ 1.25
	// sends. Set PluginConfig.LegacyFailOpen to model fail_open: true (in-flight pass-through).
	FailOpen FailurePolicy = filtermanager.FailOpen
	// FailReload: in-flight connections are closed like FailClosed; a new connection recreates the VM
	// when at least PluginConfig.ReloadBackoff (jittered up to 1.5×) has passed since the VM was
	// loaded or last reloaded, and then proceeds normally; before that it is closed.
	FailReload FailurePolicy = filtermanager.FailReload
)

// String returns the Envoy enum name of the policy.
func (f FailurePolicy) String() string {
	switch f {
	case FailClosed:
		return "FAIL_CLOSED"
	case FailOpen:
		return "FAIL_OPEN"
	case FailReload:
		return "FAIL_RELOAD"
	}
	return "FailurePolicy(?)"
}

// LogLevel is the proxy-wasm log level (proxy_log level argument, TRACE 0 … CRITICAL 5).
type LogLevel int

// Log levels of proxy_log; anything above LogCritical is rejected with BAD_ARGUMENT. The values are
// vm.LogLevel's (the two convert by value).
const (
	LogTrace    LogLevel = LogLevel(vm.LogTrace)
	LogDebug    LogLevel = LogLevel(vm.LogDebug)
	LogInfo     LogLevel = LogLevel(vm.LogInfo)
	LogWarn     LogLevel = LogLevel(vm.LogWarn)
	LogError    LogLevel = LogLevel(vm.LogError)
	LogCritical LogLevel = LogLevel(vm.LogCritical)
)

// String returns the lower-case level name as Envoy prints it.
func (l LogLevel) String() string {
	switch l {
	case LogTrace:
		return "trace"
	case LogDebug:
		return "debug"
	case LogInfo:
		return "info"
	case LogWarn:
		return "warning"
	case LogError:
		return "error"
	case LogCritical:
		return "critical"
	}
	return "unknown"
}

// Clock is the time source of the host: WASI clock_time_get, proxy_get_current_time_nanoseconds, tick
// scheduling and the FAIL_RELOAD backoff use it. A nil Clock in PluginConfig means real time.
type Clock interface {
	// Now is the wall-clock time (WASI realtime clock, Envoy systemTime).
	Now() time.Time
	// Monotonic is a monotonic duration since an arbitrary origin (WASI monotonic clock). It must be
	// greater than zero: the Go wasip1 runtime aborts with "nanotime returning zero" otherwise.
	Monotonic() time.Duration
}

// Logger receives every guest log line (proxy_log, fd_write to stdout/stderr) and host diagnostics.
// A nil Logger in PluginConfig logs to stderr. msg is an immutable string the Logger may keep.
// A Logger that does not keep lines can also implement LogViewer to skip the copy of each line.
type Logger interface {
	Log(level LogLevel, pluginName, msg string)
}

// LogViewer is an optional interface of a Logger. When the Logger implements it, guest log lines
// (proxy_log, fd_write) go to LogView instead of Log, as a view of the line where it lies — the VM's
// linear memory or a host buffer — rather than as a string copied for each line (one allocation
// of the line's size saved per line).
//
// msg is only valid until LogView returns: the guest and the host reuse that memory afterwards, so
// an implementation must neither keep msg (nor a slice or unsafe string of it) nor modify it; copy
// what it keeps (string(msg), append). Like Log for guest lines, it runs inside the guest's call
// (normally with the worker's mutex held), so it must not call back into the Plugin or a Conn.
// Lines collected while a VM starts (quoted in NewPlugin's errors) and host diagnostics still go
// through Log.
type LogViewer interface {
	LogView(level LogLevel, pluginName string, msg []byte)
}

// PluginConfig configures one plugin (Envoy envoy.extensions.wasm.v3.PluginConfig plus VmConfig).
type PluginConfig struct {
	// Name is the plugin name (Envoy PluginConfig.name; Istio "<ns>.<name>"); property plugin_name.
	Name string
	// RootID is the root context id (Envoy root_id; Istio pluginName); property plugin_root_id.
	RootID string
	// VMID is the vm_id (property plugin_vm_id, shared-data namespace). Istio leaves it empty.
	VMID string
	// VMConfig is the VM configuration (buffer VM_CONFIGURATION, size passed to proxy_on_vm_start).
	VMConfig []byte
	// Configuration is the plugin configuration (buffer PLUGIN_CONFIGURATION during proxy_on_configure).
	Configuration []byte
	// FailurePolicy applies when a VM traps; the zero value is FailClosed.
	FailurePolicy FailurePolicy
	// Workers is the number of VMs (one per worker); 0 means runtime.GOMAXPROCS(0).
	Workers int
	// Env holds the environment variables visible through WASI environ_get (Envoy VmConfig.environment_variables).
	Env map[string]string
	// Clock is the time source; nil means real time.
	Clock Clock
	// Logger receives log lines; nil logs to stderr.
	Logger Logger
	// Metrics collects guest-defined and host metrics; nil creates a new registry.
	Metrics *Metrics
	// Properties are static properties keyed by their dot-joined path, e.g. "xds.node.id" answers
	// get_property(["xds","node","id"]). Values are returned verbatim.
	Properties map[string][]byte
	// LegacyFailOpen models Envoy's legacy PluginConfig.fail_open = true (FailurePolicy must be
	// FailOpen): connections already open on a VM that traps continue as pass-through (CHECK_FAIL
	// returns Continue) instead of being closed.
	LegacyFailOpen bool
	// ReloadBackoff is the base interval between VM (re)loads under FailReload; the actual interval is
	// jittered in [base, 1.5·base). 0 means 1 s (Envoy ReloadConfig.backoff.base_interval default).
	ReloadBackoff time.Duration
}

// TCPProxyConfig is the subset of envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy the model needs.
type TCPProxyConfig struct {
	// Cluster is tcp_proxy's configured cluster (overridden by filter state envoy.tcp_proxy.cluster).
	Cluster string
	// MaxEarlyDataBytes > 0 enables receive_before_connect (tcp_proxy.cc Filter::initialize): downstream
	// reads stay enabled before the upstream connects, tcp_proxy's onNewConnection returns Continue and
	// its onData buffers the bytes, disabling reads once this many are buffered; they are flushed when
	// the upstream connects. 0 (Envoy default) disables downstream reads at chain construction until
	// the upstream is connected.
	MaxEarlyDataBytes int
	// ReadBufferLimit is the listener's per_connection_buffer_limit_bytes (0 = Envoy's default 1 MiB):
	// when the downstream read buffer holds more (e.g. the filter keeps pausing), reads are disabled
	// until it drains below half (ConnectionImpl read-buffer watermarks).
	ReadBufferLimit int
}

// ConnInfo describes the downstream connection (Envoy StreamInfo / connection info provider).
type ConnInfo struct {
	// ID is the connection id (properties connection.id and connection_id).
	ID uint64
	// Source is the client address (source.address / source.port).
	Source netip.AddrPort
	// Destination is the local (listener) address (destination.address / destination.port).
	Destination netip.AddrPort
	// TLS is the terminated TLS session; nil means plaintext. A TLS connection created before its
	// handshake (as Envoy creates it) passes an empty TLSInfo and fills it with Conn.SetTLS.
	TLS *TLSInfo
	// RequestedServerName is the SNI (connection.requested_server_name).
	RequestedServerName string
}

// TLSInfo is what Envoy's Ssl::ConnectionInfo exposes to properties (connection.*).
type TLSInfo struct {
	Version                                              string   // connection.tls_version, e.g. "TLSv1.3"
	PeerCertPresented                                    bool     // connection.mtls (with TLS)
	SubjectPeer, SubjectLocal                            string   // connection.subject_{peer,local}_certificate
	URISANsPeer, DNSSANsPeer, URISANsLocal, DNSSANsLocal []string // connection.{uri,dns}_san_{peer,local}_certificate (first entry)
	SHA256PeerDigest                                     string   // connection.sha256_peer_certificate_digest (hex)
}

// Transport is how a Conn tells its owner (the socket gateway or a test) what to do. Methods are called
// from inside Conn methods (or Plugin.Tick), never concurrently for one Conn. They may call back into
// the Conn; such calls are queued and processed after the current event.
//
// Bytes passed to WriteUpstream and WriteDownstream are only valid during the call (they may be the
// very slice given to Conn.DownstreamData or Conn.UpstreamData): an implementation that keeps them
// must copy them.
type Transport interface {
	// ConnectUpstream: tcp_proxy picked a route; start connecting, then call Conn.UpstreamConnected or
	// Conn.UpstreamConnectFailed (unknown cluster => UpstreamConnectFailed, Envoy NoClusterFound).
	ConnectUpstream(cluster string)
	// WriteUpstream forwards client bytes (tcp_proxy onData); endStream = half-close toward upstream.
	WriteUpstream(b []byte, endStream bool)
	// WriteDownstream forwards upstream bytes to the client; endStream = half-close toward the client.
	WriteDownstream(b []byte, endStream bool)
	// CloseDownstream closes the client connection after flushing pending writes (FlushWrite); tcp_proxy
	// then closes its upstream, signalled separately with CloseUpstream.
	CloseDownstream(reason string)
	// CloseUpstream closes the upstream connection (if any). It may come while the connect requested
	// by ConnectUpstream is still in progress: abandon it (a later UpstreamConnected is ignored).
	CloseUpstream()
	// SetDownstreamReadDisabled stops (true) or resumes (false) reading from the client socket.
	SetDownstreamReadDisabled(disabled bool)
}

// ConnBinder may be implemented by a Transport: NewConn calls Bind with the new Conn before any
// other Transport method, so a Transport that answers ConnectUpstream (even synchronously) already
// knows its Conn.
type ConnBinder interface {
	Bind(c *Conn)
}

// ConnState is a snapshot of a Conn for tests and diagnostics.
type ConnState struct {
	ID                     uint64            // ConnInfo.ID
	Cluster                string            // cluster tcp_proxy picked ("" until tcp_proxy ran onNewConnection)
	TCPProxyInitialized    bool              // tcp_proxy.onNewConnection has run
	UpstreamConnected      bool              // UpstreamConnected was reported for the requested upstream
	DownstreamReadDisabled bool              // reads are disabled (tcp_proxy, early-data limit or read watermark)
	Buffered               int               // bytes in the downstream read buffer not yet consumed
	BytesToUpstream        uint64            // bytes handed to Transport.WriteUpstream
	BytesToDownstream      uint64            // bytes handed to Transport.WriteDownstream
	FilterInstalled        bool              // false when FAIL_OPEN skipped the filter for this connection
	FilterFailed           bool              // the VM serving this connection trapped
	Closed                 bool              // the downstream connection is closed (or being closed)
	CloseReason            string            // e.g. "wasm_downstream_close", "wasm_upstream_close", "wasm_fail_stream", "upstream_closed", "downstream_remote_close", or the UpstreamConnectFailed reason
	FilterState            map[string]string // see Conn.FilterState
}

// Errors returned by the package.
var (
	// ErrConfigRejected: proxy_on_configure (or proxy_on_vm_start) returned false.
	ErrConfigRejected = vm.ErrConfigRejected
	// ErrClosed: the plugin was closed.
	ErrClosed = errors.New("wasm plugin closed")
)
