package filtertable

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/sdk/rejectwire"
)

// Run drives every case of the table through r, one subtest per case; a
// failing subtest lists every difference of its case at once.
func Run(t *testing.T, r Runner) {
	t.Helper()
	caps, err := LoadCaptures()
	require.NoError(t, err)
	for _, c := range Cases(caps) {
		t.Run(c.Name, func(t *testing.T) { runCase(t, r, c) })
	}
}

// diffs collects every difference between what a runner observed and what
// a case wants, so that one run reports all of them; runCase requires that
// there are none once the whole case has run.
type diffs []string

func (d *diffs) addf(format string, args ...any) { *d = append(*d, fmt.Sprintf(format, args...)) }

func runCase(t *testing.T, r Runner, c Case) {
	if c.Source != "" {
		t.Logf("source: %s", c.Source)
	}
	err := r.Configure([]byte(c.Config), c.Listener)
	if c.ConfigRejected {
		require.Error(t, err, "Configure(%s) succeeded; want the plugin to reject the configuration", c.Config)
	} else {
		require.NoError(t, err, "Configure(%s)", c.Config)
	}
	var d diffs
	for i, cs := range c.Conns {
		before := len(AuditLines(r.Logs(LevelInfo)))
		warnBefore, errBefore := len(r.Logs(LevelWarn)), len(r.Logs(LevelError))
		require.Equal(t, cs.Props.MTLS, cs.Props.SHA256 != "", "conn %d: ConnProps MTLS %v with SHA256 %q: Envoy reports a peer certificate digest exactly when a client certificate was presented (connection.mtls); set both or neither", i, cs.Props.MTLS, cs.Props.SHA256)
		conn, err := r.NewConn(cs.Props)
		require.NoError(t, err, "conn %d: NewConn", i)
		for j, s := range cs.Steps {
			switch {
			case s.Advance > 0:
				r.Advance(s.Advance)
			case s.ClientClose:
				conn.ClientClose()
			default:
				conn.Data(s.Data, s.EOS)
			}
			if s.Check != nil {
				checkObserved(&d, "conn "+itoa(i)+" after step "+itoa(j), conn.Observe(), *s.Check)
			}
		}
		checkObserved(&d, "conn "+itoa(i), conn.Observe(), cs.Want)
		lines := AuditLines(r.Logs(LevelInfo))[before:]
		if cs.Want.Audit == nil {
			if len(lines) != 0 {
				d.addf("conn %d: audit lines %q; want none", i, lines)
			}
			continue
		}
		if len(lines) != 1 {
			d.addf("conn %d: %d audit lines %q; want exactly 1", i, len(lines), lines)
			continue
		}
		checkAudit(&d, i, lines[0], cs.Want)
		if cs.Want.Preamble != nil {
			checkPreambleConn(&d, i, lines[0], conn.Observe().Forwarded, cs.Want.Preamble)
		}
		diag := append(append([]string(nil), r.Logs(LevelWarn)[warnBefore:]...), r.Logs(LevelError)[errBefore:]...)
		checkLogsJoinAudit(&d, i, lines[0], diag)
	}
	for series, want := range c.Metrics {
		got, ok := r.Metric(series)
		if !ok {
			d.addf("metric %s is not defined; want %d", series, want)
		} else if got != want {
			d.addf("metric %s = %d; want %d", series, got, want)
		}
	}
	for _, series := range c.Undefined {
		if v, ok := r.Metric(series); ok {
			d.addf("metric %s is defined (value %d); want it undefined", series, v)
		}
	}
	errs := r.Logs(LevelError)
	for _, sub := range c.ErrorLogs {
		found := false
		for _, l := range errs {
			if strings.Contains(l, sub) {
				found = true
				break
			}
		}
		if !found {
			d.addf("no error log line contains %q; error lines: %q", sub, errs)
		}
	}
	for _, sub := range c.NoErrorLogs {
		for _, l := range errs {
			if strings.Contains(l, sub) {
				d.addf("error log line %q contains %q", l, sub)
			}
		}
	}
	require.Empty(t, strings.Join(d, "\n"), "%d differences from the table", len(d))
}

func checkObserved(d *diffs, what string, got Observed, want Want) {
	if got.Closed != want.Closed {
		d.addf("%s: closed = %v; want %v", what, got.Closed, want.Closed)
	}
	if got.UpstreamConnect != want.UpstreamConnect {
		d.addf("%s: tcp_proxy connected upstream = %v; want %v", what, got.UpstreamConnect, want.UpstreamConnect)
	} else if want.UpstreamConnect && got.Cluster != want.Cluster {
		d.addf("%s: cluster = %q; want %q", what, got.Cluster, want.Cluster)
	}
	if want.Preamble != nil {
		if _, err := checkPreamble(got.Forwarded, want.Preamble); err != nil {
			d.addf("%s: %v", what, err)
		}
		if len(got.Forwarded) >= rejectwire.Size {
			got.Forwarded = got.Forwarded[rejectwire.Size:]
		}
	}
	if !bytes.Equal(got.Forwarded, want.Forwarded) {
		d.addf("%s: forwarded upstream %d bytes; want %d bytes%s", what, len(got.Forwarded), len(want.Forwarded), firstDiff(got.Forwarded, want.Forwarded))
	}
	for k, v := range want.Properties {
		if g, ok := got.Properties[k]; !ok {
			d.addf("%s: property %s not set; want %q", what, k, v)
		} else if g != v {
			d.addf("%s: property %s = %q; want %q", what, k, g, v)
		}
	}
}

