package gateway

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/wasm/host"
)

// closeReasonRows returns the reasons listed in the Markdown table under the
// heading that contains "Close reasons" (rows starting "| `reason` |").
func closeReasonRows(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var rows []string
	in := false
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			in = strings.Contains(line, "Close reasons")
			continue
		}
		if m := row.FindStringSubmatch(line); in && m != nil {
			rows = append(rows, m[1])
		}
	}
	require.NotEmpty(t, rows, "%s: no table of close reasons under a heading with \"Close reasons\"", file)
	return rows
}

// Every close reason is documented, once, in the gateway's README and in the
// operator's troubleshooting page, and neither lists a reason the gateway
// does not have.
func TestCloseReasonsDocumented(t *testing.T) {
	var want []string
	for _, r := range Reasons {
		want = append(want, string(r))
	}
	for _, file := range []string{"README.md", filepath.Join("..", "docs", "troubleshooting.md")} {
		require.ElementsMatch(t, want, closeReasonRows(t, file), "%s: the close reasons table must list exactly gateway.Reasons", file)
	}
}

// Every close reason wasm/host can hand to Transport.CloseDownstream maps to
// one of the gateway's own reasons (not "other"), so a new reason in the host
// fails here until it is given a name and documented.
func TestHostCloseReasonsMapped(t *testing.T) {
	lit := regexp.MustCompile(`(?:closeDownstreamLocal\(|reason = )"([^"]+)"`)
	found := map[string]bool{}
	// The host's sources, its internal packages included.
	err := filepath.WalkDir(filepath.Join("..", "wasm", "host"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
			found[m[1]] = true
		}
		return nil
	})
	require.NoError(t, err)
	// The ones known when this test was written must still be found: a
	// refactoring that hides them from the pattern must update the pattern.
	for _, r := range []string{"upstream_closed", "NoRouteFound", "wasm_fail_stream", "wasm_downstream_close", "wasm_upstream_close", "upstream_connect_failed"} {
		require.True(t, found[r], "wasm/host no longer passes %q as a literal: update this test's pattern", r)
	}
	for r := range found {
		got, _ := parseCloseReason(r)
		require.NotEqual(t, CloseOther, got, "wasm/host closes with %q: map it in hostCloseReasons and document it", r)
	}
}

func TestParseCloseReason(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   CloseReason
		detail string
	}{
		{"upstream_connect_failed: cluster rejector endpoint 127.0.0.1:1: connection refused", CloseUpstreamConnectFailed, "cluster rejector endpoint 127.0.0.1:1: connection refused"},
		{`unknown_cluster: cluster "x" is not configured`, CloseUnknownCluster, `cluster "x" is not configured`},
		{"NoRouteFound", CloseNoRoute, ""},
		{"wasm_downstream_close", CloseFilterClosed, ""},
		{"upstream_closed", CloseUpstreamClosed, ""},
		{"other", CloseOther, `unknown close reason "other"`},
		{"teapot: short and stout", CloseOther, `unknown close reason "teapot: short and stout"`},
	} {
		r, d := parseCloseReason(tc.in)
		require.Equal(t, tc.want, r, tc.in)
		require.Equal(t, tc.detail, d, tc.in)
	}
}

// Every reason has its series from the start, at 0: a dashboard tells "never
// happened" from "not exported".
func TestDownstreamClosesExportedAtZero(t *testing.T) {
	g, err := New(Config{NewFilter: func(host.ConnInfo, host.TCPProxyConfig, host.Transport) Filter { return filterFuncs{} }})
	require.NoError(t, err)
	var sb strings.Builder
	require.NoError(t, g.WritePrometheus(&sb))
	for _, r := range Reasons {
		require.Contains(t, sb.String(), `dicomgate_gateway_downstream_closes_total{reason="`+string(r)+`"} 0`+"\n")
	}
	require.Equal(t, len(Reasons), strings.Count(sb.String(), "dicomgate_gateway_downstream_closes_total{"))
}
