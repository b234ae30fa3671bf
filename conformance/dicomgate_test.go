package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// policy1000 is a 1,000-rule policy for the real filter: rules 1–999 route called AE titles PACS_0001…PACS_0999
// to cluster a, rule 1000 routes ANY-SCP to cluster b, everything else is denied.
func policy1000() string {
	var b strings.Builder
	b.WriteString(`{"defaultAction":"deny","upstreamConnect":"after-decision","inspectTimeoutMs":5000,"rules":[`)
	for i := 1; i < 1000; i++ {
		fmt.Fprintf(&b, `{"name":"r%04d","match":{"calledAETitles":["PACS_%04d"]},"action":"route","cluster":"a"},`, i, i)
	}
	b.WriteString(`{"name":"r1000","match":{"calledAETitles":["ANY-SCP"]},"action":"route","cluster":"b"}]}`)
	return b.String()
}

// dicomgate1000Shape runs the real filter (build/dicomgate.wasm, or a `make wasm` build) with policy1000.
var dicomgate1000Shape = newShape(shape{name: "dicomgate-1000-rules", module: "dicomgate", earlyData: 64 << 10, filter: policy1000()})

func withCalled(rq []byte, called string) []byte {
	out := bytes.Clone(rq)
	copy(out[10:26], called+strings.Repeat(" ", 16-len(called)))
	return out
}

// The real filter with a 1,000-rule policy in V8 and in the host: the first, a middle and the last rule and
// the default deny decide the same (audit lines, backends, client outcomes).
func TestDicomgate1000Rules(t *testing.T) {
	req := rq(t, "echo_default.c2s.bin")
	envoy, hst := compare(t, dicomgate1000Shape, reply{after: len(req), data: []byte("AC")}, func(r *run) {
		for _, called := range []string{"PACS_0001", "PACS_0500", "ANY-SCP", "NOBODY"} {
			c := r.dial(dialOpts{})
			c.write(withCalled(req, called))
			time.Sleep(200 * time.Millisecond)
			c.closeWrite()
			c.wait()
		}
	})
	require.Len(t, envoy.Events, 4, "one audit line per association")
	require.Contains(t, envoy.Events[2], `"rule":"r1000"`)
	require.Equal(t, []string{`"AC" eof`, `"AC" eof`, `"AC" eof`, `"" eof`}, envoy.Clients)
	requireSame(t, envoy, hst)
}

// wasmMemory is one V8 Wasm linear memory of the Envoy process.
type wasmMemory struct{ size, rss int }

// wasmMemories finds the V8 Wasm linear memories of a process in /proc/PID/smaps: V8 reserves each memory as
// one anonymous region of several GiB (the 32-bit index space plus guard pages) and makes its first part
// (the current memory size) readable and writable, so a memory is an anonymous rw-p mapping directly followed
// by an anonymous ---p mapping of at least 4 GiB. Its size is the module's memory size, its Rss what the
// module touched.
func wasmMemories(pid int) ([]wasmMemory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	type mapping struct {
		lo, hi    uint64
		perms     string
		anonymous bool
		rss       int
	}
	var maps []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && strings.Count(fields[0], "-") == 1 && !strings.HasSuffix(fields[0], ":") {
			var m mapping
			if _, err := fmt.Sscanf(fields[0], "%x-%x", &m.lo, &m.hi); err == nil {
				m.perms, m.anonymous = fields[1], len(fields) == 5
				maps = append(maps, m)
			}
			continue
		}
		if len(maps) > 0 && len(fields) == 3 && fields[0] == "Rss:" {
			kb, err := strconv.Atoi(fields[1])
			if err != nil {
				return nil, err
			}
			maps[len(maps)-1].rss = kb << 10
		}
	}
	var out []wasmMemory
	for i := 0; i+1 < len(maps); i++ {
		m, next := maps[i], maps[i+1]
		if m.anonymous && m.perms == "rw-p" && next.anonymous && next.perms == "---p" && next.lo == m.hi && next.hi-next.lo >= 4<<30 {
			out = append(out, wasmMemory{size: int(m.hi - m.lo), rss: m.rss})
		}
	}
	return out, sc.Err()
}

// VM memory in V8: every Wasm linear memory of the Envoy process — the real filter's with the 1,000-rule
// policy among them, and the probe's — stays within the 8 MiB budget wasm/host holds one VM to
// (TestWasmVMMemory1000Rules), and the largest is the size the host's VM has with the same policy.
func TestV8WasmMemoryWith1000Rules(t *testing.T) {
	s := getSuite(t)
	mems, err := wasmMemories(s.envoy.cmd.Process.Pid)
	require.NoError(t, err)
	require.NotEmpty(t, mems, "no V8 Wasm memory found in /proc/%d/smaps", s.envoy.cmd.Process.Pid)
	largest := 0
	for _, m := range mems {
		require.LessOrEqual(t, m.size, 8<<20, "a V8 Wasm memory above the 8 MiB budget: %+v", mems)
		largest = max(largest, m.size)
	}
	hostVM := s.host.gateway(dicomgate1000Shape).plugin.GuestMemoryBytes()
	t.Logf("V8 Wasm memories (size/resident bytes): %+v; host VM with the 1,000-rule policy: %d bytes", mems, hostVM)
	// The memory size is the guest's own doing (its Go runtime grows it while compiling the policy), so V8 and
	// wazero must agree to the page.
	require.Equal(t, int(hostVM), largest, "the largest V8 memory is the real filter's with the 1,000-rule policy")
}
