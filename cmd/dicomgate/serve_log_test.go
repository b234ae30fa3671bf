package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/sdk/pdu"
	"github.com/dicomgate/dicomgate/wasm/host"
)

// demoTLS is the client TLS configuration for the demo's generated PKI.
func demoTLS(t *testing.T, demoDir string) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(demoDir, "pki", "ca.crt"))
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	cert, err := tls.LoadX509KeyPair(filepath.Join(demoDir, "pki", "client.crt"), filepath.Join(demoDir, "pki", "client.key"))
	require.NoError(t, err)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "localhost"}
}

// tlsExchange sends stream over TLS, half-closes and returns what came back.
func tlsExchange(t *testing.T, addr string, cfg *tls.Config, stream []byte) []byte {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(15*time.Second)))
	_, err = c.Write(stream)
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	got, _ := io.ReadAll(c)
	return got
}

// jsonLines parses every line of out as one JSON object; a line that is not
// one fails the test.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		require.NoError(t, dec.Decode(&m), "line %d is not a JSON object: %q", i+1, line)
		require.False(t, dec.More(), "line %d holds more than one JSON value: %q", i+1, line)
		objs = append(objs, m)
	}
	return objs
}

// `serve --log-format json` with the demo: an allowed, a denied (answered by
// the rejector), a non-DICOM connection and a forged connection straight to
// the rejector. Every line of standard error is one JSON object: the audit
// records as the filter wrote them, every other line {time, level, logger,
// msg[, conn][, listen]}; the filter's warning and the gateway's close of the
// non-DICOM connection carry the conn of its audit record.
func TestServeLogFormatJSON(t *testing.T) {
	wasm := filterWasm(t)
	demoDir := t.TempDir()
	f := serveDefaults()
	f.wasm, f.demoDir, f.workers, f.logFormat = wasm, demoDir, 1, "json"
	addr, stderr, stop := startServe(t, f)
	cfg := demoTLS(t, demoDir)
	echo := readCapture(t, "echo_default.c2s.bin")

	got := tlsExchange(t, addr, cfg, withAEs(echo, "DICOMGATE", "ECHOSCU"))
	require.NotEmpty(t, got)
	require.Equal(t, pdu.TypeAssociateAC, pdu.Type(got[0]))
	require.Equal(t, []byte{0x03, 0, 0, 0, 0, 4, 0, 1, 1, 3}, tlsExchange(t, addr, cfg, withAEs(echo, "PACS_A", "INTRUDER")))
	require.Empty(t, tlsExchange(t, addr, cfg, []byte("GET / HTTP/1.0\r\n\r\n")))
	// A client that talks to the rejector directly (no preamble): refused and logged by the rejector.
	rjAddr := regexp.MustCompile(`rejector  : in-process on (\S+) `).FindStringSubmatch(stderr.String())
	require.NotNil(t, rjAddr, "the banner names the rejector's address:\n%s", stderr.String())
	rc, err := net.Dial("tcp", rjAddr[1])
	require.NoError(t, err)
	_, err = rc.Write(bytes.Repeat([]byte{'x'}, 64))
	require.NoError(t, err)
	_, _ = io.ReadAll(rc)
	rc.Close()
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "refused (not_from_filter)") }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, stop())

	out := stderr.String()
	objs := jsonLines(t, out)
	levels := map[string]bool{"trace": true, "debug": true, "info": true, "warn": true, "error": true, "critical": true}
	loggers := map[string]bool{loggerServe: true, loggerWasm: true, loggerGateway: true, loggerRejector: true, loggerDemoPACS: true}
	var audits []map[string]any
	seen := map[string]bool{}
	type line struct {
		logger, level, msg string
		conn               string
	}
	var others []line
	for _, m := range objs {
		if _, ok := m["decision"]; ok {
			audits = append(audits, m)
			continue
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			require.Contains(t, []string{"time", "level", "logger", "msg", "conn", "listen"}, k, "unexpected field in %v", m)
		}
		for _, k := range []string{"time", "level", "logger", "msg"} {
			require.IsType(t, "", m[k], "field %s of %v", k, m)
		}
		_, err := time.Parse(time.RFC3339, m["time"].(string))
		require.NoError(t, err)
		require.True(t, levels[m["level"].(string)], "level of %v", m)
		require.True(t, loggers[m["logger"].(string)], "logger of %v", m)
		seen[m["logger"].(string)] = true
		l := line{logger: m["logger"].(string), level: m["level"].(string), msg: m["msg"].(string)}
		if c, ok := m["conn"]; ok {
			l.conn = c.(json.Number).String()
		}
		others = append(others, l)
	}
	for _, lg := range []string{loggerServe, loggerWasm, loggerGateway, loggerRejector, loggerDemoPACS} {
		require.True(t, seen[lg], "no line from logger %s:\n%s", lg, out)
	}

	// The three associations' audit records, with the audit line's fields.
	require.Len(t, audits, 3, out)
	byDecision := map[string]map[string]any{}
	for _, a := range audits {
		for _, k := range []string{"time", "conn", "source", "decision", "rule", "reason", "latency_us", "dry_run"} {
			require.Contains(t, a, k, "audit record %v", a)
		}
		byDecision[a["reason"].(string)+"/"+a["decision"].(string)] = a
	}
	require.Contains(t, byDecision, "/allow")
	require.Equal(t, "reject", byDecision["policy/deny"]["respond"])
	notDICOM := byDecision["not_dicom/deny"]
	require.NotNil(t, notDICOM, "audit records: %v", audits)
	conn := notDICOM["conn"].(json.Number).String()

	// The filter's warning and the gateway's close of that connection carry its conn.
	has := func(logger, level, msgPart string) bool {
		for _, l := range others {
			if l.logger == logger && l.level == level && l.conn == conn && strings.Contains(l.msg, msgPart) {
				return true
			}
		}
		return false
	}
	require.True(t, has(loggerWasm, "warn", "dicomgate: connection "+conn+": closing (not_dicom)"), out)
	require.True(t, has(loggerGateway, "info", "closing client: filter_closed"), out)
	// The rejector's refusal of the direct client, serve's own lines.
	var ready, stopped, refused bool
	for _, l := range others {
		ready = ready || (l.logger == loggerServe && l.msg == "dicomgate: listening on "+addr)
		stopped = stopped || (l.logger == loggerServe && l.msg == "dicomgate: stopped")
		refused = refused || (l.logger == loggerRejector && l.level == "warn" && strings.Contains(l.msg, "refused (not_from_filter)"))
	}
	require.True(t, ready && stopped && refused, out)
	require.Contains(t, out, `"listen":"`+addr+`"`)
	require.NotContains(t, out, "wasm log dicomgate:")
}

