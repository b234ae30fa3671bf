package scu

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/internal/demopacs"
	"github.com/dicomgate/dicomgate/internal/pduconn"
	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// The requester against the demo acceptor and against hand-built answers. Nothing here is timed.

func storeConfig(addr string) Config {
	return Config{Addr: addr, CallingAE: "BENCH-SCU", CalledAE: "BENCH-PACS", Timeout: 10 * time.Second,
		Contexts: []Context{{UIDVerification, UIDImplicitVRLittleEndian}, {UIDSecondaryCapture, UIDImplicitVRLittleEndian}}}
}

func TestEchoAndStoreAgainstDemoPACS(t *testing.T) {
	var got []demopacs.Stored
	s, err := demopacs.Start("127.0.0.1:0", demopacs.Config{Dir: t.TempDir(), OnStored: func(st demopacs.Stored) { got = append(got, st) }})
	require.NoError(t, err)
	defer s.Close()
	cfg := storeConfig(s.Addr().String())

	tm, err := Run(cfg, cfg.RQ())
	require.NoError(t, err)
	require.Positive(t, tm.RQAC)
	require.GreaterOrEqual(t, tm.Total, tm.Connect+tm.RQAC)

	in, err := GenerateInstance(1<<20, demopacs.NewUID())
	require.NoError(t, err)
	a, _, err := Associate(cfg, cfg.RQ())
	require.NoError(t, err)
	require.NoError(t, a.Echo(1))
	id, ok := a.ContextID(in.Context())
	require.True(t, ok)
	require.Equal(t, uint8(3), id)
	st, err := EncodeStream(in, id, DefaultMaxPDU)
	require.NoError(t, err)
	require.NoError(t, a.Store(st, 7, 10*time.Second))
	require.NoError(t, a.Release())

	require.Len(t, got, 1)
	require.Equal(t, int64(1<<20), got[0].DataSetBytes)
	require.Equal(t, in.SOPInstance, got[0].SOPInstanceUID)
	require.Equal(t, UIDSecondaryCapture, got[0].SOPClassUID)
	require.Equal(t, "BENCH-SCU", got[0].CallingAETitle)
}

// A C-STORE-RSP with a failing status is a *pduconn.StatusError, not a success: the demo acceptor answers
// 0xA700 (out of resources) when its store directory is not a directory.
func TestStoreFailingStatus(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	s, err := demopacs.Start("127.0.0.1:0", demopacs.Config{Dir: notDir})
	require.NoError(t, err)
	defer s.Close()
	cfg := storeConfig(s.Addr().String())
	in, err := GenerateInstance(4096, demopacs.NewUID())
	require.NoError(t, err)
	a, _, err := Associate(cfg, cfg.RQ())
	require.NoError(t, err)
	defer a.Abort()
	st, err := EncodeStream(in, 3, DefaultMaxPDU)
	require.NoError(t, err)
	err = a.Store(st, 3, 10*time.Second)
	var se *pduconn.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, demopacs.StatusOutOfResources, se.Status)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "store", e.Step)
}

// answer accepts one connection, reads the A-ASSOCIATE-RQ and writes reply (nil: closes).
func answer(t *testing.T, reply []byte) (string, <-chan pdu.AssociateRQ) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	rqs := make(chan pdu.AssociateRQ, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := pduconn.NewReader(c)
		p, err := r.ReadPDU()
		if err != nil {
			return
		}
		var rq pdu.AssociateRQ
		if r.Dec.DecodeAssociateRQ(p, &rq) == nil {
			rqs <- rq
		}
		if reply != nil {
			_, _ = c.Write(reply)
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	return ln.Addr().String(), rqs
}

func TestRejectAndCloseAreTold(t *testing.T) {
	addr, _ := answer(t, (&pdu.AssociateRJ{Result: 1, Source: 1, Reason: 3}).AppendEncode(nil))
	cfg := storeConfig(addr)
	_, _, err := Associate(cfg, cfg.RQ())
	var rj *RejectedError
	require.ErrorAs(t, err, &rj)
	require.Equal(t, RejectedError{Result: 1, Source: 1, Reason: 3}, *rj)

	addr, _ = answer(t, nil)
	cfg = storeConfig(addr)
	_, _, err = Associate(cfg, cfg.RQ())
	require.True(t, errors.Is(err, io.EOF), "a close before the AC is io.EOF, got %v", err)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "associate", e.Step)
}

