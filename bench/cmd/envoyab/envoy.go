package main

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

//go:embed bootstrap.yaml.tmpl
var bootstrapTemplate string

// bootstrapValues are the values of bootstrap.yaml.tmpl.
type bootstrapValues struct {
	AdminPort, FilterPort, PlainPort int
	EarlyPort                        int
	BackendPort, UnroutedPort        int
	// Filter adds the "filter" listener; without it Envoy runs the plain listener only (the cold-start and RSS
	// baseline).
	Filter bool
	// Early adds the diagnostic "early" listener (tcp_proxy with max_early_data_bytes, no filter).
	Early bool
	// NoopListeners are diagnostic listeners running the do-nothing Go filter NoopWasmFile, then plain tcp_proxy.
	NoopListeners        []noopListener
	NoopWasmFile         string
	WasmFile, PolicyJSON string
	// BeforeWasmFile, when set, adds the diagnostic listener "before" on BeforePort: the "filter" listener with
	// this other build of the filter (envoyab -before-wasm).
	BeforeWasmFile    string
	BeforePort        int
	EarlyDataBytes    int
	CertFile, KeyFile string
	ClientCAFile      string
}

// noopListener is one listener with the noop filter; Config is its plugin configuration (host calls per
// connection, "" for none, or "pause") and Name its listener name, Wasm plugin name and tcp_proxy stat prefix;
// EarlyData sets max_early_data_bytes on its tcp_proxy (needed with "pause").
type noopListener struct {
	Name, Config string
	Port         int
	EarlyData    bool
	// WasmFile replaces NoopWasmFile for this listener (the WebAssembly-text noop of -noop-wat).
	WasmFile string
}

// filterListenerValues are the values of the template "filterListener": one listener running a build of the
// filter (WasmFile) with the policy, then tcp_proxy with max_early_data_bytes. PluginName is the Wasm plugin's
// name ("dicomgate" on the "filter" listener, as in the manifests).
type filterListenerValues struct {
	Root                       bootstrapValues
	Name, PluginName, WasmFile string
	Port                       int
}

// newFilterListener is the template function filterListener.
func newFilterListener(root bootstrapValues, name string, port int, wasm string) filterListenerValues {
	plugin := "dicomgate"
	if name != "filter" {
		plugin += "-" + name
	}
	return filterListenerValues{Root: root, Name: name, PluginName: plugin, WasmFile: wasm, Port: port}
}

// renderBootstrap renders the embedded template.
func renderBootstrap(v bootstrapValues) ([]byte, error) {
	tmpl, err := template.New("bootstrap").Option("missingkey=error").Funcs(template.FuncMap{
		"filterListener": newFilterListener,
		"json": func(v any) (string, error) {
			out, err := json.Marshal(v)
			return string(out), err
		},
	}).Parse(bootstrapTemplate)
	if err != nil {
		return nil, fmt.Errorf("bootstrap.yaml.tmpl: %w", err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, v); err != nil {
		return nil, fmt.Errorf("bootstrap.yaml.tmpl: %w", err)
	}
	return out.Bytes(), nil
}

// envoyLogFormat puts the thread id in every line so the per-worker plugin configuration can be told apart.
const envoyLogFormat = "[%Y-%m-%d %T.%f][%t][%l][%n] %v"

// envoyProc is one running Envoy.
type envoyProc struct {
	cmd       *exec.Cmd
	pid       int
	started   time.Time // wall clock just before exec (Envoy's log timestamps are wall clock too)
	adminPort int
	logPath   string
	done      chan error
}

// startEnvoy writes the bootstrap into dir and starts Envoy with workers worker threads, the wasm logger at
// wasmLevel (info: the filter's configured and audit lines; debug adds "Base Wasm created") and everything else at
// warning, logging into dir/envoy.log. It waits for /ready and returns the time from exec to the first 200.
func startEnvoy(bin, dir string, v bootstrapValues, workers int, wasmLevel string) (*envoyProc, time.Duration, error) {
	cfg, err := renderBootstrap(v)
	if err != nil {
		return nil, 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, err
	}
	cfgPath := filepath.Join(dir, "bootstrap.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return nil, 0, err
	}
	e := &envoyProc{adminPort: v.AdminPort, logPath: filepath.Join(dir, "envoy.log"), done: make(chan error, 1)}
	_ = os.Remove(e.logPath)
	out, err := os.Create(filepath.Join(dir, "envoy.out"))
	if err != nil {
		return nil, 0, err
	}
	e.cmd = exec.Command(bin, "-c", cfgPath, "--disable-hot-restart", "--concurrency", strconv.Itoa(workers),
		"-l", "warning", "--component-log-level", "wasm:"+wasmLevel, "--log-path", e.logPath, "--log-format", envoyLogFormat)
	e.cmd.Stdout, e.cmd.Stderr = out, out
	e.started = time.Now()
	if err := e.cmd.Start(); err != nil {
		out.Close()
		return nil, 0, fmt.Errorf("starting %s: %w", bin, err)
	}
	e.pid = e.cmd.Process.Pid
	go func() { e.done <- e.cmd.Wait(); out.Close() }()
	client := http.Client{Timeout: time.Second}
	deadline := e.started.Add(90 * time.Second)
	for {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", v.AdminPort))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return e, time.Since(e.started), nil
			}
		}
		select {
		case werr := <-e.done:
			e.done <- werr
			return nil, 0, fmt.Errorf("envoy exited during start-up (%v); bootstrap %s; output in %s and %s", werr, cfgPath, out.Name(), e.logPath)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.stop()
			return nil, 0, fmt.Errorf("envoy not ready after 90 s; bootstrap %s; log %s", cfgPath, e.logPath)
		}
	}
}

