package validate

// Process helpers for the real-Envoy tests: small equivalents of the e2e
// suite's (e2e/procs_test.go), which another module cannot import.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// proc is a long-running peer (Envoy, Orthanc, storescp) in its own process
// group; its combined output is kept in memory and copied to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	log  *os.File
	done chan struct{}
	err  error
}

// Write appends process output (proc is the process's stdout and stderr).
func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out.Write(b)
	_, _ = p.log.Write(b)
	return len(b), nil
}

var (
	procsMu sync.Mutex
	procs   []*proc
)

// startProc starts name with args; output goes to logPath too. Pdeathsig
// kills it if the test binary dies; stopAllProcs ends it otherwise.
func startProc(label, logPath string, name string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &proc{name: label, log: f, done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Env = append(os.Environ(), "TCP_NODELAY=1")
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s (%s %s): %w", label, name, strings.Join(args, " "), err)
	}
	go func() {
		p.err = p.cmd.Wait()
		p.mu.Lock()
		_ = p.log.Close()
		p.mu.Unlock()
		close(p.done)
	}()
	procsMu.Lock()
	procs = append(procs, p)
	procsMu.Unlock()
	return p, nil
}

// output returns everything the process printed so far.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// mark is the current end of the output, for since.
func (p *proc) mark() int { return len(p.output()) }

// since returns the output printed after mark.
func (p *proc) since(mark int) string { return p.output()[mark:] }

// exited reports whether the process ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor waits until the output after mark has a line containing every one
// of subs and returns that line.
func (p *proc) waitFor(mark int, timeout time.Duration, subs ...string) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if l := grepLines(p.since(mark), subs...); len(l) > 0 {
			return l[0], nil
		}
		if p.exited() || time.Now().After(deadline) {
			return "", fmt.Errorf("%s printed no line with %q within %v (exited: %v); output:\n%s", p.name, subs, timeout, p.exited(), tail(p.since(mark), 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM to the process, then SIGKILL to its group after 5 s.
func (p *proc) stop() {
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	}
}

// stopAllProcs stops every process this test binary started, newest first.
func stopAllProcs() {
	procsMu.Lock()
	list := append([]*proc(nil), procs...)
	procsMu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop()
	}
}

// toolResult is one run of a dcmtk client.
type toolResult struct {
	cmdline string
	code    int
	out     string
}

// String is the command line, exit status and output, for failure messages.
func (r toolResult) String() string {
	return fmt.Sprintf("$ %s\nexit code %d\n%s", r.cmdline, r.code, r.out)
}

// runTool runs a dcmtk client (TCP_NODELAY=1: no Nagle stalls) with a 30 s
// deadline; exit code -1 means it could not run or was killed.
func runTool(name string, args ...string) toolResult {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "TCP_NODELAY=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	r := toolResult{cmdline: name + " " + strings.Join(args, " "), out: out.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		r.code = ee.ExitCode()
	default:
		r.code = -1
		r.out += "\n(" + err.Error() + ")"
	}
	return r
}

// grepLines returns the lines of s that contain every one of subs.
func grepLines(s string, subs ...string) []string {
	var out []string
next:
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if !strings.Contains(l, sub) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// freePort returns a 127.0.0.1 port that was free a moment ago and was not
// handed out before in this run.
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err, "pick a free port")
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !portsGiven[port] {
			portsGiven[port] = true
			return port
		}
	}
	require.FailNow(t, "no free 127.0.0.1 port in 50 attempts")
	return 0
}

// portListening reports whether something listens on port, from
// /proc/net/tcp (no connection: a probe would show up in peers' logs and
// in Envoy's connection counters).
func portListening(port int) bool {
	want := fmt.Sprintf(":%04X ", port)
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1]+" ", want) && f[3] == "0A" {
			return true
		}
	}
	return false
}

// waitListening waits until p listens on port.
func waitListening(p *proc, port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !portListening(port) {
		if p.exited() || time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %d after %v (exited: %v); output:\n%s", p.name, port, timeout, p.exited(), tail(p.output(), 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
