package host

import "testing"

func TestParseFailurePolicy(t *testing.T) {
	for in, want := range map[string]FailurePolicy{"": FailClosed, "FAIL_CLOSE": FailClosed, "fail_closed": FailClosed, "FAIL_OPEN": FailOpen, " fail_reload ": FailReload} {
		if got, err := ParseFailurePolicy(in); err != nil || got != want {
			t.Errorf("ParseFailurePolicy(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseFailurePolicy("FAIL_SOMETIMES"); err == nil {
		t.Error("ParseFailurePolicy accepted an unknown value")
	}
}

func TestParseLogLevel(t *testing.T) {
	for in, want := range map[string]LogLevel{"trace": LogTrace, "DEBUG": LogDebug, "info": LogInfo, "warning": LogWarn, "warn": LogWarn, "error": LogError, "critical": LogCritical} {
		if got, err := ParseLogLevel(in); err != nil || got != want {
			t.Errorf("ParseLogLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got, _ := ParseLogLevel(want.String()); got != want {
			t.Errorf("ParseLogLevel(%v.String()) = %v", want, got)
		}
	}
	if _, err := ParseLogLevel("loud"); err == nil {
		t.Error("ParseLogLevel accepted an unknown value")
	}
}
