package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/dicomgate/dicomgate/gateway"
	"github.com/dicomgate/dicomgate/internal/demopacs"
	"github.com/dicomgate/dicomgate/internal/wasmbuild"
	"github.com/dicomgate/dicomgate/sdk/metricname"
	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// lockedBuf is a goroutine-safe bytes.Buffer.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func serveDefaults() serveFlags {
	return serveFlags{listen: "127.0.0.1:0", wasm: defaultWasmPath, failPolicy: "close", logLevel: "info", logFormat: "text",
		connectTimeout: 5 * time.Second, handshakeTimeout: 5 * time.Second, drainTimeout: 5 * time.Second, idleTimeout: time.Hour}
}

func TestServeFlagErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("defaultAction: maybe\nrules: []\n"), 0o644))
	good := filepath.Join(dir, "good.json")
	require.NoError(t, os.WriteFile(good, []byte(`{"defaultAction":"allow"}`), 0o644))
	for _, tc := range []struct {
		name string
		mod  func(f *serveFlags)
		want string
	}{
		{"cluster without policy", func(f *serveFlags) { f.clusters = []string{"a=127.0.0.1:1"} }, "--policy is required"},
		{"policy without cluster", func(f *serveFlags) { f.policyFile = good }, "at least one --cluster"},
		{"bad cluster", func(f *serveFlags) { f.policyFile, f.clusters = good, []string{"a"} }, "want NAME=HOST:PORT"},
		{"cluster twice", func(f *serveFlags) { f.policyFile, f.clusters = good, []string{"a=h:1", "a=h:2"} }, `"a" given twice`},
		{"invalid policy", func(f *serveFlags) { f.policyFile, f.clusters = bad, []string{"a=h:1"} }, "policy is invalid"},
		{"missing policy", func(f *serveFlags) { f.policyFile, f.clusters = filepath.Join(dir, "nope"), []string{"a=h:1"} }, "--policy"},
		{"early data too big", func(f *serveFlags) { f.earlyDataBytes = 2 << 20 }, "0..1048576"},
		{"fail policy", func(f *serveFlags) { f.failPolicy = "sometimes" }, "want close, open or reload"},
		{"log level", func(f *serveFlags) { f.logLevel = "loud" }, "--log-level"},
		{"log format", func(f *serveFlags) { f.logFormat = "xml" }, `--log-format "xml": want text or json`},
		{"cert without key", func(f *serveFlags) { f.tlsCert = "x.crt" }, "--tls-cert and --tls-key go together"},
		{"client CA without TLS", func(f *serveFlags) { f.clientCA = "ca.crt" }, "--client-ca needs TLS"},
		{"default cluster in demo", func(f *serveFlags) { f.defaultCluster = "x" }, "--default-cluster needs"},
		{"explicit missing wasm", func(f *serveFlags) {
			f.policyFile, f.clusters, f.wasm = good, []string{"a=h:1"}, filepath.Join(dir, "none.wasm")
		}, "make wasm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := serveDefaults()
			tc.mod(&f)
			var stderr lockedBuf
			err := runServe(context.Background(), nil, &stderr, f)
			require.Error(t, err)
			require.Contains(t, err.Error()+stderr.String(), tc.want)
			var ee *exitError
			require.True(t, errors.As(err, &ee), "want an exitError, got %T", err)
			require.NotContains(t, stderr.String(), "listening on")
		})
	}
	// The invalid policy's diagnostic names the JSON path.
	var stderr lockedBuf
	f := serveDefaults()
	f.policyFile, f.clusters = bad, []string{"a=h:1"}
	_ = runServe(context.Background(), nil, &stderr, f)
	require.Contains(t, stderr.String(), "defaultAction")
}

func TestServeFailPolicyAndLogLevel(t *testing.T) {
	for in, want := range map[string]string{"close": "FAIL_CLOSED", "open": "FAIL_OPEN", "reload": "FAIL_RELOAD", "FAIL_OPEN": "FAIL_OPEN"} {
		p, err := serveFailPolicy(in)
		require.NoError(t, err)
		require.Equal(t, want, p.String())
	}
	for _, s := range []string{"trace", "debug", "info", "warn", "warning", "error", "critical"} {
		_, err := serveLogLevel(s)
		require.NoError(t, err, s)
	}
}

