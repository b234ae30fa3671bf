package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// SOP class UIDs used by the policy (PS3.4 / PS3.6).
const (
	uidVerification      = "1.2.840.10008.1.1"
	uidCTImageStorage    = "1.2.840.10008.5.1.4.1.1.2"
	uidMRImageStorage    = "1.2.840.10008.5.1.4.1.1.4"
	uidSCImageStorage    = "1.2.840.10008.5.1.4.1.1.7"
	uidPatientRootFind   = "1.2.840.10008.5.1.4.1.2.1.1"
	uidStudyRootFind     = "1.2.840.10008.5.1.4.1.2.2.1"
	inspectTimeoutMs     = 1500
	earlyDataBytes       = 1 << 20
	clusterOrthanc       = "orthanc"
	clusterStoreSCP      = "storescp"
	clusterSink          = "sink"
	publicCalledAE       = "PUBLIC_PACS"
	routeToOrthancAE     = "PACS_A"
	routeToStoreSCPAE    = "PACS_B"
	allowedModalityAE    = "MODALITY1"
	queryOnlyAE          = "QUERY1"
	intruderAE           = "INTRUDER"
	dryRunIntruderAE     = "DRYRUN_X"
	orthancAE            = "ORTHANC"
	ct1AE                = "CT1"
	mr1AE                = "MR1"
	auditFieldNotPresent = "<absent>"
)

// policyRule and policyDoc mirror the sdk/policy JSON configuration.
type policyMatch struct {
	CalledAETitles       []string `json:"calledAETitles,omitempty"`
	CallingAETitles      []string `json:"callingAETitles,omitempty"`
	PeerURISANs          []string `json:"peerURISANs,omitempty"`
	AbstractSyntaxes     []string `json:"abstractSyntaxes,omitempty"`
	OnlyAbstractSyntaxes []string `json:"onlyAbstractSyntaxes,omitempty"`
}

type policyRule struct {
	Name                 string      `json:"name"`
	Match                policyMatch `json:"match"`
	Action               string      `json:"action"`
	Cluster              string      `json:"cluster,omitempty"`
	RewriteCalledAETitle string      `json:"rewriteCalledAETitle,omitempty"`
	RejectReason         string      `json:"rejectReason,omitempty"`
	Respond              string      `json:"respond,omitempty"`
}

type policyDoc struct {
	DefaultAction    string       `json:"defaultAction"`
	Mode             string       `json:"mode"`
	InspectTimeoutMs int          `json:"inspectTimeoutMs"`
	UpstreamConnect  string       `json:"upstreamConnect"`
	DefaultRespond   string       `json:"defaultRespond,omitempty"`
	RejectCluster    string       `json:"rejectCluster,omitempty"`
	RejectKey        string       `json:"rejectKey,omitempty"`
	Rules            []policyRule `json:"rules"`
}

