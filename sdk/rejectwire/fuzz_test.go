package rejectwire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzVerify: Verify never panics, and accepts only the exact bytes Sign
// wrote for a valid code within the window.
func FuzzVerify(f *testing.F) {
	k, err := NewKey(b64Key(44, 5))
	require.NoError(f, err)
	var good [Size]byte
	k.Sign(&good, Preamble{Result: 1, Source: 1, Reason: 3, ConnID: 7, Time: 1000})
	f.Add(good[:], int64(1000))
	f.Add(good[:Size-1], int64(1000))
	f.Add([]byte("DGRJ\x01"), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, now int64) {
		p, err := Verify(b, []*Key{k}, now, 1e9)
		if err != nil {
			return
		}
		var want [Size]byte
		k.Sign(&want, p)
		require.Equal(t, want[:], b[:Size], "accepted % x, which Sign does not produce for %+v", b[:Size], p)
		require.True(t, validCode(p.Result, p.Source, p.Reason), "accepted an invalid code %+v", p)
	})
}
