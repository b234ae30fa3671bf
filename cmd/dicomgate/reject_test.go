package main

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dicomgate/dicomgate/gateway"
	"github.com/dicomgate/dicomgate/manifests/oci"
	"github.com/dicomgate/dicomgate/sdk/rejectwire"
	"github.com/stretchr/testify/require"
)

const testRejectKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func TestRejectUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.key")
	require.NoError(t, os.WriteFile(bad, []byte("too short\n"), 0o600))
	good := filepath.Join(dir, "good.key")
	require.NoError(t, os.WriteFile(good, []byte(testRejectKey+"\n"), 0o600))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"reject"}, "missing --key-file"},
		{[]string{"reject", "--key-file", bad}, "bad.key:1: the key must be 44 to 64 base64 characters"},
		{[]string{"reject", "--key-file", filepath.Join(dir, "none")}, "no such file"},
		{[]string{"reject", "--key-file", good, "--artim", "0s"}, "--artim 0s: must be positive"},
		{[]string{"reject", "--key-file", good, "extra"}, `unexpected argument "extra"`},
	} {
		_, stderr, code := runCLI(t, nil, tc.args...)
		require.Equal(t, exitUsage, code, "%v: %s", tc.args, stderr)
		require.Contains(t, stderr, tc.want, tc.args)
	}
}

// syncBuf is an io.Writer safe for the command's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRejectCommand runs the command: a signed preamble and an RQ get the
// A-ASSOCIATE-RJ, a bare RQ is refused and logged, and cancelling (the
// signal) exits cleanly.
func TestRejectCommand(t *testing.T) {
	key := filepath.Join(t.TempDir(), "reject.key")
	require.NoError(t, os.WriteFile(key, []byte(testRejectKey+"\n"), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuf{}
	done := make(chan error, 1)
	go func() {
		done <- runReject(ctx, stderr, rejectFlags{listen: "127.0.0.1:0", keyFiles: []string{key}, artim: 5 * time.Second,
			maxAge: 30 * time.Second, linger: time.Second, drain: 5 * time.Second, maxRQBytes: 1 << 20, maxConn: 100})
	}()
	re := regexp.MustCompile(`dicomgate: rejector listening on (\S+)`)
	require.Eventually(t, func() bool { return re.MatchString(stderr.String()) }, 10*time.Second, 10*time.Millisecond)
	addr := re.FindStringSubmatch(stderr.String())[1]

	stream, err := os.ReadFile(filepath.Join("..", "..", "sdk", "pdu", "testdata", "echo_default.c2s.bin"))
	require.NoError(t, err)
	rq := stream[:6+binary.BigEndian.Uint32(stream[2:6])]
	k, err := rejectwire.NewKey(testRejectKey)
	require.NoError(t, err)
	var pre [rejectwire.Size]byte
	k.Sign(&pre, rejectwire.Preamble{Result: 1, Source: 1, Reason: 3, ConnID: 5, Time: time.Now().UnixNano()})

	send := func(b []byte) []byte {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = c.Write(b)
		require.NoError(t, err)
		out, _ := io.ReadAll(c) // a refusal may end in a reset
		return out
	}
	require.Equal(t, []byte{0x03, 0, 0, 0, 0, 4, 0, 1, 1, 3}, send(append(pre[:], rq...)))
	require.Empty(t, send(rq))
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "refused (not_from_filter)") }, 5*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

// TestCheckWarnsRejectFallback: check warns when "respond": "reject" cannot
// be carried out, and --strict turns it into exit status 1.
func TestCheckWarnsRejectFallback(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "p.json")
	require.NoError(t, os.WriteFile(cfg, []byte(`{"defaultAction": "deny", "defaultRespond": "reject",
	  "rules": [{"name": "x", "match": {"callingAETitles": ["X"]}, "action": "deny", "respond": "reject"}]}`), 0o600))
	stdout, _, code := runCLI(t, nil, "check", cfg)
	require.Equal(t, exitOK, code)
	require.Contains(t, stdout, `warning: defaultRespond: "reject" falls back to "close" without "rejectCluster"`)
	require.Contains(t, stdout, `warning: rules[0].respond: "reject" falls back to "close" without "rejectCluster"`)
	require.Contains(t, stdout, "rejectCluster: none (every deny closes the connection)")
	_, _, code = runCLI(t, nil, "check", "--strict", cfg)
	require.Equal(t, exitNegative, code)
}

// TestServeChecksRejectCluster: serve refuses a policy whose rejectCluster
// no --cluster defines (every "reject" deny would fail to connect and
// close), except in mode immediate, where rejectCluster is ignored.
func TestServeChecksRejectCluster(t *testing.T) {
	pol := []byte(`{"defaultRespond": "reject", "rejectCluster": "rj", "rejectKey": "` + testRejectKey + `"}`)
	err := serveCheckRouteClusters(pol, "p.json", []*gateway.Cluster{{Name: "pacs"}})
	require.EqualError(t, err, "p.json: rejectCluster \"rj\" is not defined by any --cluster (defined: pacs); add --cluster rj=HOST:PORT pointing at `dicomgate reject`")
	require.NoError(t, serveCheckRouteClusters(pol, "p.json", []*gateway.Cluster{{Name: "pacs"}, {Name: "rj"}}))
	immediate := []byte(`{"upstreamConnect": "immediate", "rejectCluster": "rj", "rejectKey": "` + testRejectKey + `"}`)
	require.NoError(t, serveCheckRouteClusters(immediate, "p.json", []*gateway.Cluster{{Name: "pacs"}}))
}

// TestPushRejectorImage: push --rejector writes the rejector image of a
// static Linux binary (the digest BuildRejector gives, no WasmPlugin line)
// and refuses a Wasm module with exit status 2.
func TestPushRejectorImage(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("GOARCH %s: the rejector image supports amd64 and arm64", runtime.GOARCH)
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n\ngo 1.22\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644))
	bin := filepath.Join(dir, "x")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=", "GOWORK=off")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	b, err := os.ReadFile(bin)
	require.NoError(t, err)
	img, err := oci.BuildRejector(b, oci.FormatOCI)
	require.NoError(t, err)
	want, err := img.Digest()
	require.NoError(t, err)

	layout := filepath.Join(dir, "layout")
	stdout, stderr, code := runCLI(t, nil, "push", "--rejector", bin, "--layout", layout)
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, "wrote "+layout+" (oci format) digest "+want.String()+"\n", stdout)

	wasm := filepath.Join(dir, "m.wasm")
	require.NoError(t, os.WriteFile(wasm, []byte("\x00asm\x01\x00\x00\x00"), 0o644))
	_, stderr, code = runCLI(t, nil, "push", "--rejector", wasm, "--layout", layout)
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "not an ELF executable")
}
