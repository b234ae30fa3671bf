package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// metricsGolden is what `serve --metrics` exposes in the demo, values left
// out: every HELP and TYPE line and every series (name and labels).
// Regenerate with: go test ./cmd/dicomgate -run TestServeMetricsGolden -update
var metricsGolden = filepath.Join("testdata", "metrics.golden")

// metricsShape is page without the sample values: HELP and TYPE lines as
// they are, each sample as its name and labels.
func metricsShape(page string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(page, "\n"), "\n") {
		if !strings.HasPrefix(line, "#") {
			i := strings.LastIndexByte(line, ' ')
			if i < 0 {
				line = "MALFORMED " + line
			} else {
				line = line[:i]
			}
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// metricValues maps "name{labels}" to the sample's value as written.
func metricValues(page string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(page, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			out[line[:i]] = line[i+1:]
		}
	}
	return out
}

// TestServeMetricsGolden pins every metric `dicomgate serve --metrics`
// exposes — the filter's dicomgate_* (from the Wasm module), the host's
// wasm_host_*, the gateway's dicomgate_gateway_* and the demo rejector's
// dicomgate_reject_* — by name, TYPE, label set and HELP text, after a demo
// run that allows, routes, denies with an A-ASSOCIATE-RJ and closes a
// non-DICOM client: a series that disappears or a HELP that changes fails
// (regenerate with -update after an intended change). Then it checks that the
// counters count what their HELP says, exactly.
func TestServeMetricsGolden(t *testing.T) {
	wasm := filterWasm(t)
	demoDir := t.TempDir()
	f := serveDefaults()
	f.wasm, f.demoDir, f.workers, f.metrics = wasm, demoDir, 1, "127.0.0.1:0"
	addr, stderr, stop := startServe(t, f)
	metricsAddr := regexp.MustCompile(`metrics: http://(\S+)/metrics`).FindStringSubmatch(stderr.String())
	require.NotNil(t, metricsAddr)
	cfg := demoTLS(t, demoDir)
	echo := readCapture(t, "echo_default.c2s.bin")

	const allows, routes, denies, notDICOM = 2, 1, 3, 1
	for i := 0; i < allows; i++ {
		got := tlsExchange(t, addr, cfg, withAEs(echo, "DICOMGATE", "ECHOSCU"))
		require.Equal(t, pdu.TypeAssociateAC, pdu.Type(append(got, 0)[0]))
	}
	for i := 0; i < routes; i++ {
		got := tlsExchange(t, addr, cfg, withAEs(echo, "PACS_A", "ECHOSCU"))
		require.Equal(t, pdu.TypeAssociateAC, pdu.Type(append(got, 0)[0]))
	}
	for i := 0; i < denies; i++ {
		require.Equal(t, []byte{0x03, 0, 0, 0, 0, 4, 0, 1, 1, 3}, tlsExchange(t, addr, cfg, withAEs(echo, "PACS_A", "INTRUDER")))
	}
	for i := 0; i < notDICOM; i++ {
		require.Empty(t, tlsExchange(t, addr, cfg, []byte("GET / HTTP/1.0\r\n\r\n")))
	}
	const conns = allows + routes + denies + notDICOM

	// Counters count what their HELP says: exactly these values (polled: a
	// counter may move a moment after the client saw the answer).
	want := map[string]string{
		// the filter: one association per connection that sent a byte
		`dicomgate_associations_total`:                                    fmt.Sprint(conns),
		`dicomgate_decisions_total{action="allow",rule="echo-dicomgate"}`: fmt.Sprint(allows),
		`dicomgate_decisions_total{action="route",rule="to-pacs-a"}`:      fmt.Sprint(routes),
		`dicomgate_decisions_total{action="route",rule="to-pacs-b"}`:      "0",
		`dicomgate_decisions_total{action="deny",rule="default"}`:         fmt.Sprint(denies),
		`dicomgate_denied_total{reason="policy"}`:                         fmt.Sprint(denies),
		`dicomgate_denied_total{reason="not_dicom"}`:                      fmt.Sprint(notDICOM),
		`dicomgate_denied_total{reason="timeout"}`:                        "0",
		`dicomgate_rejected_total`:                                        fmt.Sprint(denies),
		`dicomgate_dry_run_denies_total`:                                  "0",
		// the host: every connection gets a filter at accept
		`wasm_host_connections_total{plugin="dicomgate"}`: fmt.Sprint(conns),
		`wasm_host_vm_failures_total{plugin="dicomgate"}`: "0",
		// the gateway
		`dicomgate_gateway_connections_total`:                                         fmt.Sprint(conns),
		`dicomgate_gateway_connections_active`:                                        "0",
		`dicomgate_gateway_tls_handshake_failures_total`:                              "0",
		`dicomgate_gateway_upstream_connections_total{cluster="pacs-a"}`:              fmt.Sprint(allows + routes), // allow goes to the default cluster pacs-a
		`dicomgate_gateway_upstream_connections_total{cluster="pacs-b"}`:              "0",
		`dicomgate_gateway_upstream_connections_total{cluster="rejector"}`:            fmt.Sprint(denies),
		`dicomgate_gateway_upstream_connect_failures_total{cluster="rejector"}`:       "0",
		`dicomgate_gateway_downstream_closes_total{reason="filter_closed"}`:           fmt.Sprint(notDICOM),
		`dicomgate_gateway_downstream_closes_total{reason="upstream_connect_failed"}`: "0",
		`dicomgate_gateway_no_cluster_total`:                                          "0",
		// the in-process rejector
		`dicomgate_reject_connections_total`:                            fmt.Sprint(denies),
		`dicomgate_reject_sent_total{result="1",source="1",reason="3"}`: fmt.Sprint(denies),
		`dicomgate_reject_refused_total{cause="not_from_filter"}`:       "0",
		`dicomgate_reject_refused_total{cause="forged"}`:                "0",
	}
	var page string
	var wrong []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		page = scrapePage(t, metricsAddr[1])
		got := metricValues(page)
		wrong = wrong[:0]
		for k, v := range want {
			if g, ok := got[k]; !ok {
				wrong = append(wrong, k+" missing")
			} else if g != v {
				wrong = append(wrong, fmt.Sprintf("%s = %s, want %s", k, g, v))
			}
		}
		if len(wrong) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	sort.Strings(wrong)
	require.Empty(t, wrong, "counters after %d allowed, %d routed, %d rejected, %d non-DICOM connections:\n%s", allows, routes, denies, notDICOM, page)
	require.NoError(t, stop())

	// Every family has a HELP (non-empty) and a TYPE before its samples.
	help, typ := map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(page, "\n") {
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, text, _ := strings.Cut(strings.TrimPrefix(line, "# HELP "), " ")
			require.NotEmpty(t, strings.TrimSpace(text), "empty HELP for %s", name)
			require.False(t, help[name], "HELP for %s twice", name)
			help[name] = true
		case strings.HasPrefix(line, "# TYPE "):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "# TYPE "), " ")
			require.True(t, help[name], "TYPE for %s before its HELP", name)
			require.False(t, typ[name], "TYPE for %s twice", name)
			typ[name] = true
		case line != "":
			name := line[:strings.IndexAny(line, "{ ")]
			require.True(t, typ[name], "sample %q without a TYPE for %s", line, name)
		}
	}

	shape := metricsShape(page)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(metricsGolden), 0o755))
		require.NoError(t, os.WriteFile(metricsGolden, []byte(shape), 0o644))
	}
	golden, err := os.ReadFile(metricsGolden)
	require.NoError(t, err, "no %s: run go test ./cmd/dicomgate -run TestServeMetricsGolden -update", metricsGolden)
	require.Empty(t, lineDiff(string(golden), shape),
		"the exposed metrics changed (- in %s only, + exposed only: a series, a label set, a TYPE or a HELP); if intended, regenerate with go test ./cmd/dicomgate -run TestServeMetricsGolden -update and document the change", metricsGolden)
	require.Equal(t, string(golden), shape, "same lines, another order")
}

// lineDiff lists the lines only in want ("- ") or only in got ("+ ").
func lineDiff(want, got string) []string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var out []string
	for l, n := range count {
		for ; n > 0; n-- {
			out = append(out, "- "+l)
		}
		for ; n < 0; n++ {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return out
}
