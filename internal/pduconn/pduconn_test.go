package pduconn

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/dicomgate/dicomgate/sdk/pdu"
	"github.com/stretchr/testify/require"
)

// storeRSP is a C-STORE-RSP in one P-DATA-TF, built by hand (implicit VR little endian, PS3.7 §9.3.1.2).
func storeRSP(msgID, status uint16, instance string) []byte {
	var body []byte
	body = AppendElem(body, 0x0000, 0x0100, binary.LittleEndian.AppendUint16(nil, 0x8001))
	body = AppendElem(body, 0x0000, 0x0120, binary.LittleEndian.AppendUint16(nil, msgID))
	body = AppendElem(body, 0x0000, 0x0800, binary.LittleEndian.AppendUint16(nil, 0x0101))
	body = AppendElem(body, 0x0000, 0x0900, binary.LittleEndian.AppendUint16(nil, status))
	body = AppendElem(body, 0x0000, 0x1000, PadUID(instance))
	cmd := append(AppendElem(nil, 0x0000, 0x0000, binary.LittleEndian.AppendUint32(nil, uint32(len(body)))), body...)
	return (&pdu.PDataTF{PDVs: []pdu.PDV{{ContextID: 1, MessageControlHeader: pdu.MCHCommand | pdu.MCHLast, Data: cmd}}}).AppendEncode(nil)
}

// serve writes b to the client side of a pipe in chunks of n bytes, then closes it.
func serve(t *testing.T, b []byte, n int) *Reader {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close() })
	go func() {
		defer server.Close()
		for len(b) > 0 {
			k := min(n, len(b))
			if _, err := server.Write(b[:k]); err != nil {
				return
			}
			b = b[k:]
		}
	}()
	return NewReader(client)
}

func TestAwaitStoreRSPChecksEveryField(t *testing.T) {
	const inst = "1.2.3.4.5"
	require.NoError(t, serve(t, storeRSP(7, 0, inst), 3).AwaitStoreRSP(7, inst), "success, PDU split in 3-byte reads")
	require.ErrorContains(t, serve(t, storeRSP(8, 0, inst), 64).AwaitStoreRSP(7, inst), "answers message 8, want 7")
	err := serve(t, storeRSP(7, 0xA700, inst), 64).AwaitStoreRSP(7, inst)
	var se *StatusError
	require.ErrorAs(t, err, &se, "a failing status is a *StatusError (tools count it apart from protocol errors)")
	require.Equal(t, uint16(0xA700), se.Status)
	require.ErrorContains(t, err, "C-STORE-RSP status 0xa700")
	require.ErrorContains(t, serve(t, storeRSP(7, 0, inst), 64).AwaitRSP(0x8030, 7, ""), "got C-STORE-RSP instead of C-ECHO-RSP")
	require.ErrorContains(t, serve(t, storeRSP(7, 0, "1.2.3.4.6"), 64).AwaitStoreRSP(7, inst), `names instance "1.2.3.4.6"`)
	rel := (&pdu.ReleaseRP{}).AppendEncode(nil)
	require.ErrorContains(t, serve(t, rel, 64).AwaitStoreRSP(7, inst), "A-RELEASE-RP while waiting for the C-STORE-RSP")
}

func TestReadPDUEndOfStreamInsideAPDU(t *testing.T) {
	b := storeRSP(1, 0, "1.2")
	_, err := serve(t, b[:len(b)-1], 5).ReadPDU()
	require.True(t, errors.Is(err, io.ErrUnexpectedEOF), "got %v", err)
}

// StoreCommand reads back, with sdk/pdu's command-set reader, as the C-STORE-RQ it means.
func TestStoreCommandReadsBack(t *testing.T) {
	var cs pdu.CommandSet
	require.NoError(t, pdu.ReadCommandSet(StoreCommand("1.2.840.10008.5.1.4.1.1.7", 42, "1.2.3"), &cs))
	require.EqualValues(t, 0x0001, cs.CommandField)
	require.EqualValues(t, 42, cs.MessageID)
	require.Equal(t, "1.2.840.10008.5.1.4.1.1.7", string(cs.AffectedSOPClassUID))
	require.Equal(t, "1.2.3", string(cs.AffectedSOPInstanceUID))
}

// EchoCommand reads back as a C-ECHO-RQ without a data set.
func TestEchoCommandReadsBack(t *testing.T) {
	var cs pdu.CommandSet
	require.NoError(t, pdu.ReadCommandSet(EchoCommand(9), &cs))
	require.EqualValues(t, 0x0030, cs.CommandField)
	require.EqualValues(t, 9, cs.MessageID)
	require.Equal(t, "1.2.840.10008.1.1", string(cs.AffectedSOPClassUID))
	require.False(t, cs.HasDataSet())
}

// The peer closing between two PDUs is a clean io.EOF (an acceptor tells it from a cut PDU).
func TestReadPDUEndOfStreamBetweenPDUs(t *testing.T) {
	r := serve(t, storeRSP(1, 0, "1.2"), 7)
	_, err := r.ReadPDU()
	require.NoError(t, err)
	_, err = r.ReadPDU()
	require.ErrorIs(t, err, io.EOF)
	require.False(t, errors.Is(err, io.ErrUnexpectedEOF))
}