// e2ePolicy is the one policy every scenario runs against (mode enforce or dry-run). Rules, first match wins:
//
//	ct1-bound     CT1 -> PACS_A only with the client certificate spiffe://hospital/modality/ct1   -> orthanc as ORTHANC
//	mr1-bound     MR1 -> PACS_A only with the client certificate spiffe://hospital/modality/mr1   -> orthanc as ORTHANC
//	query-only    QUERY1 -> PACS_A proposing nothing but C-FIND (and Verification)                -> orthanc as ORTHANC
//	modality-a    MODALITY1 -> PACS_A proposing Verification or CT/MR/SC storage                  -> orthanc as ORTHANC
//	modality-b    MODALITY1 -> PACS_B                                                             -> storescp
//	public-pacs   MODALITY1 -> PUBLIC_PACS                                                        -> orthanc as ORTHANC
//	orthanc-forward  ORTHANC (as an SCU) -> PACS_B                                                -> storescp
//	(default)     deny
func e2ePolicy(mode string) policyDoc {
	toOrthanc := func(name string, m policyMatch) policyRule {
		return policyRule{Name: name, Match: m, Action: "route", Cluster: clusterOrthanc, RewriteCalledAETitle: orthancAE}
	}
	return policyDoc{
		DefaultAction:    "deny",
		Mode:             mode,
		InspectTimeoutMs: inspectTimeoutMs,
		UpstreamConnect:  "after-decision",
		Rules: []policyRule{
			toOrthanc("ct1-bound", policyMatch{CallingAETitles: []string{ct1AE}, CalledAETitles: []string{routeToOrthancAE}, PeerURISANs: []string{ct1SPIFFE}}),
			toOrthanc("mr1-bound", policyMatch{CallingAETitles: []string{mr1AE}, CalledAETitles: []string{routeToOrthancAE}, PeerURISANs: []string{mr1SPIFFE}}),
			toOrthanc("query-only", policyMatch{CallingAETitles: []string{queryOnlyAE}, CalledAETitles: []string{routeToOrthancAE},
				OnlyAbstractSyntaxes: []string{uidStudyRootFind, uidPatientRootFind, uidVerification}}),
			toOrthanc("modality-a", policyMatch{CallingAETitles: []string{allowedModalityAE}, CalledAETitles: []string{routeToOrthancAE},
				AbstractSyntaxes: []string{uidVerification, uidCTImageStorage, uidMRImageStorage, uidSCImageStorage}}),
			{Name: "modality-b", Match: policyMatch{CallingAETitles: []string{allowedModalityAE}, CalledAETitles: []string{routeToStoreSCPAE}},
				Action: "route", Cluster: clusterStoreSCP},
			toOrthanc("public-pacs", policyMatch{CallingAETitles: []string{allowedModalityAE}, CalledAETitles: []string{publicCalledAE}}),
			{Name: "orthanc-forward", Match: policyMatch{CallingAETitles: []string{orthancAE}, CalledAETitles: []string{routeToStoreSCPAE}},
				Action: "route", Cluster: clusterStoreSCP},
		},
	}
}

// gateway is a running `dicomgate serve`.
type gateway struct {
	label      string
	proc       *proc
	port       int
	metricsURL string
	tls        bool
	// upstreamAttempts names the host's metrics that, summed, count upstream connection attempts to a cluster.
	upstreamAttempts func(cluster string) []metricRef
}

// metricRef names one metric series: a name and label key/value pairs.
type metricRef struct {
	name   string
	labels []string
}

// localUpstreamAttempts are `dicomgate serve`'s per-cluster connects plus connect failures (gateway metrics).
func localUpstreamAttempts(cluster string) []metricRef {
	return []metricRef{
		{"dicomgate_gateway_upstream_connections_total", []string{"cluster", cluster}},
		{"dicomgate_gateway_upstream_connect_failures_total", []string{"cluster", cluster}},
	}
}

// gatewayOpts configures startGateway.
type gatewayOpts struct {
	tls            bool // terminate TLS with the server certificate
	clientCA       bool // require a client certificate from the test CA (mutual TLS)
	policy         policyDoc
	clusters       map[string]string // name -> host:port
	defaultCluster string
}