// filterWasm returns the compiled filter: $DICOMGATE_WASM, the repository's
// build/dicomgate.wasm, or a fresh build (skipped without a Go toolchain).
func filterWasm(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DICOMGATE_WASM"); p != "" {
		return p
	}
	p, err := filepath.Abs(filepath.Join("..", "..", "build", "dicomgate.wasm"))
	require.NoError(t, err)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no build/dicomgate.wasm and no Go toolchain to build it; run make wasm")
	}
	out := filepath.Join(t.TempDir(), "dicomgate.wasm")
	c := wasmbuild.Command(context.Background(), goBin, "../..", out, wasmbuild.FilterPackage)
	b, err := c.CombinedOutput()
	require.NoError(t, err, "building the filter:\n%s", b)
	return out
}

func readCapture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "sdk", "pdu", "testdata", name))
	require.NoError(t, err)
	return b
}

// withAEs returns a copy of a captured requester stream whose A-ASSOCIATE-RQ
// carries the given AE titles.
func withAEs(stream []byte, called, calling string) []byte {
	out := bytes.Clone(stream)
	pdu.PadAETitle(out[pdu.OffsetCalledAETitle:pdu.OffsetCalledAETitle+pdu.AETitleLen], called)
	pdu.PadAETitle(out[pdu.OffsetCallingAETitle:pdu.OffsetCallingAETitle+pdu.AETitleLen], calling)
	return out
}

// The demo (no --policy, no --cluster) end to end with the real filter: TLS
// with the generated client certificate, route to PACS_A and PACS_B, allow
// to the default cluster, deny, stored instance, metrics, clean shutdown.
func TestServeDemo(t *testing.T) {
	wasm := filterWasm(t)
	demoDir := t.TempDir()
	f := serveDefaults()
	f.wasm, f.demoDir, f.metrics, f.workers = wasm, demoDir, "127.0.0.1:0", 1
	var stderr lockedBuf
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, nil, &stderr, f) }()

	ready := regexp.MustCompile(`(?m)^dicomgate: listening on (\S+)$`)
	metricsRE := regexp.MustCompile(`metrics: http://(\S+)/metrics`)
	var addr string
	// The condition runs on another goroutine: an early exit is reported
	// through exited and required here.
	var exited bool
	var exitErr error
	require.Eventually(t, func() bool {
		select {
		case exitErr = <-done:
			exited = true
			return true
		default:
		}
		m := ready.FindStringSubmatch(stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}, 25*time.Second, 20*time.Millisecond, "no ready line")
	require.False(t, exited, "serve exited early: %v\n%s", exitErr, stderr.String())
	out := stderr.String()
	require.Contains(t, out, "echoscu -v +tls ")
	require.Contains(t, out, "-aet INTRUDER -aec PACS_A")
	require.Contains(t, out, filepath.Join(demoDir, "sample.dcm"))

	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(demoDir, "pki", "ca.crt"))
	require.NoError(t, err)
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(filepath.Join(demoDir, "pki", "client.crt"), filepath.Join(demoDir, "pki", "client.key"))
	require.NoError(t, err)
	tlsCfg := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "localhost"}
	exchange := func(stream []byte) []byte {
		c, err := tls.Dial("tcp", addr, tlsCfg)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(15*time.Second)))
		go func() {
			if _, err := c.Write(stream); err == nil {
				c.CloseWrite()
			}
		}()
		got, _ := io.ReadAll(c)
		return got
	}
	firstType := func(b []byte) pdu.Type {
		if len(b) == 0 {
			return 0
		}
		return pdu.Type(b[0])
	}
	releaseRP := []byte{0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0}

	echo := readCapture(t, "echo_default.c2s.bin")
	for _, called := range []string{"PACS_A", "DICOMGATE"} {
		got := exchange(withAEs(echo, called, "ECHOSCU"))
		require.Equal(t, pdu.TypeAssociateAC, firstType(got), "%s: want an A-ASSOCIATE-AC from the demo acceptor, got % x", called, got)
		require.True(t, bytes.HasSuffix(got, releaseRP), "%s: the association must end with A-RELEASE-RP", called)
	}
	// The demo answers the deny with an A-ASSOCIATE-RJ from its in-process rejector: rejected-permanent,
	// service-user, calling AE title not recognized (PACS_A is a called AE the policy knows).
	require.Equal(t, []byte{0x03, 0, 0, 0, 0, 4, 0, 1, 1, 3}, exchange(withAEs(echo, "PACS_A", "INTRUDER")),
		"a denied association gets exactly the A-ASSOCIATE-RJ")

	store := withAEs(readCapture(t, "store_default.c2s.bin"), "PACS_B", "STORESCU")
	got := exchange(store)
	require.Equal(t, pdu.TypeAssociateAC, firstType(got))
	files, err := filepath.Glob(filepath.Join(demoDir, "pacs-b", "*.dcm"))
	require.NoError(t, err)
	require.Len(t, files, 1, "the routed C-STORE must land in PACS_B's directory")
	ds, err := dicom.ParseFile(files[0], nil)
	require.NoError(t, err)
	_, err = ds.FindElementByTag(tag.SOPInstanceUID)
	require.NoError(t, err)
	none, _ := filepath.Glob(filepath.Join(demoDir, "pacs-a", "*.dcm"))
	require.Empty(t, none)

	mm := metricsRE.FindStringSubmatch(stderr.String())
	require.NotNil(t, mm)
	resp, err := http.Get("http://" + mm[1] + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	require.Contains(t, page, "dicomgate_associations_total")
	// Every family of the filter and of the host has its HELP and TYPE.
	for name, help := range metricname.Help() {
		require.Contains(t, page, "# HELP "+name+" "+help+"\n# TYPE "+name+" ", "HELP/TYPE of %s", name)
	}
	require.Contains(t, page, "# HELP wasm_host_vm_failures_total ")
	require.Contains(t, page, `wasm_host_vm_failures_total{plugin=`)
	require.Contains(t, page, "dicomgate_gateway_connections_total 4")
	require.Contains(t, page, `dicomgate_gateway_upstream_connections_total{cluster="pacs-b"} 1`)
	// The in-process rejector's counters (issue 13): the one deny above was answered with its RJ.
	require.Contains(t, page, "# HELP dicomgate_reject_sent_total A-ASSOCIATE-RJs sent, by result, source and reason.\n# TYPE dicomgate_reject_sent_total counter\n"+
		`dicomgate_reject_sent_total{result="1",source="1",reason="3"} 1`+"\n")
	require.Contains(t, page, "dicomgate_reject_connections_total 1\n")
	require.Contains(t, page, `dicomgate_reject_refused_total{cause="forged"} 0`+"\n")
	resp, err = http.Get("http://" + mm[1] + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The filter's audit lines reach stderr.
	require.Regexp(t, `"calling_ae":"INTRUDER".*"decision":"deny".*"cluster":"rejector".*"reject_reason":"calling-ae-not-recognized","respond":"reject"`, stderr.String())
	require.Contains(t, out, "rejector  : in-process on 127.0.0.1:")
	require.Contains(t, out, "   # Association Rejected: calling AE title not recognized")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "serve did not stop after cancellation")
	}
	require.Contains(t, stderr.String(), "dicomgate: stopped")
	_, err = net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err, "the listener must be closed after shutdown")
	_, err = os.Stat(demoDir)
	require.NoError(t, err, "--demo-dir is kept")
	require.False(t, strings.Contains(stderr.String(), "panic"))
}

