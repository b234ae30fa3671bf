package host

import (
	"fmt"
	"strings"
)

// ParseFailurePolicy parses a failure policy as Istio (FAIL_CLOSE, FAIL_OPEN, FAIL_RELOAD) or Envoy
// (FAIL_CLOSED, UNSPECIFIED) spell it, case-insensitively; "" means FailClosed.
func ParseFailurePolicy(s string) (FailurePolicy, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "", "FAIL_CLOSE", "FAIL_CLOSED", "UNSPECIFIED":
		return FailClosed, nil
	case "FAIL_OPEN":
		return FailOpen, nil
	case "FAIL_RELOAD":
		return FailReload, nil
	}
	return FailClosed, fmt.Errorf("unknown failure policy %q: use FAIL_CLOSE, FAIL_OPEN or FAIL_RELOAD", s)
}

// ParseLogLevel parses a proxy-wasm log level name (trace, debug, info, warn/warning, error,
// critical), case-insensitively.
func ParseLogLevel(s string) (LogLevel, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return LogTrace, nil
	case "debug":
		return LogDebug, nil
	case "info":
		return LogInfo, nil
	case "warn", "warning":
		return LogWarn, nil
	case "error":
		return LogError, nil
	case "critical":
		return LogCritical, nil
	}
	return LogInfo, fmt.Errorf("unknown log level %q: use trace, debug, info, warn, error or critical", s)
}
