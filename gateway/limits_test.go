package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/wasm/host"
)

// holdFactory returns a NewFilterFunc of filters that keep every client
// byte (like a filter waiting for the rest of an A-ASSOCIATE-RQ), the byte
// counter of each connection (in creation order), the number created, and a
// function that closes connection i as the filter's deadline would.
func holdFactory() (NewFilterFunc, func(i int) *atomic.Int64, func() int, func(i int)) {
	var mu sync.Mutex
	var counters []*atomic.Int64
	var transports []host.Transport
	f := func(_ host.ConnInfo, _ host.TCPProxyConfig, tr host.Transport) Filter {
		n := new(atomic.Int64)
		mu.Lock()
		counters = append(counters, n)
		transports = append(transports, tr)
		mu.Unlock()
		return filterFuncs{data: func(b []byte, _ bool) { n.Add(int64(len(b))) }}
	}
	get := func(i int) *atomic.Int64 { // a zero counter until connection i has a filter
		mu.Lock()
		defer mu.Unlock()
		if i >= len(counters) {
			return new(atomic.Int64)
		}
		return counters[i]
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(counters) }
	closeConn := func(i int) {
		mu.Lock()
		tr := transports[i]
		mu.Unlock()
		tr.CloseDownstream("timeout: no complete A-ASSOCIATE-RQ")
	}
	return f, get, count, closeConn
}

// Over MaxConnections, a new connection is closed at once, without a filter,
// and counted; once a slot is free, connections are served again.
func TestMaxConnectionsClosesExcess(t *testing.T) {
	nf, _, created, closeConn := holdFactory()
	e := startGateway(t, Config{MaxConnections: 2}, false, false, func(*recorder) NewFilterFunc { return nf })
	a, b := e.dial(t, false), e.dial(t, false)
	defer a.Close()
	defer b.Close()
	waitFor(t, "two connections", func() bool { return e.g.ActiveConnections() == 2 })

	// The excess connection is closed at once (seen at connect or at its first read).
	over, err := net.Dial("tcp", e.addr)
	if err == nil {
		defer over.Close()
		over.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = over.Read(make([]byte, 1))
	}
	require.Error(t, err)
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the excess connection must be closed at once")
	require.EqualValues(t, 1, e.g.Metrics().ConnectionsOverflow.Load())
	require.Equal(t, 2, created(), "no filter for the refused connection")
	var sb strings.Builder
	require.NoError(t, e.g.WritePrometheus(&sb))
	require.Contains(t, sb.String(), "dicomgate_gateway_connections_overflow_total 1\n")
	require.Contains(t, sb.String(), `dicomgate_gateway_downstream_closes_total{reason="connection_limit"} 1`+"\n")
	require.Contains(t, e.logs.String(), "MaxConnections")

	closeConn(0) // the filter closes the first connection
	waitFor(t, "a slot", func() bool { return e.g.ActiveConnections() == 1 })
	c := e.dial(t, false)
	defer c.Close()
	waitFor(t, "the new connection served", func() bool { return created() == 3 && e.g.ActiveConnections() == 2 })
	require.EqualValues(t, 1, e.g.Metrics().ConnectionsOverflow.Load())
}

// Over the buffered-bytes budget, a connection holding bytes stops reading,
// while a connection that holds nothing still gets its first read to the
// filter (an honest RQ is decided during a flood); closing the holder frees
// the budget for the rest.
func TestBufferBudgetPausesHolders(t *testing.T) {
	const budget = 64 << 10
	nf, got, _, closeConn := holdFactory()
	e := startGateway(t, Config{MaxBufferedBytes: budget}, false, false, func(*recorder) NewFilterFunc { return nf })

	flood := e.dial(t, false)
	defer flood.Close()
	go flood.Write(make([]byte, 1<<20)) // blocks once the gateway stops reading
	waitFor(t, "the budget to pause the flood", func() bool { return e.g.Metrics().BudgetPauses.Load() >= 1 })
	held := got(0).Load()
	time.Sleep(100 * time.Millisecond) // a few budget polls: nothing more is read
	require.Equal(t, held, got(0).Load(), "a paused connection must not read")
	require.LessOrEqual(t, e.g.BufferedBytes(), int64(budget+largeReadBuffer), "the budget is exceeded by one read at most")
	require.GreaterOrEqual(t, e.g.BufferedBytes(), int64(budget))

	honest := e.dial(t, false)
	defer honest.Close()
	_, err := honest.Write(make([]byte, 300))
	require.NoError(t, err)
	waitFor(t, "the honest connection's first read", func() bool { return got(1).Load() == 300 })

	// More from the honest connection waits while the flood holds the budget…
	_, err = honest.Write(make([]byte, 100))
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	require.EqualValues(t, 300, got(1).Load(), "a holder reads nothing more over the budget")
	// …and is read once the flood is gone (closed by the filter's deadline).
	closeConn(0)
	waitFor(t, "the honest connection's second read", func() bool { return got(1).Load() == 400 })
	closeConn(1)
	waitFor(t, "cleanup", func() bool { return e.g.ActiveConnections() == 0 })
	require.Zero(t, e.g.BufferedBytes(), "a finished connection holds nothing")
}