// startServe runs runServe in the background and returns the listen address
// once the ready line is printed.
func startServe(t *testing.T, f serveFlags) (addr string, stderr *lockedBuf, stop func() error) {
	t.Helper()
	stderr = &lockedBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, nil, stderr, f) }()
	// The ready line in text form, or its "listen" field with --log-format json.
	ready := regexp.MustCompile(`(?m)^dicomgate: listening on (\S+)$|^\{.*"listen":"([^"]+)"`)
	deadline := time.Now().Add(25 * time.Second)
	for {
		if m := ready.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1] + m[2]
			break
		}
		select {
		case err := <-done:
			cancel()
			require.FailNowf(t, "serve exited early", "%v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			require.FailNowf(t, "no ready line", "%s", stderr.String())
		}
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = errors.New("serve did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return addr, stderr, stop
}

// Explicit configuration: a YAML policy, TLS with a client CA, two clusters
// (one with two endpoints used round robin) and a default cluster.
func TestServeExplicitConfig(t *testing.T) {
	wasm := filterWasm(t)
	dir := t.TempDir()
	pki, err := gateway.WriteDemoPKI(filepath.Join(dir, "pki"), gateway.PKIOptions{ClientCN: "CT1", ClientOrg: "Hospital"})
	require.NoError(t, err)
	var peers []*demopacs.Server
	var peerLog lockedBuf
	logf := func(format string, args ...any) { fmt.Fprintf(&peerLog, format+"\n", args...) }
	for i := 0; i < 3; i++ {
		s, err := demopacs.Start("127.0.0.1:0", demopacs.Config{Name: fmt.Sprintf("P%d", i), Logf: logf})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		peers = append(peers, s)
	}
	policyFile := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policyFile, []byte(`# routes CT1 by certificate subject
defaultAction: deny
rules:
  - name: ct1
    match:
      calledAETitles: [PACS]
      peerSubjects: ["CN=CT1,O=Hospital"]
    action: route
    cluster: pacs
  - name: echo
    match: {calledAETitles: [ECHO]}
    action: allow
`), 0o644))
	f := serveDefaults()
	f.wasm, f.policyFile, f.workers = wasm, policyFile, 1
	f.tlsCert, f.tlsKey, f.clientCA = pki.ServerCert, pki.ServerKey, pki.CACert
	f.clusters = []string{"pacs=" + peers[0].Addr().String() + "," + peers[1].Addr().String(), "echo=" + peers[2].Addr().String()}
	f.defaultCluster = "echo"
	f.earlyDataBytes = 65536
	addr, stderr, stop := startServe(t, f)

	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(pki.CACert)
	require.NoError(t, err)
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
	require.NoError(t, err)
	cfg := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "localhost"}
	echo := readCapture(t, "echo_default.c2s.bin")
	assocAE := func(called string) string {
		c, err := tls.Dial("tcp", addr, cfg)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = c.Write(withAEs(echo, called, "CT1"))
		require.NoError(t, err)
		require.NoError(t, c.CloseWrite())
		got, _ := io.ReadAll(c)
		if len(got) == 0 {
			return ""
		}
		first, _, err := (&pdu.Framer{}).Next(got)
		require.NoError(t, err)
		var ac pdu.AssociateAC
		require.NoError(t, (&pdu.Decoder{}).DecodeAssociateAC(first, &ac))
		return string(ac.CalledAETitle())
	}
	require.Equal(t, "PACS", assocAE("PACS"))
	require.Equal(t, "PACS", assocAE("PACS"))
	require.Equal(t, "ECHO", assocAE("ECHO"))
	require.Equal(t, "", assocAE("OTHER"))
	require.NoError(t, stop())
	require.Contains(t, stderr.String(), "dicomgate: stopped")
	out := peerLog.String()
	// Round robin over the two endpoints of cluster pacs, the allowed echo on the default cluster.
	require.Contains(t, out, "P0: association CT1 -> PACS")
	require.Contains(t, out, "P1: association CT1 -> PACS")
	require.Contains(t, out, "P2: association CT1 -> ECHO")
	require.NotContains(t, out, "OTHER")
}

