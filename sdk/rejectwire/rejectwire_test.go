package rejectwire

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/require"
)

// b64Key is a key of n base64 characters.
func b64Key(n int, seed byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[(int(seed)+i*7)%64]
	}
	return string(b)
}

func testKey(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// TestMACMatchesHMAC pins the precomputed-pad HMAC to crypto/hmac, for keys
// shorter than and as long as the 64-byte block.
func TestMACMatchesHMAC(t *testing.T) {
	hdr := testKey(signedLen, 9)
	for _, n := range []int{44, 63, 64} {
		key := b64Key(n, 3)
		k, err := NewKey(key)
		require.NoError(t, err)
		h := hmac.New(sha256.New, []byte(key))
		h.Write(hdr)
		got := k.mac(hdr)
		require.Equal(t, h.Sum(nil), got[:], "key length %d", n)
	}
}

func TestNewKeyValidation(t *testing.T) {
	for _, n := range []int{0, 16, 43, 65} {
		_, err := NewKey(b64Key(n, 1))
		require.ErrorIs(t, err, ErrKey, "length %d", n)
	}
	good := b64Key(44, 1)
	for _, bad := range []string{good[:43] + " ", good[:43] + "\n", "-" + good[1:], good[:43] + "\x00"} {
		_, err := NewKey(bad)
		require.ErrorIs(t, err, ErrKey, "%q", bad)
	}
	_, err := NewKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=") // openssl rand -base64 32
	require.NoError(t, err)
}

func TestSignVerify(t *testing.T) {
	k, err := NewKey(b64Key(44, 1))
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
	k, err := NewKey(b64Key(60, 2))
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
	oldK, err := NewKey(b64Key(44, 10))
	require.NoError(t, err)
	newK, err := NewKey(b64Key(44, 20))
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

// TestVerifyRefusesInvalidCode: a validly signed preamble whose
// result/source/reason is no A-ASSOCIATE-RJ combination is refused.
func TestVerifyRefusesInvalidCode(t *testing.T) {
	k, err := NewKey(b64Key(44, 1))
	require.NoError(t, err)
	var b [Size]byte
	for _, c := range [][3]byte{{0, 1, 1}, {3, 1, 1}, {1, 1, 4}, {1, 2, 3}, {1, 3, 7}, {1, 4, 1}} {
		k.Sign(&b, Preamble{Result: c[0], Source: c[1], Reason: c[2], Time: 9})
		_, err := Verify(b[:], []*Key{k}, 9, 1)
		require.ErrorIs(t, err, ErrCode, "%v", c)
	}
}

// TestSignVerifyDoNotAllocate: the filter signs on its hot path.
func TestSignVerifyDoNotAllocate(t *testing.T) {
	k, err := NewKey(b64Key(44, 1))
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

// BenchmarkSign is the filter's cost of a reject preamble, natively (the
// guest figure is BenchmarkWasmRejectedAssociation in wasm/host).
func BenchmarkSign(b *testing.B) {
	k, err := NewKey(b64Key(44, 1))
	require.NoError(b, err)
	var buf [Size]byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		k.Sign(&buf, Preamble{Result: 1, Source: 1, Reason: 3, ConnID: uint64(i), Time: int64(i)})
	}
}
