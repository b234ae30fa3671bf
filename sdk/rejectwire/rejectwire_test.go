package rejectwire

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/require"
)

func testKey(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// TestSum256MatchesStdlib pins the compact SHA-256 to crypto/sha256 for
// every length around the block and padding boundaries.
func TestSum256MatchesStdlib(t *testing.T) {
	for n := 0; n <= 200; n++ {
		msg := testKey(n, byte(n))
		require.Equal(t, sha256.Sum256(msg), sum256(msg), "length %d", n)
	}
}

// TestMACMatchesHMAC pins the precomputed-pad HMAC to crypto/hmac, for keys
// shorter than, equal to and longer than the 64-byte block.
func TestMACMatchesHMAC(t *testing.T) {
	hdr := testKey(signedLen, 9)
	for _, n := range []int{32, 63, 64, 65, 100, 128} {
		key := testKey(n, 3)
		k, err := NewKey(key)
		require.NoError(t, err)
		h := hmac.New(sha256.New, key)
		h.Write(hdr)
		got := k.mac(hdr)
		require.Equal(t, h.Sum(nil), got[:], "key length %d", n)
	}
}

func TestNewKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 31, 129} {
		_, err := NewKey(make([]byte, n))
		require.ErrorIs(t, err, ErrKey, "length %d", n)
	}
}

func TestSignVerify(t *testing.T) {
	k, err := NewKey(testKey(32, 1))
	require.NoError(t, err)
	const now = int64(1_700_000_000_000_000_000)
	p := Preamble{Result: 1, Source: 1, Reason: 3, ConnID: 42, Time: now}
	var b [Size]byte
	k.Sign(&b, p)
	require.Equal(t, Magic, string(b[:4]))
	require.Equal(t, byte(Version), b[4])
	require.Equal(t, []byte{1, 1, 3}, b[5:8])

	got, err := Verify(b[:], []*Key{k}, now+5e9, 30e9)
	require.NoError(t, err)
	require.Equal(t, p, got)

	// Trailing bytes (the RQ that follows) are not read.
	got, err = Verify(append(b[:], 0x01, 0x00), []*Key{k}, now, 30e9)
	require.NoError(t, err)
	require.Equal(t, p, got)

	// Every single-bit change is refused.
	for i := 0; i < Size; i++ {
		for bit := 0; bit < 8; bit++ {
			c := b
			c[i] ^= 1 << bit
			_, err := Verify(c[:], []*Key{k}, now, 30e9)
			require.Error(t, err, "byte %d bit %d", i, bit)
		}
	}
	var err2 error
	c := b
	c[0] = 0x01
	_, err2 = Verify(c[:], []*Key{k}, now, 30e9)
	require.ErrorIs(t, err2, ErrMagic)
	c = b
	c[4] = 2
	_, err2 = Verify(c[:], []*Key{k}, now, 30e9)
	require.ErrorIs(t, err2, ErrVersion)
	c = b
	c[7] = 7 // a valid code, but not the signed one
	_, err2 = Verify(c[:], []*Key{k}, now, 30e9)
	require.ErrorIs(t, err2, ErrMAC)
	_, err2 = Verify(b[:Size-1], []*Key{k}, now, 30e9)
	require.ErrorIs(t, err2, ErrShort)
}

func TestVerifyWindow(t *testing.T) {
	k, err := NewKey(testKey(48, 2))
	require.NoError(t, err)
	const now = int64(1_700_000_000_000_000_000)
	var b [Size]byte
	k.Sign(&b, Preamble{Result: 2, Source: 3, Reason: 1, Time: now})
	for _, tc := range []struct {
		at  int64
		err error
	}{
		{now + 30e9, nil}, {now - 30e9, nil}, {now + 30e9 + 1, ErrExpired}, {now - 30e9 - 1, ErrExpired},
	} {
		_, err := Verify(b[:], []*Key{k}, tc.at, 30e9)
		if tc.err == nil {
			require.NoError(t, err, "at %d", tc.at-now)
		} else {
			require.ErrorIs(t, err, tc.err, "at %d", tc.at-now)
		}
	}
}

// TestVerifyRotation: a rejector holding the old and the new key accepts
// preambles signed with either; one holding only the new key refuses the
// old key's.
func TestVerifyRotation(t *testing.T) {
	oldK, err := NewKey(testKey(32, 10))
	require.NoError(t, err)
	newK, err := NewKey(testKey(32, 20))
	require.NoError(t, err)
	var a, b [Size]byte
	oldK.Sign(&a, Preamble{Result: 1, Source: 1, Reason: 7, Time: 1})
	newK.Sign(&b, Preamble{Result: 1, Source: 1, Reason: 7, Time: 1})
	both := []*Key{newK, oldK}
	_, err = Verify(a[:], both, 1, 1e9)
	require.NoError(t, err)
	_, err = Verify(b[:], both, 1, 1e9)
	require.NoError(t, err)
	_, err = Verify(a[:], []*Key{newK}, 1, 1e9)
	require.ErrorIs(t, err, ErrMAC)
	_, err = Verify(a[:], nil, 1, 1e9)
	require.ErrorIs(t, err, ErrMAC)
}

func TestSignRefusesInvalidCode(t *testing.T) {
	k, err := NewKey(testKey(32, 1))
	require.NoError(t, err)
	var b [Size]byte
	for _, c := range [][3]byte{{0, 1, 1}, {3, 1, 1}, {1, 1, 4}, {1, 2, 3}, {1, 3, 7}, {1, 4, 1}} {
		require.PanicsWithValue(t, ErrCode, func() { k.Sign(&b, Preamble{Result: c[0], Source: c[1], Reason: c[2]}) }, "%v", c)
	}
}

// TestSignVerifyDoNotAllocate: the filter signs on its hot path.
func TestSignVerifyDoNotAllocate(t *testing.T) {
	k, err := NewKey(testKey(32, 1))
	require.NoError(t, err)
	keys := []*Key{k}
	var b [Size]byte
	n := testing.AllocsPerRun(100, func() {
		k.Sign(&b, Preamble{Result: 1, Source: 1, Reason: 3, ConnID: 7, Time: 5})
		if _, err := Verify(b[:], keys, 5, 1); err != nil {
			panic(err)
		}
	})
	require.Zero(t, n)
}