// startGateway writes the policy and starts `dicomgate serve`, waiting for "dicomgate: listening on" and /readyz.
func startGateway(label string, o gatewayOpts) (*gateway, error) {
	if err := artifacts(); err != nil {
		return nil, fmt.Errorf("gateway artifacts unavailable: %w", err)
	}
	dir := filepath.Join(workDir, label)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	pol, err := json.MarshalIndent(o.policy, "", "  ")
	if err != nil {
		return nil, err
	}
	policyPath := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policyPath, pol, 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	mport, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--policy", policyPath, "--wasm", filterWasm,
		"--early-data-bytes", strconv.Itoa(earlyDataBytes), "--metrics", fmt.Sprintf("127.0.0.1:%d", mport),
		// Stop promptly at the end of the run even if a client left a connection open.
		"--drain-timeout", "2s"}
	if o.tls {
		args = append(args, "--tls-cert", certs.Server.Cert, "--tls-key", certs.Server.Key)
		if o.clientCA {
			args = append(args, "--client-ca", certs.CAFile)
		}
	}
	names := make([]string, 0, len(o.clusters))
	for n := range o.clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		args = append(args, "--cluster", n+"="+o.clusters[n])
	}
	if o.defaultCluster != "" {
		args = append(args, "--default-cluster", o.defaultCluster)
	}
	p, err := startProc(label, nil, gatewayBin, args...)
	if err != nil {
		return nil, err
	}
	g := &gateway{label: label, proc: p, port: port, metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", mport), tls: o.tls,
		upstreamAttempts: localUpstreamAttempts}
	if _, err := p.waitOutput("dicomgate: listening on", 60*time.Second); err != nil {
		_ = p.stop()
		return nil, fmt.Errorf("gateway %s (%s): %w", label, commandLine(gatewayBin, args), err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := httpClient.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", mport))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return g, nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			_ = p.stop()
			return nil, fmt.Errorf("gateway %s: /readyz not 200 after 30 s: %v; output:\n%s", label, err, tail(p.out.String(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// addr is the gateway's DICOM listener.
func (g *gateway) addr() string { return fmt.Sprintf("127.0.0.1:%d", g.port) }

// metrics scrapes the gateway, failing the test on error.
func (g *gateway) metrics(t testing.TB) metricSet {
	t.Helper()
	m, err := scrape(g.metricsURL)
	if err != nil {
		g.proc.dump(t)
	}
	require.NoError(t, err, "scrape %s", g.label)
	return m
}

// auditSince returns the filter's audit records (JSON object lines) the gateway printed after mark.
func (g *gateway) auditSince(mark int) []auditRecord {
	return parseAudit(g.proc.outputSince(mark))
}

// auditRecord is one association's audit line, flattened (nested objects joined with '.').
type auditRecord map[string]any

// parseAudit extracts every line holding a JSON object (possibly after a log prefix) from s.
func parseAudit(s string) []auditRecord {
	var out []auditRecord
	for _, line := range strings.Split(s, "\n") {
		i := strings.IndexByte(line, '{')
		if i < 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(strings.TrimSpace(line[i:])), &m); err != nil {
			continue
		}
		rec := auditRecord{}
		flattenInto(rec, "", m)
		out = append(out, rec)
	}
	return out
}

func flattenInto(dst auditRecord, prefix string, m map[string]any) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			flattenInto(dst, prefix+k+".", sub)
			continue
		}
		dst[prefix+k] = v
	}
}

// field returns the value of the first key (compared case-insensitively, ignoring separators, with or without an
// object prefix) among candidates, as a string; auditFieldNotPresent when none is present.
func (r auditRecord) field(candidates ...string) string {
	norm := func(s string) string {
		s = strings.ToLower(s)
		if i := strings.LastIndexByte(s, '.'); i >= 0 {
			s = s[i+1:]
		}
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(s)
	}
	for _, c := range candidates {
		for k, v := range r {
			if norm(k) == norm(c) {
				if s, ok := v.(string); ok {
					return strings.TrimSpace(s)
				}
				return fmt.Sprint(v)
			}
		}
	}
	return auditFieldNotPresent
}

func (r auditRecord) calling() string {
	return r.field("calling", "callingAE", "callingAETitle", "callingAET", "calling_ae_title")
}
func (r auditRecord) called() string {
	return r.field("called", "calledAE", "calledAETitle", "calledAET", "called_ae_title")
}
func (r auditRecord) decision() string { return r.field("decision", "action", "verdict") }
func (r auditRecord) rule() string     { return r.field("rule", "ruleName", "matchedRule") }
func (r auditRecord) cluster() string  { return r.field("cluster", "upstreamCluster") }
func (r auditRecord) reason() string   { return r.field("reason", "denyReason") }

func (r auditRecord) String() string {
	b, _ := json.Marshal(map[string]any(r))
	return string(b)
}

// auditFor returns the records whose calling AE title is callingAE.
func auditFor(recs []auditRecord, callingAE string) []auditRecord {
	var out []auditRecord
	for _, r := range recs {
		if r.calling() == callingAE {
			out = append(out, r)
		}
	}
	return out
}

// sink is a counting TCP listener used as a backend that must never be contacted: any accepted connection is
// counted (and closed).
type sink struct {
	l     net.Listener
	count atomic.Int64
	wg    sync.WaitGroup
}

func startSink() (*sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{l: l}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.count.Add(1)
			_ = c.Close()
		}
	}()
	return s, nil
}

func (s *sink) addr() string { return s.l.Addr().String() }
