package rejector

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/sdk/rejectwire"
)

// BenchmarkConcurrentRejects holds 5,000 connections open at once (each
// waiting for its preamble), then lets all of them send preamble and RQ
// and read their RJ. It reports the rejector's memory per open connection
// (heap in use plus goroutine stacks, both sides of the loopback
// connections are in this process: the client side is subtracted by
// measuring it alone first) and the time to answer all of them.
func BenchmarkConcurrentRejects(b *testing.B) {
	const n = 5000
	s, err := New(Config{Keys: []string{testKey}, ARTIM: time.Minute})
	require.NoError(b, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	go s.Serve(ln)
	defer s.Shutdown(b.Context())
	rq := firstPDU(readCaptureB(b, "echo_default.c2s.bin"))
	k, _ := rejectwire.NewKey(testKey)
	want := []byte{0x03, 0, 0, 0, 0, 4, 0, 1, 1, 3}
	for i := 0; i < b.N; i++ {
		before := memInUse()
		conns := make([]net.Conn, n)
		for j := range conns {
			c, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(b, err, "dial %d", j)
			conns[j] = c
		}
		for s.Stats().Active != n {
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(float64(memInUse()-before)/n, "bytes/conn")
		// The clients' goroutines send what they got instead of requiring it:
		// require stops the benchmark's goroutine only.
		wrong := make(chan []byte, n)
		start := time.Now()
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				var pre [rejectwire.Size]byte
				k.Sign(&pre, rejectwire.Preamble{Result: 1, Source: 1, Reason: 3, Time: time.Now().UnixNano()})
				c.Write(append(pre[:], rq...))
				out, _ := io.ReadAll(c)
				if !bytes.Equal(out, want) {
					wrong <- out
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		close(wrong)
		var got []string
		for out := range wrong {
			got = append(got, fmt.Sprintf("% x", out))
		}
		require.Empty(b, got, "answers other than the RJ % x", want)
		b.ReportMetric(float64(elapsed.Microseconds())/n, "µs/reject")
	}
}

// memInUse is heap in use plus goroutine stacks, after a GC.
func memInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

func readCaptureB(b *testing.B, name string) []byte {
	data, err := os.ReadFile(filepath.Join(captures, name))
	require.NoError(b, err)
	return data
}
