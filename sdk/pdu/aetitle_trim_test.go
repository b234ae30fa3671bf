package pdu

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// trimSpec is TrimAETitle byte by byte: trailing spaces and NULs, then
// leading spaces.
func trimSpec(b []byte) []byte {
	end := len(b)
	for end > 0 && (b[end-1] == ' ' || b[end-1] == 0) {
		end--
	}
	start := 0
	for start < end && b[start] == ' ' {
		start++
	}
	return b[start:end]
}

// The word-at-a-time trim agrees with the byte rule for every length up to
// twice a wire title, on mixes of spaces, NULs and bytes one bit away from
// them (0x01, 0x21, 0x60, 0xa0, ...), and returns a view of its input.
func TestTrimAETitleMatchesByteRule(t *testing.T) {
	alphabet := []byte{' ', 0, 'A', 0x01, 0x21, 0x30, 0x60, 0xa0, 0xff, 0x02, 0x22}
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 200000; i++ {
		b := make([]byte, r.IntN(33))
		for k := range b {
			if r.IntN(3) == 0 {
				b[k] = alphabet[r.IntN(len(alphabet))]
			} else {
				b[k] = alphabet[r.IntN(2)] // mostly padding, where the word path runs
			}
		}
		got, want := TrimAETitle(b), trimSpec(b)
		require.Equal(t, want, got, "TrimAETitle(%q)", b)
		if len(got) > 0 {
			require.Same(t, &b[len(b)-len(bytes.TrimLeft(b, " "))], &got[0], "TrimAETitle(%q) is not a view of its input", b)
		}
	}
}
