// Package rejectwire is the channel between the dicomgate filter and the
// rejector (`dicomgate reject`): a fixed-size, versioned preamble,
// authenticated with HMAC-SHA256, that the filter puts in front of a denied
// A-ASSOCIATE-RQ when it routes the association to the rejector instead of
// closing it. The rejector verifies it and answers the requester with the
// A-ASSOCIATE-RJ the preamble names.
//
// Version 1 wire format (Size = 56 bytes, integers big-endian):
//
//	offset  size  field
//	0       4     magic "DGRJ" (0x44 0x47 0x52 0x4A)
//	4       1     version (1)
//	5       1     A-ASSOCIATE-RJ result (1 rejected-permanent, 2 rejected-transient)
//	6       1     A-ASSOCIATE-RJ source (1 service-user, 2 ACSE provider, 3 presentation provider)
//	7       1     A-ASSOCIATE-RJ reason/diagnostic (1-7)
//	8       8     the filter's connection id (Envoy connection.id), for logs
//	16      8     when the filter decided, Unix nanoseconds
//	24      32    HMAC-SHA256(key, bytes 0-23)
//
// The first byte, 0x44, is no PDU type (DICOM PDU types are 0x01-0x07):
// a DICOM acceptor that receives a preamble by misconfiguration refuses it
// as an unknown PDU, and the rejector never mistakes an RQ for a preamble.
//
// The package is pure Go, builds for wasip1, and Sign and Verify do not
// allocate (the filter signs on its hot path).
package rejectwire

