package e2e

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"time"
)

// associateRQ builds a well-formed A-ASSOCIATE-RQ (PS3.8 §9.3.2) proposing one presentation context
// (Verification, Implicit VR Little Endian) with a maximum-length sub-item, for the hand-written hostile clients.
func associateRQ(called, calling string) []byte {
	item := func(typ byte, body []byte) []byte {
		b := []byte{typ, 0, 0, 0}
		binary.BigEndian.PutUint16(b[2:], uint16(len(body)))
		return append(b, body...)
	}
	ae := func(s string) []byte {
		b := []byte("                ")
		copy(b, s)
		return b
	}
	pc := append([]byte{1, 0, 0, 0}, item(0x30, []byte(uidVerification))...)
	pc = append(pc, item(0x40, []byte("1.2.840.10008.1.2"))...)
	maxLen := make([]byte, 4)
	binary.BigEndian.PutUint32(maxLen, 16384)
	var body []byte
	body = append(body, 0x00, 0x01, 0x00, 0x00) // protocol version 1, reserved
	body = append(body, ae(called)...)
	body = append(body, ae(calling)...)
	body = append(body, make([]byte, 32)...)
	body = append(body, item(0x10, []byte("1.2.840.10008.3.1.1.1"))...)
	body = append(body, item(0x20, pc)...)
	body = append(body, item(0x50, item(0x51, maxLen))...)
	return pduWithHeader(0x01, body)
}

// pduWithHeader prefixes body with a PDU header of the given type (PS3.8 §9.3.1).
func pduWithHeader(typ byte, body []byte) []byte {
	h := []byte{typ, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(h[2:], uint32(len(body)))
	return append(h, body...)
}

// rawConn is a hand-written client connection to a gateway, over TLS or plain TCP.
type rawConn struct {
	net.Conn
}

// dialGateway connects to g; over TLS it presents kp (nil: no client certificate) and completes the handshake.
func dialGateway(g *gateway, kp *keyPair) (*rawConn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if g.tls {
		c, err := tls.DialWithDialer(d, "tcp", g.addr(), certs.clientTLS(kp))
		if err != nil {
			return nil, err
		}
		return &rawConn{c}, nil
	}
	c, err := d.Dial("tcp", g.addr())
	if err != nil {
		return nil, err
	}
	return &rawConn{c}, nil
}

// closeWrite half-closes the client side (TLS close_notify + FIN, or FIN).
func (c *rawConn) closeWrite() error {
	switch cc := c.Conn.(type) {
	case *tls.Conn:
		return cc.CloseWrite()
	case *net.TCPConn:
		return cc.CloseWrite()
	}
	return errors.New("connection cannot half-close")
}

// waitClosed reads until the server closes the connection or max passes. It returns the bytes the server sent,
// how long after start the close was seen, and whether it was seen at all.
func (c *rawConn) waitClosed(start time.Time, max time.Duration) ([]byte, time.Duration, bool) {
	_ = c.SetReadDeadline(start.Add(max))
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return got, time.Since(start), false
			}
			if errors.Is(err, io.EOF) || !errors.Is(err, os.ErrDeadlineExceeded) {
				return got, time.Since(start), true
			}
		}
	}
}