func firstDiff(a, b []byte) string {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return " (first difference at offset " + itoa(i) + ")"
		}
	}
	return ""
}

func checkAudit(d *diffs, i int, line string, want Want) {
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		d.addf("conn %d: audit line is not JSON: %v: %s", i, err, line)
		return
	}
	for k, v := range want.Audit {
		g, ok := got[k]
		if !ok {
			d.addf("conn %d: audit field %q missing in %s", i, k, line)
			continue
		}
		if !reflect.DeepEqual(g, roundTrip(v)) {
			d.addf("conn %d: audit field %q = %#v; want %#v (line %s)", i, k, g, v, line)
		}
	}
	for _, k := range want.AuditHas {
		if _, ok := got[k]; !ok {
			d.addf("conn %d: audit field %q missing in %s", i, k, line)
		}
	}
	for _, k := range want.AuditLacks {
		if v, ok := got[k]; ok {
			d.addf("conn %d: audit field %q = %#v; want it absent (line %s)", i, k, v, line)
		}
	}
}

func roundTrip(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return v
	}
	return out
}

// AuditLines returns the lines of logs that are audit records: JSON objects
// with a "decision" field.
func AuditLines(logs []string) []string {
	var out []string
	for _, l := range logs {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(l), &m) != nil {
			continue
		}
		if _, ok := m["decision"]; ok {
			out = append(out, l)
		}
	}
	return out
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	if i == 0 {
		return "0"
	}
	neg := i < 0
	if neg {
		i = -i
	}
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	if neg {
		n--
		b[n] = '-'
	}
	return string(b[n:])
}

// checkLogsJoinAudit: every warning and error line about the connection
// ("dicomgate: connection N: …") names the connection by the audit line's
// "conn", so that an operator can join the two.
func checkLogsJoinAudit(d *diffs, i int, audit string, diag []string) {
	var a struct {
		Conn *uint64 `json:"conn"`
	}
	if err := json.Unmarshal([]byte(audit), &a); err != nil || a.Conn == nil {
		d.addf("conn %d: audit line without a numeric conn: %s", i, audit)
		return
	}
	const prefix = "dicomgate: connection "
	for _, l := range diag {
		at := strings.Index(l, prefix)
		if at < 0 {
			continue
		}
		rest := l[at+len(prefix):]
		end := strings.IndexByte(rest, ':')
		if end < 0 || rest[:end] != itoa(int(*a.Conn)) {
			d.addf("conn %d: log line %q does not name the audit line's conn %d", i, l, *a.Conn)
		}
	}
}

// checkPreamble verifies that fwd starts with a preamble signed with
// want.Key carrying want's result/source/reason (the timestamp is checked
// against itself: the runners' clocks are their own).
func checkPreamble(fwd []byte, want *Preamble) (rejectwire.Preamble, error) {
	if len(fwd) < rejectwire.Size {
		return rejectwire.Preamble{}, fmt.Errorf("forwarded %d bytes upstream; want a %d-byte reject preamble first", len(fwd), rejectwire.Size)
	}
	k, err := rejectwire.NewKey(want.Key)
	if err != nil {
		return rejectwire.Preamble{}, fmt.Errorf("the case's preamble key: %v", err)
	}
	ts := int64(binary.BigEndian.Uint64(fwd[16:24]))
	p, err := rejectwire.Verify(fwd, []*rejectwire.Key{k}, ts, 0)
	if err != nil {
		return p, fmt.Errorf("reject preamble: %v", err)
	}
	if p.Result != want.Result || p.Source != want.Source || p.Reason != want.Reason {
		return p, fmt.Errorf("reject preamble result/source/reason %d/%d/%d; want %d/%d/%d",
			p.Result, p.Source, p.Reason, want.Result, want.Source, want.Reason)
	}
	if p.Time <= 0 {
		return p, fmt.Errorf("reject preamble timestamp %d; want the decision's wall-clock time", p.Time)
	}
	return p, nil
}

// checkPreambleConn: the preamble names the connection the audit line
// names.
func checkPreambleConn(d *diffs, i int, audit string, fwd []byte, want *Preamble) {
	p, err := checkPreamble(fwd, want)
	if err != nil {
		return // reported by checkObserved
	}
	var a struct {
		Conn uint64 `json:"conn"`
	}
	if err := json.Unmarshal([]byte(audit), &a); err != nil {
		d.addf("conn %d: audit line: %v", i, err)
		return
	}
	if p.ConnID != a.Conn {
		d.addf("conn %d: reject preamble names connection %d; the audit line says %d", i, p.ConnID, a.Conn)
	}
}
