package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dicomgate/dicomgate/wasm/host"
)

// Log formats of `dicomgate serve --log-format`.
const (
	logFormatText = "text"
	logFormatJSON = "json"
)

// serveLogFormat checks a --log-format value and reports whether it is json.
func serveLogFormat(s string) (bool, error) {
	switch s {
	case logFormatText:
		return false, nil
	case logFormatJSON:
		return true, nil
	}
	return false, fmt.Errorf("--log-format %q: want %s or %s", s, logFormatText, logFormatJSON)
}

// Loggers: the "logger" field of a JSON line, who wrote the line.
const (
	loggerServe    = "dicomgate" // serve itself: start, warnings, reload, drain
	loggerWasm     = "wasm"      // the filter (and the Wasm host) through proxy_log
	loggerGateway  = "gateway"   // the local gateway (package gateway)
	loggerRejector = "rejector"  // the demo's in-process rejector (internal/rejector)
	loggerDemoPACS = "demopacs"  // the demo's acceptors PACS_A and PACS_B
)

// serveLog writes the lines of `dicomgate serve` to one writer from many
// goroutines, one whole line per Write.
//
// In text form (the default) the lines are as they have always been: a
// timestamp, then the writer's own prefix ("[info] wasm log dicomgate: ",
// "gateway: conn N: ", ...). In JSON form every line is one JSON object:
// the filter's audit lines exactly as the filter wrote them (they are JSON
// objects already), every other line as {"time", "level", "logger", "msg"}
// plus "conn" when the line is about one connection (the filter's
// connection.id, the audit line's "conn").
type serveLog struct {
	mu   sync.Mutex
	w    io.Writer
	min  host.LogLevel
	json bool
	buf  bytes.Buffer // guarded by mu
}

// jsonLogLine is one non-audit line in JSON form; the field order is the
// documented one.
type jsonLogLine struct {
	Time   string `json:"time"`
	Level  string `json:"level"`
	Logger string `json:"logger"`
	Msg    string `json:"msg"`
	Conn   uint64 `json:"conn,omitempty"`
	Listen string `json:"listen,omitempty"`
}

const logTimeFormat = "2006-01-02T15:04:05.000Z"

