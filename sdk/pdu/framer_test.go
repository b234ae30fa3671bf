package pdu

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPeekNeed(t *testing.T) {
	// A-RELEASE-RQ: 10 bytes.
	rq := []byte{0x05, 0x00, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 0}
	var f Framer
	for n := 0; n <= len(rq); n++ {
		h, need, err := f.Peek(rq[:n])
		require.NoError(t, err, "Peek(%d bytes)", n)
		want := HeaderLen - n
		if n >= HeaderLen {
			want = len(rq) - n
			require.Equal(t, TypeReleaseRQ, h.Type, "Peek(%d bytes) header = %+v, want release RQ length 4", n, h)
			require.Equal(t, uint32(4), h.Length, "Peek(%d bytes) header = %+v, want release RQ length 4", n, h)
			require.Equal(t, 10, h.Total(), "Peek(%d bytes) header = %+v, want release RQ length 4", n, h)
		}
		require.Equal(t, want, need, "Peek(%d bytes) need", n)
	}
	// Extra bytes after the PDU (the next PDU) do not matter.
	h, need, err := f.Peek(append(append([]byte{}, rq...), 0x06, 0x00))
	require.NoError(t, err, "Peek(PDU+2)")
	require.Zero(t, need, "Peek(PDU+2) = %+v, need %d; want complete 10-byte PDU", h, need)
	require.Equal(t, 10, h.Total(), "Peek(PDU+2) = %+v; want complete 10-byte PDU", h)
}

func TestPeekErrors(t *testing.T) {
	be := func(typ byte, length uint32) []byte {
		b := []byte{typ, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[2:], length)
		return b
	}
	tests := []struct {
		name  string
		in    []byte
		max   uint32
		class error
		msg   string
	}{
		{"length 0xFFFFFFFF", be(0x04, 0xFFFFFFFF), 0, ErrTooLarge, "pdu: offset 2: P-DATA-TF PDU length: length 4294967295 exceeds the maximum of 1048576 bytes"},
		{"over custom max", be(0x01, 16385), 16384, ErrTooLarge, "exceeds the maximum of 16384 bytes"},
		{"TLS handshake", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, 0, ErrTLS, "pdu: offset 0: PDU type: byte 0x16 looks like a TLS record"},
		{"TLS first byte only", []byte{0x16}, 0, ErrTLS, "looks like a TLS record"},
		{"TLS alert", []byte{0x15, 0x03, 0x03}, 0, ErrTLS, "looks like a TLS record"},
		{"HTTP GET", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0, ErrHTTP, "byte 0x47 ('G') looks like HTTP"},
		{"HTTP POST", []byte("POST /"), 0, ErrHTTP, "looks like HTTP"},
		{"HTTP first byte", []byte("H"), 0, ErrHTTP, "looks like HTTP"},
		{"type 0", be(0x00, 4), 0, ErrUnknownType, "unknown PDU type 0x00"},
		{"type 8", []byte{0x08}, 0, ErrUnknownType, "unknown PDU type 0x08"},
		{"RJ length 5", be(0x03, 5), 0, ErrInvalid, "A-ASSOCIATE-RJ PDU length: length 5 must be 4"},
		{"release RQ length 0", be(0x05, 0), 0, ErrInvalid, "A-RELEASE-RQ PDU length: length 0 must be 4"},
		{"release RP length 8", be(0x06, 8), 0, ErrInvalid, "must be 4"},
		{"abort length 3", be(0x07, 3), 0, ErrInvalid, "A-ABORT PDU length: length 3 must be 4"},
		{"RQ too short", be(0x01, 67), 0, ErrInvalid, "shorter than the 68-byte fixed part"},
		{"P-DATA too short", be(0x04, 5), 0, ErrInvalid, "shorter than one PDV item"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Framer{MaxPDULength: tt.max}
			_, need, err := f.Peek(tt.in)
			require.Error(t, err, "Peek accepted %q (need %d)", tt.in, need)
			require.ErrorIs(t, err, tt.class)
			var pe *Error
			require.ErrorAs(t, err, &pe, "error %T is not *Error", err)
			require.ErrorContains(t, err, tt.msg)
			if tt.class == ErrTLS || tt.class == ErrHTTP {
				require.ErrorIs(t, err, ErrNotDICOM)
			}
		})
	}
}

func TestNext(t *testing.T) {
	stream := []byte{0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0x06, 0, 0, 0, 0, 4, 0, 0}
	var f Framer
	pdu, rest, err := f.Next(stream)
	require.NoError(t, err, "Next")
	require.Equal(t, stream[:10], pdu, "Next PDU (the A-RELEASE-RQ)")
	require.Len(t, rest, 8, "Next rest = %x", rest)
	_, rest2, err := f.Next(rest)
	require.Same(t, ErrNeedMore, err, "Next(partial) = %v; want ErrNeedMore", err)
	require.Len(t, rest2, 8, "Next(partial): want an untouched rest")
}

// TestFramerRechunk feeds every plain capture through the Framer in random
// pieces (as a proxy receives them) and checks that the same PDUs come out as
// when the whole stream is framed at once (one subtest per capture file).
func TestFramerRechunk(t *testing.T) {
	rng := rand.New(rand.NewSource(20261125))
	for _, c := range loadIndex(t) {
		for _, file := range []string{c.Files.C2S, c.Files.S2C} {
			t.Run(file, func(t *testing.T) {
				stream := readCapture(t, file)
				want, wantErr := splitStream(stream)
				if c.isTLS() || (len(stream) > 0 && stream[0] == 0x16) {
					require.ErrorIs(t, wantErr, ErrTLS, "%s: framing TLS bytes", file)
					return
				}
				require.NoError(t, wantErr, "%s: framing whole stream", file)
				require.Equal(t, len(stream), len(bytes.Join(want, nil)), "%s: bytes the PDUs cover, of %d", file, len(stream))
				for round := 0; round < 20; round++ {
					maxChunk := 1 + rng.Intn(len(stream)+1)
					if round == 0 {
						maxChunk = 1
					}
					got := rechunk(t, stream, rng, maxChunk)
					require.Equal(t, len(want), len(got), "%s round %d (chunks ≤ %d): PDUs", file, round, maxChunk)
					for i := range got {
						require.True(t, bytes.Equal(got[i], want[i]), "%s round %d: PDU %d differs", file, round, i)
					}
				}
			})
		}
	}
}

// rechunk simulates a proxy: bytes arrive in random chunks, are appended to a
// buffer, and complete PDUs are committed (removed) as Peek reports them.
func rechunk(t *testing.T, stream []byte, rng *rand.Rand, maxChunk int) [][]byte {
	var f Framer
	var buf []byte
	var out [][]byte
	for off := 0; off < len(stream); {
		n := 1 + rng.Intn(maxChunk)
		if off+n > len(stream) {
			n = len(stream) - off
		}
		buf = append(buf, stream[off:off+n]...)
		off += n
		for {
			h, need, err := f.Peek(buf)
			require.NoError(t, err, "Peek at stream offset %d", off-len(buf))
			if need > 0 {
				if len(buf) >= HeaderLen {
					require.Equal(t, h.Total(), len(buf)+need, "need %d inconsistent with header total %d and %d buffered", need, h.Total(), len(buf))
				}
				break
			}
			out = append(out, append([]byte(nil), buf[:h.Total()]...))
			buf = buf[h.Total():]
		}
	}
	require.Zero(t, len(buf), "%d bytes left over after the last PDU", len(buf))
	return out
}
