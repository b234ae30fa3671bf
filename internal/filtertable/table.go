package filtertable

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Case is one behaviour of the filter: a plugin configuration, the
// connections driven through it, and what Envoy must show afterwards.
type Case struct {
	// Name is the subtest name.
	Name string
	// Source names the Envoy / proxy-wasm source the behaviour comes from.
	Source string
	// Config is the plugin configuration (policy JSON).
	Config string
	// Listener is the filter chain (zero value: tcp_proxy with early data).
	Listener Listener
	// ConfigRejected expects Configure to fail (proxy_on_configure false).
	ConfigRejected bool
	// Conns are driven one after the other.
	Conns []ConnScript
	// Metrics maps Prometheus series to their value after all connections;
	// a listed series must be defined even when its value is 0.
	Metrics map[string]uint64
	// Undefined are series the plugin must not define (bounded cardinality:
	// one decision series per rule, for the action it enforces).
	Undefined []string
	// ErrorLogs are substrings each of which must occur in some error-level
	// log line of the case.
	ErrorLogs []string
	// NoErrorLogs are substrings no error-level log line of the case may
	// contain.
	NoErrorLogs []string
}

// Preamble is the reject preamble a connection must start with upstream.
type Preamble struct {
	// Key is the policy's rejectKey.
	Key string
	// Result, Source and Reason are the A-ASSOCIATE-RJ fields.
	Result, Source, Reason byte
}

// ConnScript is one downstream connection of a Case.
type ConnScript struct {
	// Props are the connection's properties.
	Props ConnProps
	// Steps run in order.
	Steps []Step
	// Want is checked after the last step.
	Want Want
}

// Step is one event: bytes from the client, or time passing.
type Step struct {
	// Data is appended to the read buffer (may be empty with EOS).
	Data []byte
	// EOS is the client's half-close.
	EOS bool
	// Advance, when non-zero, moves the clock and runs the tick instead of
	// delivering data.
	Advance time.Duration
	// ClientClose, when set, closes the connection from the client side
	// instead of delivering data.
	ClientClose bool
	// Check, when set, is compared with the connection after this step
	// (Audit is ignored there).
	Check *Want
}

// Want is the expected Envoy-visible outcome of a connection.
type Want struct {
	// Closed: the filter closed the client connection.
	Closed bool
	// UpstreamConnect: tcp_proxy picked a route (and connected upstream).
	UpstreamConnect bool
	// Cluster is the cluster tcp_proxy picked (only checked when
	// UpstreamConnect is true).
	Cluster string
	// Forwarded is exactly what reached the upstream (nil = nothing); with
	// Preamble set, what followed the preamble.
	Forwarded []byte
	// Preamble, when set, requires that the upstream first received a reject
	// preamble (sdk/rejectwire) signed with its Key, carrying its
	// result/source/reason and the audit line's conn.
	Preamble *Preamble
	// Properties must all be set to these values (other properties may
	// exist).
	Properties map[string]string
	// Audit, when non-nil, requires exactly one new audit line (a JSON
	// object logged at info level) for the connection whose fields include
	// these (values compared after a JSON round trip). A nil Audit requires
	// that the connection logged no audit line.
	Audit map[string]any
	// AuditHas lists further fields that must be present with any value.
	AuditHas []string
	// AuditLacks lists fields the audit line must not carry.
	AuditLacks []string
}

// Captures are the real dcmtk/Orthanc captures the table uses, read from
// sdk/pdu/testdata (NAME.c2s.bin = every byte the requester sent).
type Captures map[string][]byte

// captureNames are the captures the table needs.
var captureNames = []string{
	"echo_default", "echo_custom_ae", "echo_ppc128_pts38", "find_study", "store_default",
	"uid_username", "rj_called_ae", "rj_calling_ae", "tls_client_plain_server",
	"echo_ppc3_pts4", "store_multi", "uid_jwt", "uid_username_password", "move_study", "store_abort_during",
	"orthanc_echo", "orthanc_store", "orthanc_scu_store", "plain_client_tls_server",
}

// LoadCaptures reads the captures from the module's sdk/pdu/testdata,
// locating the module root from the working directory.
func LoadCaptures() (Captures, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	out := Captures{}
	for _, n := range captureNames {
		b, err := os.ReadFile(filepath.Join(root, "sdk", "pdu", "testdata", n+".c2s.bin"))
		if err != nil {
			return nil, fmt.Errorf("filtertable: capture %s: %w", n, err)
		}
		out[n] = b
	}
	return out, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/dicomgate/dicomgate\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("filtertable: no go.mod of github.com/dicomgate/dicomgate above the working directory")
		}
		dir = parent
	}
}

// FirstPDU returns the first PDU of a byte stream (header length field
// honoured; the whole stream when it is shorter).
func FirstPDU(stream []byte) []byte {
	if len(stream) < 6 {
		return stream
	}
	n := 6 + int(binary.BigEndian.Uint32(stream[2:6]))
	if n > len(stream) {
		return stream
	}
	return stream[:n:n]
}

// WithAETitles returns a copy of an A-ASSOCIATE-RQ whose called (offset 10)
// and/or calling (offset 26) AE title fields are replaced by the
// space-padded titles; an empty title leaves the field unchanged.
func WithAETitles(rq []byte, called, calling string) []byte {
	out := append([]byte(nil), rq...)
	put := func(off int, s string) {
		if s == "" {
			return
		}
		f := out[off : off+16]
		for i := range f {
			f[i] = ' '
		}
		copy(f, s)
	}
	put(10, called)
	put(26, calling)
	return out
}

// Chunks splits b into steps of at most n bytes.
func Chunks(b []byte, n int) []Step {
	var out []Step
	for len(b) > 0 {
		k := n
		if k > len(b) {
			k = len(b)
		}
		out = append(out, Step{Data: b[:k:k]})
		b = b[k:]
	}
	return out
}

