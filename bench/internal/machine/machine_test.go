package machine

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// On Linux both come from /proc; a missing file would show as "unknown", which a recorded result must not carry.
func TestFromProc(t *testing.T) {
	require.Regexp(t, regexp.MustCompile(`^\d+\.\d\d \d+\.\d\d \d+\.\d\d$`), LoadAvg())
	require.NotEqual(t, "unknown CPU", CPUModel())
}
