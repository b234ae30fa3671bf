package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// The configurations of the targets, all with the same server certificate, the same client CA (mutual TLS) and
// the same backend, and the same number of workers (-workers: nginx worker_processes, HAProxy nbthread, Envoy
// --concurrency, dicomgate serve --workers; the Go targets run with GOMAXPROCS = the machine's CPUs).

// Benchmark identities: the policies route exactly this caller (AE titles and client-certificate URI SAN).
const (
	benchCallingAE = "BENCH-SCU"
	benchCalledAE  = "BENCH-PACS"
)

// pkiFiles are the certificate files every target uses.
type pkiFiles struct {
	cert, key, ca string
	clientURI     string
}

// benchPolicy is a policy of n rules whose last routes the benchmark caller to cluster "backend"; the n-1 before
// it route other callers (SCU-0001, …) there, so the caller is matched after every other rule was considered.
func benchPolicy(n int, clientURI string) ([]byte, error) {
	if n < 1 {
		return nil, fmt.Errorf("a policy of %d rules: want 1 or more", n)
	}
	route := func(name string, calling []string, peerURIs ...string) map[string]any {
		m := map[string]any{"callingAETitles": calling, "calledAETitles": []string{benchCalledAE}}
		if len(peerURIs) > 0 {
			m["peerURISANs"] = peerURIs
		}
		return map[string]any{"name": name, "match": m, "action": "route", "cluster": "backend"}
	}
	var rules []any
	for i := 1; i < n; i++ {
		rules = append(rules, route(fmt.Sprintf("other-%04d", i), []string{fmt.Sprintf("SCU-%04d", i)}))
	}
	rules = append(rules, route("bench", []string{benchCallingAE}, clientURI))
	return json.MarshalIndent(map[string]any{"defaultAction": "deny", "upstreamConnect": "after-decision", "rules": rules}, "", " ")
}

// nginxConfig is an nginx `stream` proxy: TLS with client certificates, proxy_pass to the backend.
func nginxConfig(dir string, port, backend, workers int, p pkiFiles) string {
	var b strings.Builder
	// Debian builds the stream module as a dynamic module (package libnginx-mod-stream).
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_stream_module.so"); err == nil {
		b.WriteString("load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n")
	}
	if os.Geteuid() == 0 {
		b.WriteString("user root;\n") // the workers read nothing after start-up; no other user is needed
	}
	fmt.Fprintf(&b, `daemon off;
worker_processes %d;
pid %s/nginx.pid;
error_log %s/nginx-error.log warn;
events { worker_connections 8192; }
stream {
  server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_client_certificate %s;
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    proxy_pass 127.0.0.1:%d;
  }
}
`, workers, dir, dir, port, p.cert, p.key, p.ca, backend)
	return b.String()
}

// haproxyConfig is HAProxy in `mode tcp`: TLS with client certificates (crt is the certificate and key in one
// PEM file), then the backend.
func haproxyConfig(port, backend, workers int, crt, ca string) string {
	return fmt.Sprintf(`global
  nbthread %d
  maxconn 8000
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend dicom
  bind 127.0.0.1:%d ssl crt %s ca-file %s verify required
  default_backend pacs
backend pacs
  server backend 127.0.0.1:%d
`, workers, port, crt, ca, backend)
}

// envoyBootstrap is an Envoy with one listener on port, with mutual TLS: without wasm, "envoy" (tcp_proxy to the
// backend, what Istio runs on a TLS port without the plugin); with wasm, "envoy-filter" (the compiled dicomgate
// filter on V8 with policy, then tcp_proxy with max_early_data_bytes; its default cluster "unrouted" is a closed
// port, so an association the filter failed to route fails instead of being measured). One listener per process,
// so each process's CPU time and memory are one target's. JSON, which Envoy reads as YAML's subset.
func envoyBootstrap(admin, port, backend, unrouted int, wasm string, policy []byte, p pkiFiles) ([]byte, error) {
	addr := func(port int) map[string]any {
		return map[string]any{"socket_address": map[string]any{"address": "127.0.0.1", "port_value": port}}
	}
	tlsSocket := map[string]any{"name": "envoy.transport_sockets.tls", "typed_config": map[string]any{
		"@type":                      "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
		"require_client_certificate": true,
		"common_tls_context": map[string]any{
			"tls_certificates":   []any{map[string]any{"certificate_chain": map[string]any{"filename": p.cert}, "private_key": map[string]any{"filename": p.key}}},
			"validation_context": map[string]any{"trusted_ca": map[string]any{"filename": p.ca}},
		}}}
	tcpProxy := func(stat, cluster string, early int) map[string]any {
		c := map[string]any{"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "stat_prefix": stat, "cluster": cluster}
		if early > 0 {
			c["max_early_data_bytes"] = early
		}
		return map[string]any{"name": "envoy.filters.network.tcp_proxy", "typed_config": c}
	}
	wasmFilter := map[string]any{"name": "envoy.filters.network.wasm", "typed_config": map[string]any{
		"@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
		"config": map[string]any{
			"name": "dicomgate", "root_id": "dicomgate", "failure_policy": "FAIL_CLOSED",
			"vm_config":     map[string]any{"runtime": "envoy.wasm.runtime.v8", "code": map[string]any{"local": map[string]any{"filename": wasm}}},
			"configuration": map[string]any{"@type": "type.googleapis.com/google.protobuf.StringValue", "value": string(policy)},
		}}}
	listener := func(name string, port int, filters ...any) map[string]any {
		return map[string]any{"name": name, "address": addr(port),
			"filter_chains": []any{map[string]any{"filters": filters, "transport_socket": tlsSocket}}}
	}
	cluster := func(name string, port int) map[string]any {
		return map[string]any{"name": name, "type": "STATIC", "connect_timeout": "5s", "load_assignment": map[string]any{
			"cluster_name": name, "endpoints": []any{map[string]any{"lb_endpoints": []any{map[string]any{"endpoint": map[string]any{"address": addr(port)}}}}}}}
	}
	l := listener("envoy", port, tcpProxy("envoy", "backend", 0))
	if wasm != "" {
		l = listener("envoy-filter", port, wasmFilter, tcpProxy("envoy_filter", "unrouted", 1<<20))
	}
	return json.MarshalIndent(map[string]any{
		"node":  map[string]any{"id": "dicomgate-benchsystem", "cluster": "dicomgate-benchsystem"},
		"admin": map[string]any{"address": addr(admin)},
		"static_resources": map[string]any{
			"listeners": []any{l},
			"clusters":  []any{cluster("backend", backend), cluster("unrouted", unrouted)},
		},
	}, "", " ")
}