// An AC that accepts no proposed context does not open the association.
func TestACWithoutAcceptedContextFails(t *testing.T) {
	ac := pdu.AssociateAC{ProtocolVersion: 1, CalledAETitleRaw: make([]byte, 16), CallingAETitleRaw: make([]byte, 16),
		ApplicationContext:   []byte(UIDApplicationContext),
		PresentationContexts: []pdu.PresentationContextAC{{ID: 1, Result: 3, TransferSyntax: []byte(UIDImplicitVRLittleEndian)}},
		UserInformation:      pdu.UserInformation{MaxLength: 16384, HasMaxLength: true, ImplementationClassUID: []byte("1.2")}}
	addr, _ := answer(t, ac.AppendEncode(nil))
	cfg := storeConfig(addr)
	_, _, err := Associate(cfg, cfg.RQ())
	require.ErrorContains(t, err, "accepts none of the proposed presentation contexts")
}

func TestUserIdentityInTheRQ(t *testing.T) {
	for _, tc := range []struct {
		user, pass string
		typ        uint8
	}{{"alice", "", pdu.UserIdentityUsername}, {"alice", "s3cret", pdu.UserIdentityUsernamePasscode}} {
		cfg := storeConfig("")
		cfg.Username, cfg.Passcode = tc.user, tc.pass
		var rq pdu.AssociateRQ
		require.NoError(t, (&pdu.Decoder{}).DecodeAssociateRQ(cfg.RQ(), &rq))
		require.True(t, rq.UserInformation.HasUserIdentity)
		require.Equal(t, tc.typ, rq.UserInformation.UserIdentity.Type)
		require.Equal(t, tc.user, string(rq.UserInformation.UserIdentity.Primary))
		require.Equal(t, tc.pass, string(rq.UserInformation.UserIdentity.Secondary))
		require.Len(t, rq.PresentationContexts, 2)
		require.Equal(t, uint8(3), rq.PresentationContexts[1].ID)
	}
}

func TestStreamFraming(t *testing.T) {
	const size = 100_000
	in, err := GenerateInstance(size, "1.2.3.4")
	require.NoError(t, err)
	st, err := EncodeStream(in, 5, 16384)
	require.NoError(t, err)
	var f pdu.Framer
	var d pdu.Decoder
	var pd pdu.PDataTF
	var data []byte
	var lasts int
	rest := st.Data
	for len(rest) > 0 {
		p, r, err := f.Next(rest)
		require.NoError(t, err)
		rest = r
		require.LessOrEqual(t, len(p)-pdu.HeaderLen, 16384, "PDU length above the acceptor's maximum")
		require.NoError(t, d.DecodePDataTF(p, &pd))
		require.Len(t, pd.PDVs, 1)
		v := pd.PDVs[0]
		require.False(t, v.IsCommand())
		require.Equal(t, uint8(5), v.ContextID)
		data = append(data, v.Data...)
		if v.IsLast() {
			lasts++
			require.Empty(t, rest, "the last fragment must end the stream")
		}
	}
	require.Equal(t, in.DataSet, data)
	require.Equal(t, 1, lasts)

	_, err = GenerateInstance(101, "1.2.3")
	require.ErrorContains(t, err, "even size")
}

func TestReadPart10(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sample.dcm")
	inst, err := demopacs.WriteSample(path)
	require.NoError(t, err)
	in, err := ReadPart10(path)
	require.NoError(t, err)
	require.Equal(t, demopacs.SecondaryCaptureSOPClass, in.SOPClass)
	require.Equal(t, inst, in.SOPInstance)
	require.Equal(t, demopacs.ExplicitVRLittleEndian, in.TransferSyntax)
	require.Equal(t, uint16(0x0008), uint16(in.DataSet[0])|uint16(in.DataSet[1])<<8, "the data set starts after the meta group")

	bad := filepath.Join(dir, "bad.dcm")
	require.NoError(t, os.WriteFile(bad, []byte("not dicom"), 0o600))
	_, err = ReadPart10(bad)
	require.ErrorContains(t, err, `no "DICM" after the 128-byte preamble`)
	metaOnly := filepath.Join(dir, "meta.dcm")
	require.NoError(t, os.WriteFile(metaOnly, demopacs.FileMetaInformation("1.2", "1.2.3", UIDImplicitVRLittleEndian, ""), 0o600))
	_, err = ReadPart10(metaOnly)
	require.ErrorContains(t, err, "no data set")
}