// An audit record goes out byte for byte as the filter logged it, one per
// line; other filter lines become JSON with the connection number, and text
// form is unchanged.
func TestServeLogLines(t *testing.T) {
	audit := `{"time":"2026-01-02T03:04:05.000250Z","conn":7,"source":"10.1.2.3:40000","calling_ae":"A\"B","called_ae":"X","decision":"deny","rule":"default","reason":"policy","latency_us":250,"dry_run":false}`
	var b bytes.Buffer
	l := &serveLog{w: &b, min: host.LogInfo, json: true}
	l.Log(host.LogInfo, "dicomgate", audit)
	require.Equal(t, audit+"\n", b.String())

	b.Reset()
	l.Log(host.LogWarn, "dicomgate", "dicomgate: connection 24: closing (not_dicom): first byte 0x47")
	l.Log(host.LogDebug, "dicomgate", "dropped: below --log-level")
	l.gateway(slog.LevelWarn, 24, `closing client: upstream_connect_failed: cluster rejector endpoint 127.0.0.1:1: connect: connection refused`)
	l.gateway(slog.LevelWarn, 0, "accept: too many open files")
	l.rejectorf("rejector: %s: refused (%s): gateway connection %d: %s", "127.0.0.1:5", "no_rq", 24, "0 of 6 bytes")
	l.printf("warning: no --default-cluster: <allow> & co")
	l.printf("policy.json: error: rules[0].action: bad")
	l.demopacsf("PACS_A: association X -> Y")
	l.listening("127.0.0.1:11112")
	objs := jsonLines(t, b.String())
	strip := func(m map[string]any) map[string]any { delete(m, "time"); return m }
	n := func(i int64) json.Number { return json.Number(strings.TrimSpace(jsonInt(i))) }
	require.Equal(t, []map[string]any{
		{"level": "warn", "logger": "wasm", "msg": "dicomgate: connection 24: closing (not_dicom): first byte 0x47", "conn": n(24)},
		{"level": "warn", "logger": "gateway", "msg": "closing client: upstream_connect_failed: cluster rejector endpoint 127.0.0.1:1: connect: connection refused", "conn": n(24)},
		{"level": "warn", "logger": "gateway", "msg": "accept: too many open files"},
		{"level": "warn", "logger": "rejector", "msg": "127.0.0.1:5: refused (no_rq): gateway connection 24: 0 of 6 bytes", "conn": n(24)},
		{"level": "warn", "logger": "dicomgate", "msg": "warning: no --default-cluster: <allow> & co"},
		{"level": "error", "logger": "dicomgate", "msg": "policy.json: error: rules[0].action: bad"},
		{"level": "info", "logger": "demopacs", "msg": "PACS_A: association X -> Y"},
		{"level": "info", "logger": "dicomgate", "msg": "dicomgate: listening on 127.0.0.1:11112", "listen": "127.0.0.1:11112"},
	}, func() []map[string]any {
		for _, m := range objs {
			strip(m)
		}
		return objs
	}())
	require.Contains(t, b.String(), `<allow> & co`, "no HTML escaping")

	// Text form: today's lines.
	b.Reset()
	l = &serveLog{w: &b, min: host.LogInfo}
	l.Log(host.LogInfo, "dicomgate", audit)
	l.Log(host.LogWarn, "dicomgate", "dicomgate: connection 24: closing (not_dicom): x")
	l.gateway(slog.LevelInfo, 24, "closing client: filter_closed")
	l.rejectorf("rejector: %s: refused (%s): x", "127.0.0.1:5", "forged")
	l.demopacsf("PACS_A: y")
	l.listening("127.0.0.1:11112")
	ts := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `
	require.Regexp(t, regexp.MustCompile(`^`+ts+`\[info\] wasm log dicomgate: `+regexp.QuoteMeta(audit)+`
`+ts+`\[warning\] wasm log dicomgate: dicomgate: connection 24: closing \(not_dicom\): x
`+ts+`gateway: conn 24: closing client: filter_closed
`+ts+`rejector: 127\.0\.0\.1:5: refused \(forged\): x
`+ts+`demopacs PACS_A: y
dicomgate: listening on 127\.0\.0\.1:11112
$`), b.String())
}

func jsonInt(i int64) string { b, _ := json.Marshal(i); return string(b) }

// With --log-format json the error that ends serve is a JSON line too, with
// the usual exit status, and is not printed again as text.
func TestServeJSONFatalError(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "policy.json")
	require.NoError(t, os.WriteFile(good, []byte(`{"defaultAction":"allow"}`), 0o644))
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--wasm", filepath.Join(dir, "none.wasm"), "--policy", good, "--cluster", "a=127.0.0.1:1"}, 1,
			"dicomgate: --wasm " + filepath.Join(dir, "none.wasm") + ": no such file; build it with `make wasm`"},
		{[]string{"--early-data-bytes", "-1"}, 2, "dicomgate: --early-data-bytes -1: must be 0..1048576"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"serve", "--log-format", "json"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
		require.Equal(t, tc.code, code, stderr.String())
		objs := jsonLines(t, stderr.String())
		last := objs[len(objs)-1]
		require.Equal(t, "error", last["level"])
		require.Equal(t, "dicomgate", last["logger"])
		require.Contains(t, last["msg"], tc.msg)
		require.Empty(t, stdout.String())
	}
	// Text form: main prints it, as before.
	var stdout, stderr bytes.Buffer
	require.Equal(t, 2, run([]string{"serve", "--early-data-bytes", "-1"}, strings.NewReader(""), &stdout, &stderr))
	require.Equal(t, "dicomgate: --early-data-bytes -1: must be 0..1048576 (Envoy's max_early_data_bytes limit)\n", stderr.String())
}