// stop sends SIGTERM and waits (SIGKILL after 15 s).
func (e *envoyProc) stop() {
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-e.done:
		e.done <- err
	case <-time.After(15 * time.Second):
		_ = e.cmd.Process.Kill()
		e.done <- <-e.done
	}
}

// stats reads Envoy counters and gauges whose names match the regular expression filter from the admin
// endpoint /stats (plain text, "name: value" per line; histograms are skipped).
func (e *envoyProc) stats(filter string) (map[string]int64, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/stats?filter=%s", e.adminPort, url.QueryEscape(filter)))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("/stats: HTTP %d: %s", resp.StatusCode, body)
	}
	return parseStats(body), nil
}

// parseStats parses Envoy's plain-text /stats output; lines whose value is not an integer (histograms) are
// skipped.
func parseStats(body []byte) map[string]int64 {
	m := map[string]int64{}
	for _, line := range strings.Split(string(body), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		m[k] = n
	}
	return m
}

// logEvent is one Envoy log line of interest.
type logEvent struct {
	At     time.Time
	Thread int
	Msg    string
}

// envoyLogLine matches envoyLogFormat.
var envoyLogLine = regexp.MustCompile(`^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})\]\[(\d+)\]\[(\w+)\]\[([\w.]+)\] (.*)$`)

// coldStart is what the log says about the plugin's start.
type coldStart struct {
	// BaseCreated is when Envoy created the base VM (wasm debug line "Base Wasm created"; zero at info level).
	BaseCreated time.Time
	// BaseThread is the thread that created the base VM (Envoy's main thread).
	BaseThread int
	// ThreadLocal are the wasm debug lines "Thread-Local Wasm created", logged by the thread that starts cloning
	// a VM for itself (Envoy's Wasm clone constructor).
	ThreadLocal []logEvent
	// Configured are the filter's "dicomgate: configured" lines, one per thread that configured a plugin (the
	// main thread, which loads the module and configures a root context first, and every worker).
	Configured []logEvent
}

// parseColdStart reads the configured lines (and the base-VM line) from an Envoy log.
func parseColdStart(r io.Reader) (coldStart, error) {
	var cs coldStart
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := envoyLogLine.FindStringSubmatch(sc.Text())
		if m == nil || m[4] != "wasm" {
			continue
		}
		at, err := time.ParseInLocation("2006-01-02 15:04:05.000000", m[1], time.Local)
		if err != nil {
			return cs, err
		}
		tid, _ := strconv.Atoi(m[2])
		switch {
		case strings.Contains(m[5], "Base Wasm created") && cs.BaseCreated.IsZero():
			cs.BaseCreated, cs.BaseThread = at, tid
		case strings.Contains(m[5], "Thread-Local Wasm created"):
			cs.ThreadLocal = append(cs.ThreadLocal, logEvent{At: at, Thread: tid, Msg: m[5]})
		case strings.Contains(m[5], "dicomgate: configured:"):
			cs.Configured = append(cs.Configured, logEvent{At: at, Thread: tid, Msg: m[5]})
		}
	}
	return cs, sc.Err()
}

// freePorts returns n distinct TCP ports that were free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
