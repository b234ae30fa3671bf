package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"
)

// The opt-in real-Envoy lane: with ENVOY_BIN set, every gateway scenario runs again through Envoy processes
// configured from e2e/envoy/bootstrap.yaml.tmpl with the same policy, clusters, certificates and filter module.

// envoyBootstrap are the values of e2e/envoy/bootstrap.yaml.tmpl.
type envoyBootstrap struct {
	Name                    string
	AdminPort, ListenerPort int
	StatTags                []string
	WasmFile, PolicyJSON    string
	DefaultCluster          string
	EarlyDataBytes          int
	TLS                     bool
	CertFile, KeyFile       string
	ClientCAFile            string // non-empty: require and verify client certificates (mutual TLS)
	Clusters                []envoyCluster
}

// envoyCluster is one STATIC cluster.
type envoyCluster struct {
	Name, Host string
	Port       int
}

// envoyStatTags are the label keys the filter encodes in its metric names (filters/dicomgate/metrics.go).
var envoyStatTags = []string{"action", "rule", "reason"}

// renderBootstrap renders the bootstrap template.
func renderBootstrap(b envoyBootstrap) ([]byte, error) {
	src, err := os.ReadFile(filepath.Join("envoy", "bootstrap.yaml.tmpl"))
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("bootstrap").Option("missingkey=error").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			out, err := json.Marshal(v)
			return string(out), err
		},
	}).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("e2e/envoy/bootstrap.yaml.tmpl: %w", err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, b); err != nil {
		return nil, fmt.Errorf("e2e/envoy/bootstrap.yaml.tmpl: %w", err)
	}
	return out.Bytes(), nil
}

// envoyBootstrapFor maps a gateway configuration to bootstrap values.
func envoyBootstrapFor(label string, o gatewayOpts, adminPort, listenerPort int, wasm string) (envoyBootstrap, error) {
	pol, err := json.Marshal(o.policy)
	if err != nil {
		return envoyBootstrap{}, err
	}
	b := envoyBootstrap{
		Name: label, AdminPort: adminPort, ListenerPort: listenerPort, StatTags: envoyStatTags, WasmFile: wasm,
		PolicyJSON: string(pol), DefaultCluster: o.defaultCluster, EarlyDataBytes: earlyDataBytes, TLS: o.tls,
	}
	if o.tls {
		b.CertFile, b.KeyFile = certs.Server.Cert, certs.Server.Key
		if o.clientCA {
			b.ClientCAFile = certs.CAFile
		}
	}
	names := make([]string, 0, len(o.clusters))
	for n := range o.clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		host, port, err := net.SplitHostPort(o.clusters[n])
		if err != nil {
			return envoyBootstrap{}, fmt.Errorf("cluster %s: %w", n, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return envoyBootstrap{}, fmt.Errorf("cluster %s: port %q: %w", n, port, err)
		}
		b.Clusters = append(b.Clusters, envoyCluster{Name: n, Host: host, Port: p})
	}
	return b, nil
}

// envoyBin is the Envoy binary of the lane: $ENVOY_BIN, else the pinned Envoy `make envoy` installs as
// build/envoy. Neither existing is an error that names the command installing it: the lane never silently skips.
func envoyBin() (string, error) {
	if b := os.Getenv("ENVOY_BIN"); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("ENVOY_BIN=%s: %v; unset it to use the pinned Envoy (`make envoy`)", b, err)
		}
		return b, nil
	}
	b := filepath.Join(repoRoot, "build", "envoy")
	if _, err := os.Stat(b); err != nil {
		return "", fmt.Errorf("no Envoy at %s (ENVOY_BIN unset): run `make envoy` (or `make deps`) to install the pinned "+
			"Envoy, or set ENVOY_BIN=/path/to/envoy (>= 1.37, V8 Wasm runtime); DICOMGATE_NO_ENVOY=1 skips the lane", b)
	}
	return b, nil
}

// envoySkipped reports whether DICOMGATE_NO_ENVOY=1 asks to skip the real-Envoy lane.
func envoySkipped() bool { return os.Getenv("DICOMGATE_NO_ENVOY") == "1" }

