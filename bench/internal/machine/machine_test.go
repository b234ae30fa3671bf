package machine

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// On Linux both come from /proc; a missing file would show as "unknown", which a recorded result must not carry.
func TestFromProc(t *testing.T) {
	require.Regexp(t, regexp.MustCompile(`^\d+\.\d\d \d+\.\d\d \d+\.\d\d$`), LoadAvg())
	require.NotEqual(t, "unknown CPU", CPUModel())
}

func TestProcReaders(t *testing.T) {
	c0, err := ReadCPU(os.Getpid())
	require.NoError(t, err)
	for i := 0; i < 30_000_000; i++ { // burn a little CPU so schedstat must grow
		_ = i * i
	}
	c1, err := ReadCPU(os.Getpid())
	require.NoError(t, err)
	require.GreaterOrEqual(t, c1.Ticks, c0.Ticks)
	require.Greater(t, c1.SchedNs, c0.SchedNs)
	rss, hwm, err := ReadRSS(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, rss)
	require.GreaterOrEqual(t, hwm, rss)
}
