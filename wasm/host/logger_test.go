package host

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// viewLogger implements LogViewer: it records copies of the viewed lines and, separately, the
// lines that came through Log.
type viewLogger struct {
	mu     sync.Mutex
	viewed []logLine
	logged []logLine
}

func (l *viewLogger) Log(level LogLevel, _ string, msg string) {
	l.mu.Lock()
	l.logged = append(l.logged, logLine{level, msg})
	l.mu.Unlock()
}

func (l *viewLogger) LogView(level LogLevel, _ string, msg []byte) {
	l.mu.Lock()
	l.viewed = append(l.viewed, logLine{level, string(msg)})
	l.mu.Unlock()
}

func hasLine(lines []logLine, level LogLevel, prefix string) bool {
	for _, l := range lines {
		if l.level == level && strings.HasPrefix(l.msg, prefix) {
			return true
		}
	}
	return false
}

// A LogViewer gets the guest's proxy_log and fd_write lines (cpp-host exports.cc log, writevImpl:
// fd 1 ⇒ info, fd 2 ⇒ error, newline stripped) through LogView with their exact text and level;
// lines logged while the VM starts still go through Log (NewPlugin quotes them in its errors).
func TestLogger_LogViewerGetsGuestLinesAsViews(t *testing.T) {
	l := &viewLogger{}
	e := newTestPlugin(t, `{"probe":"misc"}`, func(c *PluginConfig) { c.Logger = l })
	c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 10}, &recTransport{})
	c.DownstreamData([]byte("x"), false)
	c.DownstreamClosed(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	// Every wrong routing is collected, so one run shows all of them.
	var wrong []string
	if !hasLine(l.logged, LogInfo, "EVT vm_start ") {
		wrong = append(wrong, fmt.Sprintf("start-up line EVT vm_start did not go through Log; Log got %v", l.logged))
	}
	for _, want := range []logLine{
		{LogInfo, "EVT new_connection "}, {LogInfo, "EVT downstream_data "}, {LogInfo, "EVT stream_done"},
		{LogInfo, "stdout line"}, {LogError, "stderr line"},
	} {
		if !hasLine(l.viewed, want.level, want.msg) {
			wrong = append(wrong, fmt.Sprintf("LogView did not get [%s] %q; it got %v", want.level, want.msg, l.viewed))
		}
		if hasLine(l.logged, want.level, want.msg) {
			wrong = append(wrong, fmt.Sprintf("[%s] %q went through Log although the Logger is a LogViewer", want.level, want.msg))
		}
	}
	for _, x := range l.viewed {
		if x.msg == "stdout line\n" || x.msg == "stderr line\n" {
			wrong = append(wrong, fmt.Sprintf("fd_write line kept its newline: %q", x.msg))
		}
	}
	require.Empty(t, wrong, "%s", strings.Join(wrong, "\n"))
}

// A Logger without LogView keeps the strings it is given, so they must be copies: no line it got
// may point into the VM's linear memory (where the guest would overwrite it later).
func TestLogger_KeptLinesAreCopies(t *testing.T) {
	e := newTestPlugin(t, `{"probe":"misc"}`, nil)
	for i := 0; i < 3; i++ {
		c := e.conn(t, TCPProxyConfig{Cluster: "default", MaxEarlyDataBytes: 1 << 20}, &recTransport{})
		c.DownstreamData([]byte("some bytes"), false)
		c.DownstreamClosed(true)
	}
	mem := e.p.workers[0].VM.Mem
	whole, ok := mem.Read(0, mem.Size())
	require.True(t, ok && len(whole) > 0, "cannot view the guest memory")
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(whole)))
	hi := lo + uintptr(len(whole))
	e.log.mu.Lock()
	defer e.log.mu.Unlock()
	require.GreaterOrEqual(t, len(e.log.lines), 10, "log lines")
	for _, x := range e.log.lines {
		p := uintptr(unsafe.Pointer(unsafe.StringData(x.msg)))
		require.False(t, p >= lo && p < hi, "log line %q aliases guest memory", x.msg)
	}
}
