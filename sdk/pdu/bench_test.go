package pdu

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func firstPDU(b *testing.B, file string) []byte {
	b.Helper()
	pdus, err := splitStream(readCapture(b, file))
	require.NoError(b, err, file)
	require.NotEmpty(b, pdus, "%s: no PDU", file)
	return pdus[0]
}

// BenchmarkDecodeAssociateRQ decodes real A-ASSOCIATE-RQs into a reused
// value. Targets: echo_default ≤ 1 µs/op, echo_ppc128_pts38 (129,787 B,
// 128 contexts × 38 transfer syntaxes) ≤ 150 µs/op, both 0 allocs/op.
func BenchmarkDecodeAssociateRQ(b *testing.B) {
	for _, name := range []string{"echo_default", "store_default", "echo_ppc128_pts38"} {
		b.Run(name, func(b *testing.B) {
			pdu := firstPDU(b, name+".c2s.bin")
			var d Decoder
			var rq AssociateRQ
			require.NoError(b, d.DecodeAssociateRQ(pdu, &rq))
			b.SetBytes(int64(len(pdu)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := d.DecodeAssociateRQ(pdu, &rq); err != nil {
					require.NoError(b, err)
				}
			}
		})
	}
}

// BenchmarkDecodeAssociateAC decodes the AC answering 128 contexts.
func BenchmarkDecodeAssociateAC(b *testing.B) {
	pdu := firstPDU(b, "echo_ppc128_pts38.s2c.bin")
	var d Decoder
	var ac AssociateAC
	b.SetBytes(int64(len(pdu)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.DecodeAssociateAC(pdu, &ac); err != nil {
			require.NoError(b, err)
		}
	}
}

// BenchmarkEncodeAssociateRQ re-encodes a decoded RQ into a reused buffer.
func BenchmarkEncodeAssociateRQ(b *testing.B) {
	pdu := firstPDU(b, "echo_ppc128_pts38.c2s.bin")
	var rq AssociateRQ
	require.NoError(b, (&Decoder{}).DecodeAssociateRQ(pdu, &rq))
	buf := make([]byte, 0, len(pdu))
	b.SetBytes(int64(len(pdu)))
	b.ReportAllocs()
	for b.Loop() {
		buf = rq.AppendEncode(buf[:0])
	}
}

// BenchmarkFramer frames a whole C-STORE stream (multi-PDU 128 KiB data set)
// the way a proxy does: peek, commit, repeat. 0 allocs/op.
func BenchmarkFramer(b *testing.B) {
	stream := readCapture(b, "store_multi.c2s.bin")
	var f Framer
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		rest := stream
		for len(rest) > 0 {
			h, need, err := f.Peek(rest)
			if err != nil || need > 0 {
				require.NoError(b, err)
				require.Zero(b, need, "Peek needs more bytes inside a whole stream")
			}
			rest = rest[h.Total():]
		}
	}
}

// BenchmarkDecodePDataTF decodes the P-DATA-TF PDUs of a C-STORE stream.
func BenchmarkDecodePDataTF(b *testing.B) {
	pdus, err := splitStream(readCapture(b, "store_multi.c2s.bin"))
	require.NoError(b, err)
	var d Decoder
	var p PDataTF
	b.ReportAllocs()
	for b.Loop() {
		for _, pdu := range pdus {
			if Type(pdu[0]) == TypePDataTF {
				if err := d.DecodePDataTF(pdu, &p); err != nil {
					require.NoError(b, err)
				}
			}
		}
	}
}

// BenchmarkReadCommandSet reads the C-STORE-RQ command set of store_default.
func BenchmarkReadCommandSet(b *testing.B) {
	cmd := dimseMessages(b, readCapture(b, "store_default.c2s.bin"))[0].command
	var cs CommandSet
	b.SetBytes(int64(len(cmd)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ReadCommandSet(cmd, &cs); err != nil {
			require.NoError(b, err)
		}
	}
}