// WithRepeatedContext returns a copy of an A-ASSOCIATE-RQ whose first
// presentation context item (0x20) is repeated until the RQ proposes n
// contexts, with the PDU length fixed up. Context IDs repeat once n exceeds
// 128: such an RQ cannot be valid (PS3.8 §9.3.2.2: IDs are unique odd numbers).
func WithRepeatedContext(rq []byte, n int) []byte {
	off := 74
	for off+4 <= len(rq) && rq[off] != 0x20 {
		off += 4 + int(binary.BigEndian.Uint16(rq[off+2:off+4]))
	}
	if off+4 > len(rq) {
		return append([]byte(nil), rq...)
	}
	end := off + 4 + int(binary.BigEndian.Uint16(rq[off+2:off+4]))
	item := rq[off:end]
	out := append([]byte(nil), rq[:end]...)
	for i := 1; i < n; i++ {
		out = append(out, item...)
	}
	out = append(out, rq[end:]...)
	binary.BigEndian.PutUint32(out[2:6], uint32(len(out)-6))
	return out
}

// WithRawAETitle returns a copy of an A-ASSOCIATE-RQ whose AE title field
// at off (10 called, 26 calling) holds raw, exactly as given (no padding:
// raw must be 16 bytes), e.g. "CT1\x00SPOOF" followed by spaces.
func WithRawAETitle(rq []byte, off int, raw string) []byte {
	out := append([]byte(nil), rq...)
	copy(out[off:off+16], raw)
	return out
}

// item builds a (sub-)item with a 16-bit length.
func item(typ byte, content ...[]byte) []byte {
	c := cat(content...)
	return cat([]byte{typ, 0, byte(len(c) >> 8), byte(len(c))}, c)
}

// UserIdentityItem is a user identity sub-item 0x58 of the given type with
// a primary and a secondary field.
func UserIdentityItem(typ byte, primary, secondary string) []byte {
	lp := func(s string) []byte { return cat([]byte{byte(len(s) >> 8), byte(len(s))}, []byte(s)) }
	return item(0x58, []byte{typ, 0}, lp(primary), lp(secondary))
}

// WithVariableItems returns a copy of an A-ASSOCIATE-RQ whose variable
// items are rewritten by edit (each item whole, header included; the
// lengths are fixed up).
func WithVariableItems(rq []byte, edit func(items [][]byte) [][]byte) []byte {
	var items [][]byte
	for off := 74; off+4 <= len(rq); {
		end := off + 4 + int(binary.BigEndian.Uint16(rq[off+2:off+4]))
		items = append(items, rq[off:end:end])
		off = end
	}
	out := append([]byte(nil), rq[:74]...)
	for _, it := range edit(items) {
		out = append(out, it...)
	}
	binary.BigEndian.PutUint32(out[2:6], uint32(len(out)-6))
	return out
}

// WithUserInfoSubItems returns a copy of an A-ASSOCIATE-RQ whose user
// information item (0x50) has subs appended.
func WithUserInfoSubItems(rq []byte, subs ...[]byte) []byte {
	return WithVariableItems(rq, func(items [][]byte) [][]byte {
		for i, it := range items {
			if it[0] == 0x50 {
				items[i] = item(0x50, it[4:], cat(subs...))
			}
		}
		return items
	})
}

