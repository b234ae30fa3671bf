package pdu_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// A proxy's read path: buffer bytes, Peek, decode the first PDU once it is
// complete, commit it.
func ExampleFramer_Peek() {
	stream, _ := os.ReadFile("testdata/echo_default.c2s.bin")
	var f pdu.Framer
	var d pdu.Decoder
	var rq pdu.AssociateRQ
	var buf []byte
	for _, chunk := range [][]byte{stream[:4], stream[4:100], stream[100:]} {
		buf = append(buf, chunk...)
		h, need, err := f.Peek(buf)
		if err != nil {
			fmt.Println("reject:", err)
			return
		}
		if need > 0 {
			fmt.Println("need", need, "more bytes")
			continue
		}
		if err := d.DecodeAssociateRQ(buf[:h.Total()], &rq); err != nil {
			fmt.Println("reject:", err)
			return
		}
		fmt.Printf("%s from %s to %s, %d context(s)\n", h.Type, rq.CallingAETitle(), rq.CalledAETitle(), len(rq.PresentationContexts))
		buf = buf[h.Total():]
		break
	}
	// Output:
	// need 2 more bytes
	// need 111 more bytes
	// A-ASSOCIATE-RQ from ECHOSCU to ANY-SCP, 1 context(s)
}

// A TLS ClientHello on a plain DICOM port is recognised from its first byte.
func ExampleErrTLS() {
	var f pdu.Framer
	_, _, err := f.Peek([]byte{0x16, 0x03, 0x01})
	fmt.Println(errors.Is(err, pdu.ErrTLS), errors.Is(err, pdu.ErrNotDICOM))
	// Output: true true
}

// Rewrite the called AE title of an A-ASSOCIATE-RQ in place.
func ExamplePadAETitle() {
	stream, _ := os.ReadFile("testdata/echo_default.c2s.bin")
	rqPDU, _, _ := (&pdu.Framer{}).Next(stream)
	pdu.PadAETitle(rqPDU[pdu.OffsetCalledAETitle:], "ARCHIVE")
	var rq pdu.AssociateRQ
	_ = (&pdu.Decoder{}).DecodeAssociateRQ(rqPDU, &rq)
	fmt.Printf("%q\n", rq.CalledAETitleRaw)
	// Output: "ARCHIVE         "
}

// A tool's read loop: frame each PDU of a stream, decode it whatever its
// type, and switch on the decoded value.
func ExampleDecode() {
	stream, _ := os.ReadFile("testdata/rj_called_ae.s2c.bin")
	var f pdu.Framer
	for len(stream) > 0 {
		b, rest, err := f.Next(stream)
		if err != nil {
			fmt.Println("framing:", err)
			return
		}
		stream = rest
		p, err := pdu.Decode(b)
		if err != nil {
			fmt.Println("decoding:", err)
			return
		}
		switch p := p.(type) {
		case *pdu.AssociateAC:
			fmt.Println("accepted,", len(p.PresentationContexts), "context result(s)")
		case *pdu.AssociateRJ:
			fmt.Printf("%s: %s, %s, %s\n", p.Type(), p.Result, p.Source, p.Diagnostic())
		default:
			fmt.Println(p.Type())
		}
	}
	// Output: A-ASSOCIATE-RJ: rejected-permanent, service-user, called-AE-title-not-recognized
}