// startEnvoy starts `envoy -c bootstrap.yaml` for one gateway configuration and waits for /ready and the
// listener.
func startEnvoy(label string, o gatewayOpts) (*gateway, error) {
	bin, err := envoyBin()
	if err != nil {
		return nil, err
	}
	if err := artifacts(); err != nil {
		return nil, fmt.Errorf("gateway artifacts unavailable: %w", err)
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	b, err := envoyBootstrapFor(label, o, adminPort, port, filterWasm)
	if err != nil {
		return nil, err
	}
	cfg, err := renderBootstrap(b)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(workDir, label)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "bootstrap.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return nil, err
	}
	// Warning level except the wasm component, whose info lines carry the filter's audit records.
	p, err := startProc(label, nil, bin, "-c", cfgPath, "--disable-hot-restart", "--concurrency", "2",
		"-l", "warning", "--component-log-level", "wasm:info")
	if err != nil {
		return nil, err
	}
	g := &gateway{label: label, proc: p, port: port, metricsURL: fmt.Sprintf("http://127.0.0.1:%d/stats/prometheus", adminPort), tls: o.tls,
		// cluster.<name>.upstream_cx_total counts connection attempts (Envoy cluster statistics).
		upstreamAttempts: func(c string) []metricRef {
			return []metricRef{{"cluster_upstream_cx_total", []string{"envoy_cluster_name", c}}}
		}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := httpClient.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", adminPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && portListening(port) {
				return g, nil
			}
		}
		if done, werr := p.exited(); done {
			return nil, fmt.Errorf("envoy %s exited during start-up (%v); bootstrap %s; output:\n%s", label, werr, cfgPath, tail(p.out.String(), 60))
		}
		if time.Now().After(deadline) {
			_ = p.stop()
			return nil, fmt.Errorf("envoy %s not ready after 60 s; bootstrap %s; output:\n%s", label, cfgPath, tail(p.out.String(), 60))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var (
	envoyMTLSSh, envoyPlainSh, envoyDrySh, envoyRejectSh shared[*gateway]
)

// envoyLane runs the scenarios through real Envoy processes. TLS handshake failures are Envoy's listener
// ssl.connection_error (e.g. plain bytes on the TLS port) plus ssl.fail_verify_no_cert (no client certificate),
// which connection_error does not include (Envoy docs, listener statistics).
var envoyLane = &lane{
	name: "envoy",
	mtls: func(t testing.TB) *gateway {
		t.Helper()
		c := clusters(t)
		return envoyMTLSSh.get(t, func() (*gateway, error) {
			return startEnvoy("envoy-mtls", gatewayOpts{tls: true, clientCA: true, policy: e2ePolicy("enforce"), clusters: c, defaultCluster: clusterSink})
		})
	},
	plain: func(t testing.TB) *gateway {
		t.Helper()
		c := clusters(t)
		return envoyPlainSh.get(t, func() (*gateway, error) {
			return startEnvoy("envoy-plain", gatewayOpts{policy: e2ePolicy("enforce"), clusters: c, defaultCluster: clusterSink})
		})
	},
	dryRun: func(t testing.TB) *gateway {
		t.Helper()
		c := clusters(t)
		return envoyDrySh.get(t, func() (*gateway, error) {
			return startEnvoy("envoy-dryrun", gatewayOpts{tls: true, clientCA: true, policy: e2ePolicy("dry-run"), clusters: c, defaultCluster: clusterOrthanc})
		})
	},
	reject: func(t testing.TB) *gateway {
		t.Helper()
		c := rejectClusters(t)
		return envoyRejectSh.get(t, func() (*gateway, error) {
			return startEnvoy("envoy-reject", gatewayOpts{tls: true, clientCA: true, policy: e2eRejectPolicy(), clusters: c, defaultCluster: clusterSink})
		})
	},
	tlsHandshakeFailures: []string{"listener_ssl_connection_error", "listener_ssl_fail_verify_no_cert"},
}

// TestEnvoyLane runs every gateway scenario through a real Envoy: $ENVOY_BIN, else the pinned build/envoy that
// `make deps` installs (Envoy >= 1.37 with the V8 Wasm runtime: max_early_data_bytes first appeared in 1.37). A
// missing Envoy fails the lane with the command that installs it; only DICOMGATE_NO_ENVOY=1 skips it, loudly.
func TestEnvoyLane(t *testing.T) {
	if envoySkipped() {
		t.Skip("real-Envoy lane NOT run: DICOMGATE_NO_ENVOY=1. Unset it (and `make envoy`) to run every gateway " +
			"scenario through Envoy with e2e/envoy/bootstrap.yaml.tmpl")
	}
	_, err := envoyBin()
	require.NoError(t, err)
	requireArtifacts(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, envoyLane) })
	}
}
