package pdu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"strings"
	"testing"
)

func TestPeekNeed(t *testing.T) {
	// A-RELEASE-RQ: 10 bytes.
	rq := []byte{0x05, 0x00, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 0}
	var f Framer
	for n := 0; n <= len(rq); n++ {
		h, need, err := f.Peek(rq[:n])
		if err != nil {
			t.Fatalf("Peek(%d bytes): %v", n, err)
		}
		want := HeaderLen - n
		if n >= HeaderLen {
			want = len(rq) - n
			if h.Type != TypeReleaseRQ || h.Length != 4 || h.Total() != 10 {
				t.Fatalf("Peek(%d bytes) header = %+v, want release RQ length 4", n, h)
			}
		}
		if need != want {
			t.Fatalf("Peek(%d bytes) need = %d, want %d", n, need, want)
		}
	}
	// Extra bytes after the PDU (the next PDU) do not matter.
	h, need, err := f.Peek(append(append([]byte{}, rq...), 0x06, 0x00))
	if err != nil || need != 0 || h.Total() != 10 {
		t.Fatalf("Peek(PDU+2) = %+v, %d, %v; want complete 10-byte PDU", h, need, err)
	}
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
			if err == nil {
				t.Fatalf("Peek accepted %q (need %d)", tt.in, need)
			}
			if !errors.Is(err, tt.class) {
				t.Errorf("error %v is not %v", err, tt.class)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not *Error", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if (tt.class == ErrTLS || tt.class == ErrHTTP) && !errors.Is(err, ErrNotDICOM) {
				t.Errorf("error %v is not ErrNotDICOM", err)
			}
		})
	}
}

func TestNext(t *testing.T) {
	stream := []byte{0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0x06, 0, 0, 0, 0, 4, 0, 0}
	var f Framer
	pdu, rest, err := f.Next(stream)
	if err != nil || len(pdu) != 10 || pdu[0] != 0x05 || len(rest) != 8 {
		t.Fatalf("Next = %x, %x, %v", pdu, rest, err)
	}
	if _, rest2, err := f.Next(rest); err != ErrNeedMore || len(rest2) != 8 {
		t.Fatalf("Next(partial) = %v, rest %d; want ErrNeedMore and untouched rest", err, len(rest2))
	}
}

// TestFramerRechunk feeds every plain capture through the Framer in random
// pieces (as a proxy receives them) and checks that the same PDUs come out as
// when the whole stream is framed at once.
func TestFramerRechunk(t *testing.T) {
	rng := rand.New(rand.NewSource(20261125))
	for _, c := range loadIndex(t) {
		for _, file := range []string{c.Files.C2S, c.Files.S2C} {
			stream := readCapture(t, file)
			want, wantErr := splitStream(stream)
			if c.isTLS() || (len(stream) > 0 && stream[0] == 0x16) {
				if !errors.Is(wantErr, ErrTLS) {
					t.Errorf("%s: framing TLS bytes: err = %v, want ErrTLS", file, wantErr)
				}
				continue
			}
			if wantErr != nil {
				t.Fatalf("%s: framing whole stream: %v", file, wantErr)
			}
			if got := len(bytes.Join(want, nil)); got != len(stream) {
				t.Fatalf("%s: PDUs cover %d of %d bytes", file, got, len(stream))
			}
			for round := 0; round < 20; round++ {
				maxChunk := 1 + rng.Intn(len(stream)+1)
				if round == 0 {
					maxChunk = 1
				}
				got := rechunk(t, stream, rng, maxChunk)
				if len(got) != len(want) {
					t.Fatalf("%s round %d (chunks ≤ %d): %d PDUs, want %d", file, round, maxChunk, len(got), len(want))
				}
				for i := range got {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("%s round %d: PDU %d differs", file, round, i)
					}
				}
			}
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
			if err != nil {
				t.Fatalf("Peek at stream offset %d: %v", off-len(buf), err)
			}
			if need > 0 {
				if len(buf) >= HeaderLen && h.Total() != len(buf)+need {
					t.Fatalf("need %d inconsistent with header total %d and %d buffered", need, h.Total(), len(buf))
				}
				break
			}
			out = append(out, append([]byte(nil), buf[:h.Total()]...))
			buf = buf[h.Total():]
		}
	}
	if len(buf) != 0 {
		t.Fatalf("%d bytes left over after the last PDU", len(buf))
	}
	return out
}
