package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// logBuffer is an append-only, goroutine-safe copy of a process's combined stdout/stderr that is also written to a
// log file in the run's work directory (so the output survives a crash of the test binary).
type logBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	file *os.File
	// changed is closed and replaced on every write, so waiters can block until new output arrives.
	changed chan struct{}
}

func newLogBuffer(path string) (*logBuffer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &logBuffer{file: f, changed: make(chan struct{})}, nil
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	_, _ = b.file.Write(p)
	close(b.changed)
	b.changed = make(chan struct{})
	return len(p), nil
}

// String returns everything written so far.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// snapshot returns the output so far and a channel closed on the next write.
func (b *logBuffer) snapshot() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String(), b.changed
}

// proc is a long-running peer (Orthanc, storescp, the gateway) started in its own process group.
type proc struct {
	name    string
	cmd     *exec.Cmd
	out     *logBuffer
	logPath string
	done    chan struct{}
	waitErr error
	stopped bool
	mu      sync.Mutex
}

var (
	procsMu sync.Mutex
	procs   []*proc
)

// startProc starts name with args in its own process group; combined output goes to WORK/logs/label.log.
func startProc(label string, env []string, name string, args ...string) (*proc, error) {
	logPath := filepath.Join(workDir, "logs", label+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	out, err := newLogBuffer(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = out
	cmd.Stderr = out
	// Own process group so stop() can signal the whole tree; Pdeathsig so a crashed test binary leaves no peers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", label, commandLine(name, args), err)
	}
	p := &proc{name: label, cmd: cmd, out: out, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		_ = out.file.Close()
		close(p.done)
	}()
	procsMu.Lock()
	procs = append(procs, p)
	procsMu.Unlock()
	return p, nil
}

// exited reports whether the process has ended (and how).
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// stop sends SIGTERM to the process (by its pid), then SIGKILL to its whole process group after 5 s.
func (p *proc) stop() error {
	p.mu.Lock()
	already := p.stopped
	p.stopped = true
	p.mu.Unlock()
	if already {
		<-p.done
		return nil
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s (pid %d) ignored SIGTERM for 5 s; killed its process group", p.name, pid)
	}
	// Kill any child left behind in the group (none expected).
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	return nil
}

// waitOutput waits until the process output contains substr, the process exits, or timeout passes.
func (p *proc) waitOutput(substr string, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		s, changed := p.out.snapshot()
		if i := strings.Index(s, substr); i >= 0 {
			line := s[i:]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				line = line[:j]
			}
			return line, nil
		}
		select {
		case <-changed:
		case <-p.done:
			s := p.out.String()
			if strings.Contains(s, substr) {
				continue
			}
			return "", fmt.Errorf("%s exited (%v) before printing %q; output:\n%s", p.name, p.waitErr, substr, tail(s, 60))
		case <-deadline:
			return "", fmt.Errorf("%s did not print %q within %v; output:\n%s", p.name, substr, timeout, tail(p.out.String(), 60))
		}
	}
}

// mark returns the current end of the process output (for outputSince).
func (p *proc) mark() int { return len(p.out.String()) }

// outputSince returns the output written after mark.
func (p *proc) outputSince(mark int) string {
	s := p.out.String()
	if mark > len(s) || mark < 0 {
		mark = len(s)
	}
	return s[mark:]
}

// dump prints the tail of the process output to the test log (used on failure).
func (p *proc) dump(t testing.TB) {
	t.Helper()
	t.Logf("---- %s output (%s), last lines ----\n%s", p.name, p.logPath, tail(p.out.String(), 80))
}

// stopAllProcs stops every process started by this test binary, newest first.
func stopAllProcs() {
	procsMu.Lock()
	list := append([]*proc(nil), procs...)
	procsMu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		if err := list[i].stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
		}
	}
}

// toolResult is the outcome of one run of a short-lived dcmtk client.
type toolResult struct {
	cmdline  string
	exitCode int
	out      string
	err      error
	elapsed  time.Duration
}

// String is the command line, exit status and output, for failure messages.
func (r toolResult) String() string {
	return fmt.Sprintf("$ %s\nexit code %d (err %v) after %v\n%s", r.cmdline, r.exitCode, r.err, r.elapsed.Round(time.Millisecond), r.out)
}

// runTool runs a dcmtk client with TCP_NODELAY=1 (dcmtk honours it; avoids 40 ms Nagle stalls) and a deadline; the
// whole process group is killed when the deadline passes.
func runTool(timeout time.Duration, name string, args ...string) toolResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "TCP_NODELAY=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second // do not wait forever for output pipes a killed client's children may hold
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	err := cmd.Run()
	res := toolResult{cmdline: commandLine(name, args), out: out.String(), err: err, elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
		res.exitCode = 0
	case errors.As(err, &ee):
		res.exitCode = ee.ExitCode()
	default:
		res.exitCode = -1
	}
	if ctx.Err() != nil {
		res.err = fmt.Errorf("killed after %v timeout: %w", timeout, err)
	}
	return res
}

func commandLine(name string, args []string) string {
	q := make([]string, 0, len(args)+1)
	for _, a := range append([]string{name}, args...) {
		if a == "" || strings.ContainsAny(a, " \t'\"") {
			a = fmt.Sprintf("%q", a)
		}
		q = append(q, a)
	}
	return strings.Join(q, " ")
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d earlier lines ...]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// grepLines returns the lines of s that contain every one of subs.
func grepLines(s string, subs ...string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
next:
	for sc.Scan() {
		for _, sub := range subs {
			if !strings.Contains(sc.Text(), sub) {
				continue next
			}
		}
		out = append(out, sc.Text())
	}
	return out
}

var (
	portsMu sync.Mutex
	// portsGiven avoids handing out the same port twice in one run (the kernel may reuse a just-closed ephemeral port).
	portsGiven = map[int]bool{}
)

// freePort returns a 127.0.0.1 TCP port that was free a moment ago and has not been handed out before in this run.
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !portsGiven[port] {
			portsGiven[port] = true
			return port, nil
		}
	}
	return 0, errors.New("no free 127.0.0.1 port found in 50 attempts")
}

// mustFreePort is freePort for tests.
func mustFreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	require.NoError(t, err, "pick a free port")
	return p
}

// waitListening waits until something listens on 127.0.0.1:port (without connecting to it) or p exits.
func waitListening(p *proc, port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !portListening(port) {
		if done, werr := p.exited(); done {
			return fmt.Errorf("%s exited during start-up (%v); output:\n%s", p.name, werr, tail(p.out.String(), 40))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %d after %v; output:\n%s", p.name, port, timeout, tail(p.out.String(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