// WithAbstractSyntax returns a copy of an A-ASSOCIATE-RQ whose first
// presentation context proposes the abstract syntax uid (raw bytes).
func WithAbstractSyntax(rq []byte, uid string) []byte {
	return WithVariableItems(rq, func(items [][]byte) [][]byte {
		for i, it := range items {
			if it[0] != 0x20 {
				continue
			}
			subs := [][]byte{it[4:8]}
			for off := 8; off+4 <= len(it); {
				end := off + 4 + int(binary.BigEndian.Uint16(it[off+2:off+4]))
				if it[off] == 0x30 {
					subs = append(subs, item(0x30, []byte(uid)))
				} else {
					subs = append(subs, it[off:end])
				}
				off = end
			}
			items[i] = item(0x20, subs...)
			break
		}
		return items
	})
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Cluster names used by the table's policies.
const (
	ClusterQR   = "outbound|11112||qr.dicom.svc.cluster.local"
	ClusterPACS = "outbound|104||pacs.dicom.svc.cluster.local"
)

// basePolicy: echo from ECHOSCU to ANY-SCP allowed, QRSCP routed, INTRUDER
// denied with a reason, everything else denied by default.
const basePolicy = `{
  "defaultAction": "deny",
  "defaultRejectReason": "called-ae-not-recognized",
  "rules": [
    {"name": "echo-allow", "match": {"calledAETitles": ["ANY-SCP"], "callingAETitles": ["ECHOSCU"]}, "action": "allow"},
    {"name": "qr-route", "match": {"calledAETitles": ["QRSCP"]}, "action": "route", "cluster": "` + ClusterQR + `"},
    {"name": "block-intruder", "match": {"callingAETitles": ["INTRUDER"]}, "action": "deny", "rejectReason": "calling-ae-not-recognized"}
  ]%s
}`

func policy(extra string) string { return fmt.Sprintf(basePolicy, extra) }

// Cases builds the table from the captures.
func Cases(c Captures) []Case {
	echo := c["echo_default"]
	echoRQ := FirstPDU(echo)
	echoRest := echo[len(echoRQ):]
	find := c["find_study"]

	store := c["store_default"]
	storeRQ := FirstPDU(store)
	uid := c["uid_username"]
	uidRQ := FirstPDU(uid)
	big := c["echo_ppc128_pts38"]
	bigRQ := FirstPDU(big)
	customRQ := FirstPDU(c["echo_custom_ae"])
	rjCalled := FirstPDU(c["rj_called_ae"])
	rjCalling := FirstPDU(c["rj_calling_ae"])
	tlsHello := c["tls_client_plain_server"]

	src := ConnProps{Source: "10.1.2.3:40000"}
	allowEcho := map[string]any{"decision": "allow", "rule": "echo-allow", "calling_ae": "ECHOSCU", "called_ae": "ANY-SCP",
		"source": "10.1.2.3:40000", "sop_classes": 1, "dry_run": false, "cluster": ""}
	auditHas := []string{"time", "conn", "latency_us"}
	zeroSeries := func(m map[string]uint64) map[string]uint64 {
		// every series is defined at configure time
		for _, r := range Reasons {
			if _, ok := m[denied(r)]; !ok {
				m[denied(r)] = 0
			}
		}
		return m
	}
	// The parser-differential bypasses (issue 11): fields a PACS reads
	// differently from the filter are refused as malformed.
	spoofedCT1 := WithRawAETitle(echoRQ, 26, "CT1\x00SPOOF       ")
	ct2 := WithAETitles(echoRQ, "", "CT2")
	echoJunk := WithAbstractSyntax(echoRQ, "1.2.840.10008.1.1\x00junk")
	aliceMallory := WithUserInfoSubItems(echoRQ, UserIdentityItem(1, "alice", ""), UserIdentityItem(1, "mallory", ""))
	twoUserInfo := WithVariableItems(WithUserInfoSubItems(echoRQ, UserIdentityItem(1, "alice", "")), func(items [][]byte) [][]byte {
		return append(items, item(0x50, UserIdentityItem(1, "mallory", "")))
	})
	hiddenMallory := WithUserInfoSubItems(echoRQ, UserIdentityItem(1, "alice", string(UserIdentityItem(1, "mallory", ""))))
	nulUsername := WithUserInfoSubItems(echoRQ, UserIdentityItem(2, "mallory\x00", "pw"))
	alice := WithUserInfoSubItems(echoRQ, UserIdentityItem(1, "alice", ""))
	mallory := WithUserInfoSubItems(echoRQ, UserIdentityItem(1, "mallory", ""))
	ctPolicy := `{"defaultAction": "deny", "rules": [
	  {"name": "ct1-cert", "match": {"callingAETitles": ["CT1"], "peerURISANs": ["spiffe://hospital/ct1"]}, "action": "route", "cluster": "` + ClusterPACS + `"},
	  {"name": "ct1-without-cert", "match": {"callingAETitles": ["CT1"]}, "action": "deny"},
	  {"name": "ct-any", "match": {"callingAETitles": ["CT*"]}, "action": "route", "cluster": "` + ClusterQR + `"}]}`
	noEcho := `{"defaultAction": "allow", "rules": [{"name": "no-echo", "match": {"abstractSyntaxes": ["1.2.840.10008.1.1"]}, "action": "deny"}]}`
	noMallory := `{"defaultAction": "allow", "rules": [{"name": "no-mallory", "match": {"userIdentityUsernames": ["mallory"]}, "action": "deny"}]}`
	refused := Want{Closed: true, Audit: map[string]any{"decision": "deny", "reason": "malformed"}}

	malformed := append([]byte(nil), echoRQ...)
	malformed[76], malformed[77] = 0xff, 0xff // application context item length runs past the PDU
	shortRQ := cat([]byte{0x01, 0, 0, 0, 0, 16}, make([]byte, 16))

	rewriteStore := `{"defaultAction": "deny", "rules": [
	  {"name": "store-rewrite", "match": {"callingAETitles": ["STORESCU"]}, "action": "allow", "rewriteCalledAETitle": "PACS"}]}`
	rewriteBoth := `{"defaultAction": "deny", "rules": [
	  {"name": "uid-both", "match": {"callingAETitles": ["STORESCU"]}, "action": "route", "cluster": "` + ClusterPACS + `",
	   "rewriteCalledAETitle": "PACS_MAIN", "rewriteCallingAETitle": "GATEWAY01"}]}`
	mtlsPolicy := `{"defaultAction": "deny", "rules": [
	  {"name": "modality", "match": {"peerURISANs": ["spiffe://cluster.local/ns/dicom/sa/modality"]}, "action": "allow"}]}`
	cidrPolicy := `{"defaultAction": "deny", "rules": [
	  {"name": "lan", "match": {"sourceCIDRs": ["10.1.0.0/16"]}, "action": "allow"}]}`

	var every []ConnScript
	for _, n := range captureNames {
		if n == "tls_client_plain_server" {
			continue
		}
		every = append(every, ConnScript{Props: src, Steps: Chunks(c[n], 1000),
			Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: c[n], Audit: map[string]any{"decision": "allow", "rule": "all"}}})
	}

	return append([]Case{
		{
			Name:    "allow/every_capture_passes_unchanged",
			Source:  "real dcmtk/Orthanc traffic: the RQ and everything after it reach the upstream byte for byte",
			Config:  `{"defaultAction": "deny", "rules": [{"name": "all", "action": "allow"}]}`,
			Conns:   every,
			Metrics: map[string]uint64{MetricAssociations: uint64(len(every)), decisions("allow", "all"): uint64(len(every))},
		},
		{
			Name:   "allow/echo_default",
			Source: "tcp_proxy.cc Filter::onNewConnection picks the configured cluster; filter_manager_impl.cc onContinueReading",
			Config: policy(""),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: echoRQ}, {Data: echoRest}},
				Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: echo,
					Properties: map[string]string{"dicom.calling_ae": "ECHOSCU", "dicom.called_ae": "ANY-SCP", "dicom.decision": "allow", "dicom.rule": "echo-allow"},
					Audit:      allowEcho, AuditHas: auditHas}}},
			Metrics: zeroSeries(map[string]uint64{
				MetricAssociations: 1, decisions("allow", "echo-allow"): 1, decisions("route", "qr-route"): 0,
				decisions("deny", DefaultRule): 0, decisions("deny", "block-intruder"): 0, MetricDryRunDenies: 0,
			}),
			Undefined: []string{decisions("allow", DefaultRule), decisions("deny", "echo-allow"), decisions("allow", "qr-route"), decisions("route", "echo-allow")},
		},
		{
			Name:   "allow/whole_stream_in_one_read",
			Source: "context.cc Context::onData: data_size is the whole read buffer",
			Config: policy(""),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: echo}},
				Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: echo, Audit: allowEcho}}},
		},
		{
			Name:   "allow/byte_at_a_time",
			Source: "context.cc Context::onData re-delivers the growing buffer while the filter pauses",
			Config: policy(""),
			Conns: []ConnScript{{Props: src, Steps: append(Chunks(echoRQ[:len(echoRQ)-1], 1),
				Step{Data: echoRQ[len(echoRQ)-1:], Check: &Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: echoRQ}}),
				Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: echoRQ, Audit: allowEcho}}},
			Metrics: map[string]uint64{MetricAssociations: 1, decisions("allow", "echo-allow"): 1},
		},
		{
			Name:   "allow/paused_until_complete",
			Source: "tcp_proxy.cc: tcp_proxy is not initialised while the filter pauses in onNewConnection/onData",
			Config: policy(""),
			Conns: []ConnScript{{Props: src, Steps: []Step{
				{Data: echoRQ[:100], Check: &Want{}},
				{Data: echoRQ[100:], Check: &Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: echoRQ}},
			}, Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: echoRQ, Audit: allowEcho}}},
		},
		{
			Name:   "allow/large_rq_129KB_in_chunks",
			Source: "capture echo_ppc128_pts38: a 129,697-byte A-ASSOCIATE-RQ (128 presentation contexts)",
			Config: `{"defaultAction": "deny", "rules": [{"name": "echo", "match": {"callingAETitles": ["ECHOSCU"]}, "action": "allow"}]}`,
			Conns: []ConnScript{{Props: src, Steps: Chunks(bigRQ, 16384),
				Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: bigRQ,
					Audit: map[string]any{"decision": "allow", "rule": "echo", "sop_classes": 1, "presentation_contexts": 128}}}},
		},
		{
			Name:   "route/find_study",
			Source: "tcp_proxy.cc Config::getRegularRouteFromEntries: filter state envoy.tcp_proxy.cluster wins; foreign.cc set_envoy_filter_state",
			Config: policy(""),
			Conns: []ConnScript{{Props: src, Steps: Chunks(find, 64),
				Want: Want{UpstreamConnect: true, Cluster: ClusterQR, Forwarded: find,
					Properties: map[string]string{"dicom.decision": "route", "dicom.rule": "qr-route", "dicom.called_ae": "QRSCP", "dicom.calling_ae": "FINDSCU"},
					Audit:      map[string]any{"decision": "route", "rule": "qr-route", "cluster": ClusterQR, "called_ae": "QRSCP", "calling_ae": "FINDSCU"}}}},
			Metrics: map[string]uint64{decisions("route", "qr-route"): 1, decisions("allow", "echo-allow"): 0},
		},
		{
			Name:   "deny/default_action",
			Source: "context.cc Context::closeStream: close(FlushWrite); nothing reaches the upstream",
			Config: policy(""),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: rjCalled}},
				Want: Want{Closed: true, Properties: map[string]string{"dicom.decision": "deny", "dicom.called_ae": "NOSUCHAE"},
					Audit: map[string]any{"decision": "deny", "rule": "default", "reason": "policy", "reject_reason": "called-ae-not-recognized", "called_ae": "NOSUCHAE"}}}},
			Metrics: map[string]uint64{denied("policy"): 1, decisions("deny", DefaultRule): 1, MetricAssociations: 1},
		},
		{
			Name:   "deny/rule_with_reason",
			Source: "context.cc Context::closeStream",
			Config: policy(""),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: rjCalling}},
				Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "rule": "block-intruder", "reject_reason": "calling-ae-not-recognized", "calling_ae": "INTRUDER"}}}},
			Metrics: map[string]uint64{denied("policy"): 1, decisions("deny", "block-intruder"): 1},
		},
		{
			Name:   "rewrite/called_ae",
			Source: "context.cc Buffer::copyFrom: set_buffer_bytes(0, N) drains N bytes then prepends",
			Config: rewriteStore,
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: storeRQ}, {Data: store[len(storeRQ):]}},
				Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: cat(WithAETitles(storeRQ, "PACS", ""), store[len(storeRQ):]),
					Properties: map[string]string{"dicom.called_ae": "ANY-SCP", "dicom.rule": "store-rewrite"},
					Audit:      map[string]any{"decision": "allow", "rule": "store-rewrite", "called_ae": "ANY-SCP", "rewrite_called_ae": "PACS", "sop_classes": 64, "presentation_contexts": 128}}}},
		},
		{
			Name:   "rewrite/both_titles_with_route_and_trailing_pdata",
			Source: "context.cc Buffer::copyFrom (only offset 0 can be replaced); bytes after the RQ in the same read pass unchanged",
			Config: rewriteBoth,
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: uid}},
				Want: Want{UpstreamConnect: true, Cluster: ClusterPACS, Forwarded: cat(WithAETitles(uidRQ, "PACS_MAIN", "GATEWAY01"), uid[len(uidRQ):]),
					Audit: map[string]any{"decision": "route", "rule": "uid-both", "rewrite_called_ae": "PACS_MAIN", "rewrite_calling_ae": "GATEWAY01", "calling_ae": "STORESCU"}}}},
		},
		{
			Name:   "rewrite/full_width_titles",
			Source: "the 16th byte of each AE field (offsets 25 and 41) is part of the replaced prefix",
			Config: `{"defaultAction": "deny", "rules": [
			  {"name": "custom", "match": {"callingAETitles": ["CALLING_AE_16CHR"]}, "action": "allow", "rewriteCallingAETitle": "GW"},
			  {"name": "wide", "match": {"calledAETitles": ["ANY-SCP"]}, "action": "allow", "rewriteCalledAETitle": "ABCDEFGHIJKLMNOP"}]}`,
			Conns: []ConnScript{
				{Props: src, Steps: []Step{{Data: customRQ}},
					Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: WithAETitles(customRQ, "", "GW"),
						Audit: map[string]any{"rule": "custom", "calling_ae": "CALLING_AE_16CHR", "called_ae": "STORE SCP", "rewrite_calling_ae": "GW"}}},
				{Props: src, Steps: []Step{{Data: echoRQ}},
					Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: WithAETitles(echoRQ, "ABCDEFGHIJKLMNOP", ""),
						Audit: map[string]any{"rule": "wide", "rewrite_called_ae": "ABCDEFGHIJKLMNOP"}}},
			},
		},
		{
			Name:   "dry_run/would_deny_is_allowed",
			Source: "policy mode dry-run: report, never enforce",
			Config: policy(`, "mode": "dry-run"`),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: rjCalled}},
				Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: rjCalled,
					Audit: map[string]any{"decision": "deny", "dry_run": true, "reject_reason": "called-ae-not-recognized"}}}},
			Metrics:   map[string]uint64{MetricDryRunDenies: 1, denied("policy"): 0, decisions("allow", DefaultRule): 1, decisions("allow", "echo-allow"): 0},
			Undefined: []string{decisions("deny", DefaultRule), decisions("route", "qr-route")},
		},
		{
			Name:   "dry_run/route_and_rewrite_not_applied",
			Source: "policy mode dry-run: no filter state, no buffer change",
			Config: `{"mode": "dry-run", "defaultAction": "deny", "rules": [
			  {"name": "uid-both", "match": {"callingAETitles": ["STORESCU"]}, "action": "route", "cluster": "` + ClusterPACS + `", "rewriteCalledAETitle": "PACS_MAIN"}]}`,
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: uidRQ}},
				Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: uidRQ,
					Audit: map[string]any{"decision": "route", "dry_run": true, "cluster": ClusterPACS}}}},
			Metrics:   map[string]uint64{MetricDryRunDenies: 0, decisions("allow", "uid-both"): 1},
			Undefined: []string{decisions("route", "uid-both")},
		},
		{
			Name:   "early/tls_record_on_plain_port",
			Source: "first byte 0x16 (TLS handshake record) is rejected without waiting for more",
			Config: policy(""),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: tlsHello[:1]}},
				Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "reason": "tls_on_plain_port", "source": "10.1.2.3:40000", "called_ae": ""}}}},
			Metrics: map[string]uint64{denied("tls_on_plain_port"): 1, denied("not_dicom"): 0},
		},
		{
			Name:   "early/tls_full_client_hello",
			Config: policy(""),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: tlsHello}},
				Want: Want{Closed: true, Audit: map[string]any{"reason": "tls_on_plain_port"}}}},
			Metrics: map[string]uint64{denied("tls_on_plain_port"): 1},
		},
		{
			Name:   "early/http_request",
			Source: "first byte 'G' is not an A-ASSOCIATE-RQ",
			Config: policy(""),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: []byte("G")}},
				Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "reason": "not_dicom"}}}},
			Metrics: map[string]uint64{denied("not_dicom"): 1},
		},
		{
			Name:   "early/other_pdu_first",
			Source: "a P-DATA-TF (0x04) where the A-ASSOCIATE-RQ must come first",
			Config: policy(""),
			Conns: []ConnScript{
				{Props: src, Steps: []Step{{Data: []byte{0x04, 0x00, 0x00}}}, Want: Want{Closed: true, Audit: map[string]any{"reason": "not_dicom"}}},
				{Props: src, Steps: []Step{{Data: []byte{0xff}}}, Want: Want{Closed: true, Audit: map[string]any{"reason": "not_dicom"}}},
			},
			Metrics: map[string]uint64{denied("not_dicom"): 2, MetricAssociations: 2},
		},
		{
			Name:   "early/too_large_from_header",
			Source: "declared length above maxAssociateRQBytes is rejected before buffering",
			Config: policy(`, "maxAssociateRQBytes": 65536`),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: bigRQ[:6]}},
				Want: Want{Closed: true, Audit: map[string]any{"reason": "too_large"}}}},
			Metrics: map[string]uint64{denied("too_large"): 1},
		},
		{
			Name:   "early/max_rq_bytes_counts_the_header",
			Source: "maxAssociateRQBytes is the whole PDU, header included",
			Config: `{"defaultAction": "allow", "maxAssociateRQBytes": 1024}`,
			Conns: []ConnScript{
				{Props: src, Steps: []Step{{Data: []byte{0x01, 0, 0, 0, 0x03, 0xfb}}}, Want: Want{Closed: true, Audit: map[string]any{"reason": "too_large"}}},
			},
			Metrics: map[string]uint64{denied("too_large"): 1},
		},
		{
			Name:   "malformed/item_length",
			Source: "sdk/pdu decoder: the application context item runs past the PDU",
			Config: policy(""),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: malformed}},
				Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "reason": "malformed"}}}},
			Metrics: map[string]uint64{denied("malformed"): 1},
		},
		{
			Name:   "malformed/more_than_128_presentation_contexts",
			Source: "PS3.8 §9.3.2.2: context IDs are unique odd integers 1-255, so at most 128 contexts; more is hostile (every rule would scan them)",
			Config: policy(""),
			Conns: []ConnScript{
				{Props: src, Steps: []Step{{Data: WithRepeatedContext(echoRQ, 129)}},
					Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "reason": "malformed"}}},
				{Props: src, Steps: []Step{{Data: WithRepeatedContext(echoRQ, 128)}},
					Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: WithRepeatedContext(echoRQ, 128),
						Audit: map[string]any{"decision": "allow", "rule": "echo-allow", "presentation_contexts": float64(128)}}},
			},
			Metrics: map[string]uint64{denied("malformed"): 1, decisions("allow", "echo-allow"): 1},
		},
		{
			Name:   "ambiguous/calling_ae_with_nul_inside_is_refused",
			Source: "dcmtk dulparse.cc parseAssociate: strncpy of the AE title field stops at the first NUL, so the PACS would see CT1 while the policy sees CT1\\0SPOOF",
			Config: ctPolicy,
			Conns: []ConnScript{
				{Props: src, Steps: []Step{{Data: spoofedCT1}}, Want: refused},
				{Props: src, Steps: []Step{{Data: ct2}},
					Want: Want{UpstreamConnect: true, Cluster: ClusterQR, Forwarded: ct2, Audit: map[string]any{"decision": "route", "rule": "ct-any", "calling_ae": "CT2"}}},
			},
			Metrics: map[string]uint64{denied("malformed"): 1, decisions("route", "ct-any"): 1, decisions("route", "ct1-cert"): 0},
		},
		{
			Name:   "ambiguous/abstract_syntax_with_nul_and_junk_is_refused",
			Source: "dcmtk dulfsm.cc: abstract syntaxes are copied with strlcpy, so the PACS would see 1.2.840.10008.1.1 while the policy sees 1.2.840.10008.1.1\\0junk",
			Config: noEcho,
			Conns: []ConnScript{
				{Props: src, Steps: []Step{{Data: echoJunk}}, Want: refused},
				{Props: src, Steps: []Step{{Data: echoRQ}}, Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "rule": "no-echo", "reason": "policy"}}},
			},
			Metrics: map[string]uint64{denied("malformed"): 1, denied("policy"): 1, decisions("allow", DefaultRule): 0},
		},
		{
			Name:   "ambiguous/second_user_identity_is_refused",
			Source: "dcmtk dulparse.cc parseUserInfo keeps the last user identity sub-item (and the last user information item), pynetdicom the first",
			Config: noMallory,
			Conns: []ConnScript{
				{Props: src, Steps: []Step{{Data: aliceMallory}}, Want: refused},
				{Props: src, Steps: []Step{{Data: twoUserInfo}}, Want: refused},
				{Props: src, Steps: []Step{{Data: hiddenMallory}}, Want: refused},
				{Props: src, Steps: []Step{{Data: nulUsername}}, Want: refused},
				{Props: src, Steps: []Step{{Data: mallory}}, Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "rule": "no-mallory", "reason": "policy"}}},
				{Props: src, Steps: []Step{{Data: alice}},
					Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: alice, Audit: map[string]any{"decision": "allow", "rule": "default"}}},
			},
			Metrics: map[string]uint64{denied("malformed"): 4, denied("policy"): 1, decisions("allow", DefaultRule): 1},
		},
		{
			Name:   "malformed/rq_shorter_than_fixed_part",
			Config: policy(""),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: shortRQ}},
				Want: Want{Closed: true, Audit: map[string]any{"reason": "malformed"}}}},
			Metrics: map[string]uint64{denied("malformed"): 1},
		},
		{
			Name:   "eof/before_complete_rq",
			Source: "filter_manager_impl.cc: onData(end_stream=true) with a partial RQ",
			Config: policy(""),
			Conns: []ConnScript{
				{Props: src, Steps: []Step{{Data: echoRQ[:50]}, {EOS: true}}, Want: Want{Closed: true, Audit: map[string]any{"reason": "eof"}}},
				{Props: src, Steps: []Step{{Data: echoRQ[:3], EOS: true}}, Want: Want{Closed: true, Audit: map[string]any{"reason": "eof"}}},
			},
			Metrics: map[string]uint64{denied("eof"): 2, MetricAssociations: 2},
		},
		{
			Name:    "no_association/client_closes_before_any_byte",
			Source:  "Envoy builds the filter chain at accept (server/active_tcp_listener.cc), so a TCP health check, a port scan or a failed TLS handshake reaches the filter as a close with no data",
			Config:  policy(""),
			Conns:   []ConnScript{{Props: src, Steps: []Step{{ClientClose: true}}, Want: Want{}}},
			Metrics: map[string]uint64{MetricAssociations: 0, denied("eof"): 0},
		},
		{
			Name:    "no_association/half_close_before_any_byte",
			Source:  "filter_manager_impl.cc: onData(end_stream=true) with an empty buffer",
			Config:  policy(""),
			Conns:   []ConnScript{{Props: src, Steps: []Step{{EOS: true}}, Want: Want{Closed: true}}},
			Metrics: map[string]uint64{MetricAssociations: 0, denied("eof"): 0},
		},
		{
			Name:   "eof/client_closes_before_rq",
			Source: "context.cc Context::onEvent(RemoteClose) -> proxy_on_downstream_connection_close before a decision",
			Config: policy(""),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: echoRQ[:30]}, {ClientClose: true}},
				Want: Want{Audit: map[string]any{"decision": "deny", "reason": "eof", "source": "10.1.2.3:40000"}}}},
			Metrics: map[string]uint64{denied("eof"): 1, denied("policy"): 0},
		},
		{
			Name:   "eof/client_closes_after_decision_is_not_counted",
			Config: policy(""),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: echoRQ}, {ClientClose: true}},
				Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: echoRQ, Audit: allowEcho}}},
			Metrics: map[string]uint64{denied("eof"): 0, decisions("allow", "echo-allow"): 1},
		},
		{
			Name:   "timeout/after_decision_stall",
			Source: "wasm.cc Wasm::tickHandler; set_effective_context + close_stream from proxy_on_tick",
			Config: policy(`, "inspectTimeoutMs": 2000`),
			Conns: []ConnScript{{Props: src, Steps: []Step{
				{Data: echoRQ[:10]},
				{Advance: time.Second, Check: &Want{}},
				{Advance: 1500 * time.Millisecond},
			}, Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "reason": "timeout"}}}},
			Metrics:   map[string]uint64{denied("timeout"): 1},
			ErrorLogs: []string{"inspectTimeoutMs"},
		},
		{
			Name:   "timeout/no_data_at_all",
			Source: "Pause in onNewConnection without receive_before_connect never gets data (§2.4): the deadline closes it",
			Config: policy(`, "inspectTimeoutMs": 1000`),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Advance: 600 * time.Millisecond, Check: &Want{}}, {Advance: 600 * time.Millisecond}},
				Want: Want{Closed: true, Audit: map[string]any{"reason": "timeout"}}}},
			Metrics:   map[string]uint64{denied("timeout"): 1, MetricAssociations: 1},
			ErrorLogs: []string{"max_early_data_bytes"},
		},
		{
			Name:   "timeout/decided_connection_is_not_closed",
			Config: policy(`, "inspectTimeoutMs": 1000`),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: echoRQ}, {Advance: 5 * time.Second}, {Data: echoRest}},
				Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: echo, Audit: allowEcho}}},
			Metrics: map[string]uint64{denied("timeout"): 0},
		},
		{
			Name:   "immediate/allow",
			Source: "tcp_proxy.cc onNewConnection runs at once when the filter continues; data paused until the decision",
			Config: `{"upstreamConnect": "immediate", "defaultAction": "deny", "rules": [{"name": "echo", "match": {"callingAETitles": ["ECHOSCU"]}, "action": "allow"}]}`,
			Conns: []ConnScript{{Props: src, Steps: []Step{
				{Data: echoRQ[:20], Check: &Want{UpstreamConnect: true, Cluster: DefaultCluster}},
				{Data: echoRQ[20:]},
			}, Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: echoRQ, Audit: map[string]any{"decision": "allow", "rule": "echo"}}}},
		},
		{
			Name:   "immediate/deny_sends_nothing_upstream",
			Source: "§0.1: the upstream sees a TCP connect but none of the denied client's bytes",
			Config: `{"upstreamConnect": "immediate", "defaultAction": "deny"}`,
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: echoRQ}},
				Want: Want{Closed: true, UpstreamConnect: true, Cluster: DefaultCluster, Audit: map[string]any{"decision": "deny", "reason": "policy"}}}},
		},
		{
			Name:   "immediate/timeout",
			Config: `{"upstreamConnect": "immediate", "defaultAction": "allow", "inspectTimeoutMs": 1000}`,
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: echoRQ[:7]}, {Advance: 1500 * time.Millisecond}},
				Want: Want{Closed: true, UpstreamConnect: true, Cluster: DefaultCluster, Audit: map[string]any{"reason": "timeout"}}}},
			Metrics:   map[string]uint64{denied("timeout"): 1},
			ErrorLogs: []string{"inspectTimeoutMs"},
		},
		{
			Name:     "istio_default/after_decision_stalls_until_the_deadline",
			Source:   "§2.4: Pause in onNewConnection while tcp_proxy disabled reads (no max_early_data_bytes) delivers no data",
			Listener: Listener{NoEarlyData: true},
			Config:   policy(`, "inspectTimeoutMs": 3000`),
			Conns: []ConnScript{{Props: src, Steps: []Step{
				{Data: echoRQ, Check: &Want{}},
				{Advance: 2 * time.Second, Check: &Want{}},
				{Advance: 1500 * time.Millisecond},
			}, Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "reason": "timeout", "called_ae": ""}}}},
			Metrics:   map[string]uint64{denied("timeout"): 1, decisions("allow", "echo-allow"): 0},
			ErrorLogs: []string{"max_early_data_bytes"},
		},
		{
			Name:     "istio_default/immediate_allows",
			Source:   "§0.1: without early data only allow/deny work, with upstreamConnect immediate",
			Listener: Listener{NoEarlyData: true},
			Config:   `{"upstreamConnect": "immediate", "defaultAction": "deny", "rules": [{"name": "echo", "match": {"callingAETitles": ["ECHOSCU"]}, "action": "allow", "rewriteCalledAETitle": "PACS"}]}`,
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: echoRQ[:100]}, {Data: echoRQ[100:]}, {Data: echoRest}},
				Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: cat(WithAETitles(echoRQ, "PACS", ""), echoRest),
					Audit: map[string]any{"decision": "allow", "rule": "echo", "rewrite_called_ae": "PACS"}}}},
		},
		{
			Name:     "istio_default/immediate_denies",
			Listener: Listener{NoEarlyData: true},
			Config:   `{"upstreamConnect": "immediate", "defaultAction": "deny", "rules": [{"name": "echo", "match": {"callingAETitles": ["ECHOSCU"]}, "action": "allow"}]}`,
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: rjCalling}},
				Want: Want{Closed: true, UpstreamConnect: true, Cluster: DefaultCluster, Audit: map[string]any{"decision": "deny", "reason": "policy"}}}},
			Metrics: map[string]uint64{denied("policy"): 1},
		},
		{
			Name:   "idempotent/later_bytes_pass_untouched",
			Source: "§2.5: the same bytes can be re-delivered after a decision; decided => Continue without reading",
			Config: policy(""),
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: echoRQ}, {Data: tlsHello[:64]}, {Data: []byte("GET / HTTP/1.1\r\n")}},
				Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: cat(echoRQ, tlsHello[:64], []byte("GET / HTTP/1.1\r\n")), Audit: allowEcho}}},
			Metrics: map[string]uint64{MetricAssociations: 1, decisions("allow", "echo-allow"): 1, denied("not_dicom"): 0, denied("tls_on_plain_port"): 0},
		},
		{
			Name:   "identity/mtls_uri_san_allows",
			Source: "expr context.cc ConnectionLookup: connection.mtls, connection.uri_san_peer_certificate",
			Config: mtlsPolicy,
			Conns: []ConnScript{
				{Props: ConnProps{Source: "10.9.9.9:1234", MTLS: true, URISAN: "spiffe://cluster.local/ns/dicom/sa/modality", Subject: "CN=modality,O=Hospital", SHA256: "ab12"},
					Steps: []Step{{Data: echoRQ}},
					Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: echoRQ,
						Audit: map[string]any{"decision": "allow", "rule": "modality", "peer_uri_san": "spiffe://cluster.local/ns/dicom/sa/modality", "peer_subject": "CN=modality,O=Hospital"}}},
			},
		},
		{
			Name:   "identity/san_without_mtls_is_ignored",
			Source: "connection.mtls false: peer certificate properties are not trusted",
			Config: mtlsPolicy,
			Conns: []ConnScript{
				{Props: ConnProps{Source: "10.9.9.9:1234", MTLS: false, URISAN: "spiffe://cluster.local/ns/dicom/sa/modality"},
					Steps: []Step{{Data: echoRQ}},
					Want:  Want{Closed: true, Audit: map[string]any{"decision": "deny", "peer_uri_san": ""}}},
			},
		},
		{
			Name:   "identity/source_cidr",
			Source: "expr context.cc: source.address is \"ip:port\"",
			Config: cidrPolicy,
			Conns: []ConnScript{
				{Props: ConnProps{Source: "10.1.200.7:50000"}, Steps: []Step{{Data: echoRQ}},
					Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: echoRQ, Audit: map[string]any{"rule": "lan", "source": "10.1.200.7:50000"}}},
				{Props: ConnProps{Source: "192.168.1.1:50000"}, Steps: []Step{{Data: echoRQ}},
					Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "source": "192.168.1.1:50000"}}},
			},
			Metrics: map[string]uint64{MetricAssociations: 2, decisions("allow", "lan"): 1, decisions("deny", DefaultRule): 1, denied("policy"): 1},
		},
		{
			Name:   "audit/escapes_ae_titles",
			Source: "AE titles are client-controlled: the audit line must stay valid JSON",
			Config: `{"defaultAction": "allow"}`,
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: WithAETitles(echoRQ, `A"B/C`, "Q{\"x\"}")}},
				Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: WithAETitles(echoRQ, `A"B/C`, "Q{\"x\"}"),
					Audit: map[string]any{"called_ae": `A"B/C`, "calling_ae": "Q{\"x\"}", "rule": "default"}}}},
			Metrics: map[string]uint64{decisions("allow", DefaultRule): 1},
		},
		{
			Name:           "config/route_without_cluster_rejected",
			Source:         "wasm.cc: a false proxy_on_configure rejects the configuration",
			Config:         `{"rules": [{"name": "x", "action": "route"}]}`,
			ConfigRejected: true,
			ErrorLogs:      []string{`rules[0]`, `"cluster"`},
		},
		{
			Name:           "config/route_with_immediate_rejected",
			Config:         `{"upstreamConnect": "immediate", "rules": [{"name": "x", "action": "route", "cluster": "c"}]}`,
			ConfigRejected: true,
			ErrorLogs:      []string{"immediate"},
		},
		{
			Name:           "config/invalid_json_rejected",
			Config:         `{"defaultAction": `,
			ConfigRejected: true,
			ErrorLogs:      []string{"invalid JSON"},
		},
		{
			Name:           "config/unknown_key_rejected",
			Config:         `{"defaultActoin": "allow"}`,
			ConfigRejected: true,
			ErrorLogs:      []string{"defaultActoin"},
		},
		{
			Name:    "config/empty_config_is_deny_all",
			Source:  "Istio sends an empty configuration when pluginConfig is unset",
			Config:  ``,
			Conns:   []ConnScript{{Props: src, Steps: []Step{{Data: echoRQ}}, Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "reason": "policy"}}}},
			Metrics: map[string]uint64{denied("policy"): 1},
		},
	}, append(pinnedCases(c), rejectCases(c)...)...)
}

func decisions(action, rule string) string {
	return MetricDecisions + `{action="` + action + `",rule="` + rule + `"}`
}

func denied(reason string) string { return MetricDenied + `{reason="` + reason + `"}` }

// Metric names and label values of the filter (see package metricname for
// how labels are encoded in proxy-wasm metric names).
const (
	// MetricAssociations counts association attempts: connections that sent a byte or that the filter closed.
	MetricAssociations = "dicomgate_associations_total"
	// MetricDecisions counts enforced decisions by action and rule.
	MetricDecisions = "dicomgate_decisions_total"
	// MetricDenied counts connections the filter closed, by reason.
	MetricDenied = "dicomgate_denied_total"
	// MetricDryRunDenies counts associations a dry-run policy would deny.
	MetricDryRunDenies = "dicomgate_dry_run_denies_total"
	// MetricRejected counts policy denies routed to the rejector.
	MetricRejected = "dicomgate_rejected_total"
	// DefaultRule is the rule label when the policy's default action applied.
	DefaultRule = "default"
)

// Reasons are the reason label values of MetricDenied.
var Reasons = []string{"policy", "malformed", "not_dicom", "tls_on_plain_port", "too_large", "timeout", "eof", "internal"}
