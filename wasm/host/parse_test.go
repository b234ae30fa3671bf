package host

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseFailurePolicy(t *testing.T) {
	for in, want := range map[string]FailurePolicy{"": FailClosed, "FAIL_CLOSE": FailClosed, "fail_closed": FailClosed, "FAIL_OPEN": FailOpen, " fail_reload ": FailReload} {
		got, err := ParseFailurePolicy(in)
		require.NoError(t, err, "ParseFailurePolicy(%q)", in)
		require.Equal(t, want, got, "ParseFailurePolicy(%q)", in)
	}
	_, err := ParseFailurePolicy("FAIL_SOMETIMES")
	require.Error(t, err, "ParseFailurePolicy accepted an unknown value")
}

func TestParseLogLevel(t *testing.T) {
	for in, want := range map[string]LogLevel{"trace": LogTrace, "DEBUG": LogDebug, "info": LogInfo, "warning": LogWarn, "warn": LogWarn, "error": LogError, "critical": LogCritical} {
		got, err := ParseLogLevel(in)
		require.NoError(t, err, "ParseLogLevel(%q)", in)
		require.Equal(t, want, got, "ParseLogLevel(%q)", in)
		got, _ = ParseLogLevel(want.String())
		require.Equal(t, want, got, "ParseLogLevel(%v.String())", want)
	}
	_, err := ParseLogLevel("loud")
	require.Error(t, err, "ParseLogLevel accepted an unknown value")
}