// After a flood of buffered bytes (above 32 MiB) is gone, the gateway returns
// the freed memory to the OS once (debug.FreeOSMemory).
func TestMemoryReturnedAfterFlood(t *testing.T) {
	nf, got, _, closeConn := holdFactory()
	e := startGateway(t, Config{MaxBufferedBytes: -1}, false, false, func(*recorder) NewFilterFunc { return nf })
	const conns, each = 40, 1 << 20
	var cs []net.Conn
	for i := 0; i < conns; i++ {
		c := e.dial(t, false)
		cs = append(cs, c)
		_, err := c.Write(make([]byte, each))
		require.NoError(t, err)
	}
	waitFor(t, "the flood buffered", func() bool {
		for i := 0; i < conns; i++ {
			if got(i).Load() != each {
				return false
			}
		}
		return true
	})
	require.EqualValues(t, conns*each, e.g.BufferedBytes())
	require.Zero(t, e.g.Metrics().MemoryReturns.Load(), "nothing is returned during the flood")
	for i, c := range cs {
		closeConn(i) // the filter's deadline
		c.Close()
	}
	waitFor(t, "cleanup", func() bool { return e.g.ActiveConnections() == 0 })
	require.Zero(t, e.g.BufferedBytes())
	require.EqualValues(t, 1, e.g.Metrics().MemoryReturns.Load())
}

// emfileChildEnv makes TestAcceptBacksOffOnEMFILE's subprocess run the gateway.
const emfileChildEnv = "DICOMGATE_GATEWAY_EMFILE_CHILD"

// With a file descriptor limit far below the number of clients, Accept fails
// with EMFILE; the gateway backs off and keeps serving: the open connections
// go on, and once descriptors are freed the waiting clients are served. (Run
// in a subprocess: the limit is per process.)
func TestAcceptBacksOffOnEMFILE(t *testing.T) {
	if os.Getenv(emfileChildEnv) == "1" {
		emfileChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptBacksOffOnEMFILE$", "-test.count=1")
	cmd.Env = append(os.Environ(), emfileChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := &syncBuf{} // written by exec's copying goroutine, read here
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	reaped := false
	defer func() {
		stdin.Close()
		if reaped {
			return
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	}()
	lines := bufio.NewScanner(stdout)
	require.True(t, lines.Scan(), "child: %s", stderr.String())
	addr, ok := strings.CutPrefix(lines.Text(), "addr ")
	require.True(t, ok, "child said %q", lines.Text())
	go func() { exited <- cmd.Wait() }()

	// echo checks that a connection is proxied through the child's filter.
	echo := func(c net.Conn, msg string) error {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		b := make([]byte, len(msg))
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
		if string(b) != msg {
			return fmt.Errorf("echo %q, want %q", b, msg)
		}
		return nil
	}
	const clients = 3 * emfileLimit
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < clients; i++ { // the kernel accepts them into the backlog
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	// The first connections were accepted before the limit and are served.
	require.NoError(t, echo(conns[0], "first"))
	select {
	case err := <-exited:
		require.FailNowf(t, "the gateway exited under EMFILE", "%v\n%s", err, stderr.String())
	case <-time.After(300 * time.Millisecond): // several back-off rounds
	}
	// Free descriptors: every client still waiting is served in turn.
	for _, c := range conns[:clients-emfileLimit/2] {
		c.Close()
	}
	for i, c := range conns[clients-emfileLimit/2:] {
		require.NoError(t, echo(c, "late "+strconv.Itoa(i)), "child log:\n%s", stderr.String())
	}
	stdin.Close() // the child prints its counters and exits
	require.True(t, lines.Scan(), "child: %s", stderr.String())
	n, ok := strings.CutPrefix(lines.Text(), "accept_errors ")
	require.True(t, ok, "child said %q", lines.Text())
	errs, err := strconv.Atoi(n)
	require.NoError(t, err)
	require.Positive(t, errs, "the child never hit EMFILE: the test proved nothing")
	reaped = true
	require.NoError(t, <-exited, stderr.String())
	require.Contains(t, stderr.String(), "too many open files")
}

// Write makes syncBuf an io.Writer.
func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// emfileLimit is the child's RLIMIT_NOFILE.
const emfileLimit = 64

// emfileChild runs an echo gateway under RLIMIT_NOFILE emfileLimit until its
// stdin closes, then prints its accept error count.
func emfileChild() {
	lim := syscall.Rlimit{Cur: emfileLimit, Max: emfileLimit}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		os.Exit(3)
	}
	g, err := New(Config{
		NewFilter: func(_ host.ConnInfo, _ host.TCPProxyConfig, tr host.Transport) Filter {
			return filterFuncs{data: func(b []byte, end bool) {
				tr.WriteDownstream(b, false)
				if end {
					tr.CloseDownstream("eof")
				}
			}}
		},
		Logf: func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	fmt.Printf("addr %s\n", ln.Addr())
	stdinDone := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stdinDone) }()
	select {
	case err := <-served:
		fmt.Fprintln(os.Stderr, "Serve returned:", err)
		os.Exit(4)
	case <-stdinDone:
	}
	g.Close()
	fmt.Printf("accept_errors %d\n", g.Metrics().AcceptErrors.Load())
	os.Exit(0)
}

// DefaultMaxConnections: two descriptors per proxied connection, FDReserve
// kept, read from the process's RLIMIT_NOFILE.
func TestDefaultMaxConnectionsFromFDLimit(t *testing.T) {
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	require.Equal(t, int((lim.Cur-FDReserve)/2), DefaultMaxConnections())
}