import (
	"encoding/binary"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// Wire format constants.
const (
	// Size is the length of a version 1 preamble.
	Size = 56
	// Version is the preamble version this package writes and reads.
	Version = 1
	// MinKeyLen is the shortest key accepted: 44 base64 characters, what
	// `openssl rand -base64 32` prints (256 random bits, HMAC-SHA256's output
	// size; RFC 2104 §3).
	MinKeyLen = 44
	// MaxKeyLen is the longest key accepted: one SHA-256 block, so that the
	// key is used as is (RFC 2104 §2) and the module needs no general
	// SHA-256 (`openssl rand -base64 48` prints 64 characters).
	MaxKeyLen = 64
	// signedLen is the length of the authenticated header.
	signedLen = 24
)

// Magic is the preamble's first four bytes.
const Magic = "DGRJ"

// Error is an error of this package. The errors are constants (not
// errors.New variables) so that the filter module links only the texts it
// can return.
type Error string

// Error returns the text.
func (e Error) Error() string { return string(e) }

// Errors of NewKey, Verify and Sign; each names one cause.
const (
	// ErrShort: fewer than Size bytes.
	ErrShort = Error("rejectwire: fewer than 56 bytes")
	// ErrMagic: the bytes do not start with "DGRJ" (not from the filter).
	ErrMagic = Error(`rejectwire: no "DGRJ" preamble (the connection does not come from the dicomgate filter)`)
	// ErrVersion: an unknown preamble version.
	ErrVersion = Error("rejectwire: unsupported preamble version")
	// ErrMAC: no configured key produces the preamble's HMAC (forged, or the
	// filter and the rejector use different keys).
	ErrMAC = Error("rejectwire: preamble authentication failed (forged, or the policy's rejectKey is not one of the rejector's keys)")
	// ErrExpired: the timestamp is outside the accepted window.
	ErrExpired = Error("rejectwire: preamble timestamp outside the accepted window (replayed, or the clocks of the gateway and the rejector differ)")
	// ErrCode: result/source/reason is not an A-ASSOCIATE-RJ combination.
	ErrCode = Error("rejectwire: invalid A-ASSOCIATE-RJ result/source/reason")
	// ErrKey: a key that is not 44 to 64 base64 characters.
	ErrKey = Error("must be 44 to 64 base64 characters (A-Z a-z 0-9 + / =), e.g. from `openssl rand -base64 32`")
)

// Preamble is the decoded content of a preamble.
type Preamble struct {
	// Result, Source and Reason are the A-ASSOCIATE-RJ fields (PS3.8
	// §9.3.4).
	Result, Source, Reason byte
	// ConnID is the filter's connection id.
	ConnID uint64
	// Time is when the filter decided, Unix nanoseconds.
	Time int64
}

// Key is an HMAC-SHA256 key with its inner and outer pad blocks already
// compressed, so that a signature costs two SHA-256 compressions. The zero
// Key is unusable; create it with NewKey.
type Key struct {
	inner, outer [8]uint32
}

// NewKey prepares key for signing and verifying. A key is text: MinKeyLen
// to MaxKeyLen characters of the base64 alphabet (A-Z a-z 0-9 + / =), and
// its bytes, as written, are the HMAC key (the filter and the rejector never
// decode it, so the two cannot disagree on a decoding). Generate one with
// `openssl rand -base64 32`.
func NewKey(key string) (*Key, error) {
	if len(key) < MinKeyLen || len(key) > MaxKeyLen {
		return nil, ErrKey
	}
	var ipad, opad [64]byte
	for i := range ipad {
		var c byte
		if i < len(key) {
			c = key[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
				return nil, ErrKey
			}
		}
		ipad[i] = c ^ 0x36
		opad[i] = c ^ 0x5c
	}
	k := &Key{inner: iv, outer: iv}
	compress(&k.inner, &ipad)
	compress(&k.outer, &opad)
	return k, nil
}

// mac is HMAC-SHA256 of the 24-byte header.
func (k *Key) mac(hdr []byte) [32]byte {
	h := k.inner
	finish(&h, hdr[:signedLen], 64+signedLen)
	in := digest(&h)
	h = k.outer
	finish(&h, in[:], 64+32)
	return digest(&h)
}

// validCode reports whether result/source/reason is an A-ASSOCIATE-RJ
// combination PS3.8 §9.3.4 defines: result 1 or 2; source 1 (service-user)
// with reason 1, 2, 3 or 7, source 2 (ACSE provider) or 3 (presentation
// provider) with reason 1 or 2.
func validCode(result, source, reason byte) bool {
	r := pdu.RJResult(result)
	return (r == pdu.RJResultPermanent || r == pdu.RJResultTransient) &&
		pdu.RJDiagnostic{Source: pdu.RJSource(source), Reason: pdu.RJReason(reason)}.Defined()
}

// Sign writes the preamble of p into dst. p's result/source/reason must be
// an A-ASSOCIATE-RJ combination (policy.RejectCode returns one); Verify
// refuses any other.
func (k *Key) Sign(dst *[Size]byte, p Preamble) {
	copy(dst[0:4], Magic)
	dst[4] = Version
	dst[5], dst[6], dst[7] = p.Result, p.Source, p.Reason
	binary.BigEndian.PutUint64(dst[8:], p.ConnID)
	binary.BigEndian.PutUint64(dst[16:], uint64(p.Time))
	m := k.mac(dst[:signedLen])
	copy(dst[signedLen:], m[:])
}

// Verify checks b (at least Size bytes; only the first Size are read)
// against keys, any of which may have signed it (several keys allow a
// rotation, see the package documentation in sdk/policy/README.md), and
// requires its timestamp within maxAge of now (both Unix nanoseconds; a
// timestamp up to maxAge in the future is accepted as clock skew). It
// checks the MAC before trusting any field.
func Verify(b []byte, keys []*Key, now, maxAge int64) (Preamble, error) {
	if len(b) < Size {
		return Preamble{}, ErrShort
	}
	if string(b[:4]) != Magic {
		return Preamble{}, ErrMagic
	}
	if b[4] != Version {
		return Preamble{}, ErrVersion
	}
	ok := false
	for _, k := range keys {
		m := k.mac(b[:signedLen])
		if equal(m[:], b[signedLen:Size]) {
			ok = true
			break
		}
	}
	if !ok {
		return Preamble{}, ErrMAC
	}
	p := Preamble{Result: b[5], Source: b[6], Reason: b[7],
		ConnID: binary.BigEndian.Uint64(b[8:]), Time: int64(binary.BigEndian.Uint64(b[16:]))}
	if d := now - p.Time; d > maxAge || d < -maxAge {
		return p, ErrExpired
	}
	if !validCode(p.Result, p.Source, p.Reason) {
		return p, ErrCode
	}
	return p, nil
}

// equal compares in constant time (a MAC comparison must not reveal how
// many leading bytes matched).
func equal(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := range a {
		v |= a[i] ^ b[i]
	}
	return v == 0
}