// SIGHUP re-reads --policy: a valid policy applies to new associations, an
// invalid one is reported and the previous policy stays in force.
func TestServeReloadOnSIGHUP(t *testing.T) {
	wasm := filterWasm(t)
	dir := t.TempDir()
	peer, err := demopacs.Start("127.0.0.1:0", demopacs.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { peer.Close() })
	policyFile := filepath.Join(dir, "policy.json")
	write := func(s string) { require.NoError(t, os.WriteFile(policyFile, []byte(s), 0o644)) }
	write(`{"defaultAction":"deny","rules":[{"name":"a","match":{"calledAETitles":["A"]},"action":"allow"}]}`)
	f := serveDefaults()
	f.wasm, f.policyFile, f.workers, f.earlyDataBytes = wasm, policyFile, 1, 65536
	f.clusters, f.defaultCluster = []string{"pacs=" + peer.Addr().String()}, "pacs"
	addr, stderr, _ := startServe(t, f)

	echo := readCapture(t, "echo_default.c2s.bin")
	accepted := func(called string) bool {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = c.Write(withAEs(echo, called, "ECHOSCU"))
		require.NoError(t, err)
		c.(*net.TCPConn).CloseWrite()
		got, _ := io.ReadAll(c)
		return len(got) > 0 && pdu.Type(got[0]) == pdu.TypeAssociateAC
	}
	hup := func(want string) {
		n := strings.Count(stderr.String(), want)
		require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
		require.Eventually(t, func() bool { return strings.Count(stderr.String(), want) > n }, 20*time.Second, 10*time.Millisecond, "after SIGHUP:\n%s", stderr.String())
	}
	require.True(t, accepted("A"))
	require.False(t, accepted("B"))

	write(`{"defaultAction":"deny","rules":[{"name":"b","match":{"calledAETitles":["B"]},"action":"allow"}]}`)
	hup("reloaded")
	require.True(t, accepted("B"))
	require.False(t, accepted("A"))

	write(`{"defaultAction":"perhaps"}`)
	hup("keeping the current policy")
	require.True(t, accepted("B"), "an invalid policy must leave the previous one in force")
}
