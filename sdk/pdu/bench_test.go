package pdu

import "testing"

func firstPDU(b *testing.B, file string) []byte {
	b.Helper()
	pdus, err := splitStream(readCapture(b, file))
	if err != nil || len(pdus) == 0 {
		b.Fatalf("%s: %v", file, err)
	}
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
			if err := d.DecodeAssociateRQ(pdu, &rq); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(pdu)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := d.DecodeAssociateRQ(pdu, &rq); err != nil {
					b.Fatal(err)
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
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeAssociateRQ re-encodes a decoded RQ into a reused buffer.
func BenchmarkEncodeAssociateRQ(b *testing.B) {
	pdu := firstPDU(b, "echo_ppc128_pts38.c2s.bin")
	var rq AssociateRQ
	if err := (&Decoder{}).DecodeAssociateRQ(pdu, &rq); err != nil {
		b.Fatal(err)
	}
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
				b.Fatal(err, need)
			}
			rest = rest[h.Total():]
		}
	}
}

// BenchmarkDecodePDataTF decodes the P-DATA-TF PDUs of a C-STORE stream.
func BenchmarkDecodePDataTF(b *testing.B) {
	pdus, err := splitStream(readCapture(b, "store_multi.c2s.bin"))
	if err != nil {
		b.Fatal(err)
	}
	var d Decoder
	var p PDataTF
	b.ReportAllocs()
	for b.Loop() {
		for _, pdu := range pdus {
			if Type(pdu[0]) == TypePDataTF {
				if err := d.DecodePDataTF(pdu, &p); err != nil {
					b.Fatal(err)
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
			b.Fatal(err)
		}
	}
}
