package rejectwire

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// sum256 is SHA-256 of msg built from compress and finish (tests only: the
// package itself hashes at most two blocks).
func sum256(msg []byte) [32]byte {
	h := iv
	n := len(msg)
	for len(msg) >= 64 {
		compress(&h, (*[64]byte)(msg[:64]))
		msg = msg[64:]
	}
	if len(msg) >= 56 {
		var blk [64]byte
		copy(blk[:], msg)
		blk[len(msg)] = 0x80
		compress(&h, &blk)
		var last [64]byte
		binary.BigEndian.PutUint64(last[56:], uint64(n)*8)
		compress(&h, &last)
	} else {
		finish(&h, msg, n)
	}
	return digest(&h)
}

// TestSum256MatchesStdlib pins the compact SHA-256 to crypto/sha256 for
// every length around the block and padding boundaries.
func TestSum256MatchesStdlib(t *testing.T) {
	for n := 0; n <= 200; n++ {
		msg := testKey(n, byte(n))
		require.Equal(t, sha256.Sum256(msg), sum256(msg), "length %d", n)
	}
}