// write emits one line. text is the text form (without timestamp when raw).
func (l *serveLog) write(level, logger string, conn uint64, msg, text string, raw bool, listen string) {
	now := time.Now().UTC()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
	if l.json {
		enc := json.NewEncoder(&l.buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(jsonLogLine{Time: now.Format(logTimeFormat), Level: level, Logger: logger, Msg: msg, Conn: conn, Listen: listen})
	} else {
		if !raw {
			l.buf.WriteString(now.Format(logTimeFormat))
			l.buf.WriteByte(' ')
		}
		l.buf.WriteString(strings.TrimRight(text, "\n"))
		l.buf.WriteByte('\n')
	}
	_, _ = l.w.Write(l.buf.Bytes())
}

// printf writes one of serve's own lines; a line that is a warning or an
// error ("warning: ...", a policy diagnostic "FILE: error: ...") gets that
// level in JSON form.
func (l *serveLog) printf(format string, args ...any) {
	msg := strings.TrimRight(fmt.Sprintf(format, args...), "\n")
	l.write(textLevel(msg), loggerServe, 0, msg, msg, false, "")
}

// textLevel is the level of one of serve's own lines.
func textLevel(msg string) string {
	switch {
	case strings.HasPrefix(msg, "warning:") || strings.Contains(msg, ": warning: "):
		return "warn"
	case strings.HasPrefix(msg, "error:") || strings.Contains(msg, ": error: ") || strings.Contains(msg, "policy is invalid"):
		return "error"
	}
	return "info"
}

// raw writes one of serve's own lines without a timestamp in text form (the
// ready line, the demo banner); in JSON form it is an info line like any
// other.
func (l *serveLog) raw(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.write("info", loggerServe, 0, msg, msg, true, "")
}

// listening writes the ready line: "dicomgate: listening on ADDR" (text) or
// an info line with that msg and "listen": ADDR (JSON).
func (l *serveLog) listening(addr string) {
	msg := "dicomgate: listening on " + addr
	l.write("info", loggerServe, 0, msg, msg, true, addr)
}

// Log implements host.Logger: the filter's lines (its audit records among
// them) and the host's, in Envoy's "wasm log <plugin>: <message>" form, or
// in JSON form the audit record itself and the others as JSON lines with
// the connection number of "dicomgate: connection N: ...".
func (l *serveLog) Log(level host.LogLevel, plugin, msg string) {
	if level < l.min {
		return
	}
	if !l.json {
		l.write("", "", 0, "", fmt.Sprintf("[%s] wasm log %s: %s", level, plugin, msg), false, "")
		return
	}
	if level == host.LogInfo && isJSONObject(msg) { // an audit record: as it is
		l.mu.Lock()
		defer l.mu.Unlock()
		l.buf.Reset()
		l.buf.WriteString(strings.TrimRight(msg, "\n"))
		l.buf.WriteByte('\n')
		_, _ = l.w.Write(l.buf.Bytes())
		return
	}
	l.write(hostLevelName(level), loggerWasm, connNumber(msg, "dicomgate: connection "), msg, "", false, "")
}

// isJSONObject reports whether s is one JSON object (the filter's audit
// line; its other lines start with "dicomgate: ").
func isJSONObject(s string) bool {
	s = strings.TrimSpace(s)
	return strings.HasPrefix(s, "{") && json.Valid([]byte(s))
}

// hostLevelName is a proxy-wasm level as --log-level spells it ("warn", not
// Envoy's "warning").
func hostLevelName(level host.LogLevel) string {
	if level == host.LogWarn {
		return "warn"
	}
	return level.String()
}

// connNumber returns N when msg contains marker followed by the number N
// (0 otherwise).
func connNumber(msg, marker string) uint64 {
	i := strings.Index(msg, marker)
	if i < 0 {
		return 0
	}
	rest := msg[i+len(marker):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, err := strconv.ParseUint(rest[:j], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// gateway is gateway.Config.Log: "gateway: conn N: msg" in text form.
func (l *serveLog) gateway(level slog.Level, conn uint64, msg string) {
	text := "gateway: " + msg
	if conn != 0 {
		text = fmt.Sprintf("gateway: conn %d: %s", conn, msg)
	}
	l.write(slogLevelName(level), loggerGateway, conn, msg, text, false, "")
}

func slogLevelName(level slog.Level) string {
	switch {
	case level >= slog.LevelError:
		return "error"
	case level >= slog.LevelWarn:
		return "warn"
	case level >= slog.LevelInfo:
		return "info"
	}
	return "debug"
}

// rejectorf is the demo rejector's Logf: it logs refused connections and
// errors only, so its lines are warnings; "gateway connection N" in a line
// is the filter's connection.id, the conn of the association's audit line.
func (l *serveLog) rejectorf(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	msg := strings.TrimPrefix(text, "rejector: ")
	l.write("warn", loggerRejector, connNumber(msg, "gateway connection "), msg, text, false, "")
}

// demopacsf is the demo acceptors' Logf.
func (l *serveLog) demopacsf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.write("info", loggerDemoPACS, 0, msg, "demopacs "+msg, false, "")
}

// reportedError is an error serve already wrote as a JSON line
// (--log-format json): main exits with its status without printing it.
type reportedError struct{ err error }

func (e *reportedError) Error() string { return e.err.Error() }
func (e *reportedError) Unwrap() error { return e.err }

// fatal writes the error that ends serve as an error line
// ("dicomgate: ERROR", as main would print it) and returns it marked as
// reported, with the same exit status (1 unless it carries one).
func (l *serveLog) fatal(err error) error {
	if err == nil {
		return nil
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code, err = ee.code, ee.err
	}
	msg := "dicomgate: " + err.Error()
	l.write("error", loggerServe, 0, msg, msg, false, "")
	return &exitError{code, &reportedError{err}}
}
