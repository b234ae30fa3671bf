package demopacs

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

func capture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "sdk", "pdu", "testdata", name))
	require.NoError(t, err)
	return b
}

// splitPDUs splits a stream into whole PDUs.
func splitPDUs(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var f pdu.Framer
	var out [][]byte
	for len(b) > 0 {
		p, rest, err := f.Next(b)
		require.NoError(t, err)
		out = append(out, p)
		b = rest
	}
	return out
}

func start(t *testing.T, cfg Config) (*Server, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	cfg.Logf = lb.logf
	s, err := Start("127.0.0.1:0", cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, lb
}

type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(strings.TrimSpace(fmt.Sprintf(format, args...)) + "\n")
}

func (l *logBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// play sends a captured requester stream and returns everything the acceptor
// answered until it closed (or until the requester side would close: we close
// after reading the A-RELEASE-RP).
func play(t *testing.T, s *Server, stream []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	go c.Write(stream)
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if bytes.HasSuffix(got, []byte{0x06, 0x00, 0, 0, 0, 4, 0, 0, 0, 0}) {
			return got // A-RELEASE-RP: the requester closes now
		}
		if err != nil {
			return got
		}
	}
}

func commandOf(t *testing.T, p []byte) pdu.CommandSet {
	t.Helper()
	var d pdu.Decoder
	var pd pdu.PDataTF
	require.NoError(t, d.DecodePDataTF(p, &pd))
	var data []byte
	for _, v := range pd.PDVs {
		require.True(t, v.IsCommand())
		data = append(data, v.Data...)
	}
	var cs pdu.CommandSet
	require.NoError(t, pdu.ReadCommandSet(data, &cs))
	return cs
}

func TestEcho(t *testing.T) {
	s, logs := start(t, Config{Name: "PACS_A"})
	pdus := splitPDUs(t, play(t, s, capture(t, "echo_default.c2s.bin")))
	require.Len(t, pdus, 3, "want A-ASSOCIATE-AC, P-DATA-TF (C-ECHO-RSP), A-RELEASE-RP")

	var d pdu.Decoder
	var ac pdu.AssociateAC
	require.NoError(t, (pdu.Decoder{}).Strict().DecodeAssociateAC(pdus[0], &ac))
	require.Equal(t, "ANY-SCP", string(ac.CalledAETitle()))
	require.Equal(t, "ECHOSCU", string(ac.CallingAETitle()))
	require.Equal(t, "ANY-SCP         ", string(ac.CalledAETitleRaw), "the AC echoes the RQ's AE fields byte for byte")
	var rq pdu.AssociateRQ
	req := splitPDUs(t, capture(t, "echo_default.c2s.bin"))
	require.NoError(t, d.DecodeAssociateRQ(req[0], &rq))
	require.Len(t, ac.PresentationContexts, len(rq.PresentationContexts))
	for i, pc := range ac.PresentationContexts {
		require.Equal(t, rq.PresentationContexts[i].ID, pc.ID)
		require.EqualValues(t, 0, pc.Result)
		require.Contains(t, []string{ImplicitVRLittleEndian, ExplicitVRLittleEndian}, string(pc.TransferSyntax))
	}
	require.EqualValues(t, 16384, ac.UserInformation.MaxLength)
	require.Equal(t, ImplementationClassUID, string(ac.UserInformation.ImplementationClassUID))

	cs := commandOf(t, pdus[1])
	require.EqualValues(t, 0x8030, cs.CommandField)
	require.EqualValues(t, 1, cs.MessageIDBeingRespondedTo)
	require.True(t, cs.HasStatus)
	require.EqualValues(t, 0, cs.Status)
	require.False(t, cs.HasDataSet())
	require.Equal(t, VerificationSOPClass, string(cs.AffectedSOPClassUID))
	require.Equal(t, pdu.TypeReleaseRP, pdu.Type(pdus[2][0]))
	require.Contains(t, logs.String(), "PACS_A: C-ECHO from ECHOSCU")
}

// storedDataSet returns the data set bytes of the C-STORE in a requester
// stream (concatenated data-set PDV fragments).
func storedDataSets(t *testing.T, stream []byte) [][]byte {
	var d pdu.Decoder
	var pd pdu.PDataTF
	var out [][]byte
	var cur []byte
	for _, p := range splitPDUs(t, stream) {
		if pdu.Type(p[0]) != pdu.TypePDataTF {
			continue
		}
		require.NoError(t, d.DecodePDataTF(p, &pd))
		for _, v := range pd.PDVs {
			if v.IsCommand() {
				continue
			}
			cur = append(cur, v.Data...)
			if v.IsLast() {
				out = append(out, cur)
				cur = nil
			}
		}
	}
	return out
}

func TestStoreWritesValidPart10(t *testing.T) {
	for _, name := range []string{"store_default.c2s.bin", "store_multi.c2s.bin"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var stored []Stored
			var mu sync.Mutex
			s, _ := start(t, Config{Name: "PACS_B", Dir: dir, OnStored: func(st Stored) { mu.Lock(); stored = append(stored, st); mu.Unlock() }})
			stream := capture(t, name)
			pdus := splitPDUs(t, play(t, s, stream))
			datasets := storedDataSets(t, stream)
			require.NotEmpty(t, datasets)
			// AC, one C-STORE-RSP per instance, RP.
			require.Len(t, pdus, 2+len(datasets))
			for _, p := range pdus[1 : 1+len(datasets)] {
				cs := commandOf(t, p)
				require.EqualValues(t, 0x8001, cs.CommandField)
				require.EqualValues(t, 0, cs.Status)
				require.NotEmpty(t, cs.AffectedSOPInstanceUID)
			}
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, stored, len(datasets))
			for i, st := range stored {
				file, err := os.ReadFile(st.Path)
				require.NoError(t, err)
				require.Equal(t, "DICM", string(file[128:132]))
				require.True(t, bytes.HasSuffix(file, datasets[i]), "the data set must be stored byte for byte after the meta header")
				ds, err := dicom.ParseFile(st.Path, nil)
				require.NoError(t, err, "suyashkumar/dicom must parse the stored file")
				el, err := ds.FindElementByTag(tag.MediaStorageSOPInstanceUID)
				require.NoError(t, err)
				require.Equal(t, st.SOPInstanceUID, strings.TrimRight(dicom.MustGetStrings(el.Value)[0], "\x00"))
				el, err = ds.FindElementByTag(tag.SOPInstanceUID)
				require.NoError(t, err, "the data set itself must parse")
				require.Equal(t, st.SOPInstanceUID, strings.TrimRight(dicom.MustGetStrings(el.Value)[0], "\x00"))
				el, err = ds.FindElementByTag(tag.TransferSyntaxUID)
				require.NoError(t, err)
				require.Equal(t, st.TransferSyntaxUID, strings.TrimRight(dicom.MustGetStrings(el.Value)[0], "\x00"))
				require.Equal(t, filepath.Join(dir, st.SOPInstanceUID+".dcm"), st.Path)
			}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			for _, e := range entries {
				require.False(t, strings.HasSuffix(e.Name(), ".tmp"), "temporary file %s left behind", e.Name())
			}
		})
	}
}

// An association aborted (A-ABORT) or dropped in the middle of a data set
// leaves no file, neither under its final name nor as a temporary file.
func TestAbortMidDataSetLeavesNothing(t *testing.T) {
	// storescu sending a 128 KiB MR in 16 KiB P-DATA-TF PDUs (the capture
	// ends before the data set is complete).
	pdus := splitPDUs(t, capture(t, "store_abort_during.c2s.bin"))
	require.Greater(t, len(pdus), 5)
	var head []byte // A-ASSOCIATE-RQ, C-STORE-RQ command, two data set fragments
	for _, p := range pdus[:4] {
		head = append(head, p...)
	}
	abort := (&pdu.Abort{}).AppendEncode(nil)
	for _, tc := range []struct {
		name string
		tail []byte
	}{
		{"a-abort", abort},
		{"dropped", pdus[4][:len(pdus[4])/2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := start(t, Config{Dir: dir})
			c, err := net.Dial("tcp", s.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write(head)
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				entries, _ := os.ReadDir(dir)
				return len(entries) == 1 && strings.HasSuffix(entries[0].Name(), ".tmp")
			}, 5*time.Second, 5*time.Millisecond, "a temporary file is written while the data set arrives")
			_, err = c.Write(tc.tail)
			require.NoError(t, err)
			c.Close()
			require.Eventually(t, func() bool {
				entries, err := os.ReadDir(dir)
				return err == nil && len(entries) == 0
			}, 5*time.Second, 5*time.Millisecond, "nothing may remain after the association ends mid data set")
		})
	}
}

// Non-DICOM input and protocol violations end the association without a
// panic; a PDV on a context that was never accepted is answered with A-ABORT.
func TestProtocolErrors(t *testing.T) {
	s, _ := start(t, Config{})
	got := play(t, s, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.Empty(t, got)

	rq := splitPDUs(t, capture(t, "echo_default.c2s.bin"))[0]
	bad := pdu.PDataTF{PDVs: []pdu.PDV{{ContextID: 99, MessageControlHeader: 3, Data: []byte{0, 0, 0, 0}}}}
	got = play(t, s, append(append([]byte{}, rq...), bad.AppendEncode(nil)...))
	pdus := splitPDUs(t, got)
	require.Len(t, pdus, 2)
	require.Equal(t, pdu.TypeAssociateAC, pdu.Type(pdus[0][0]))
	var ab pdu.Abort
	require.NoError(t, (&pdu.Decoder{}).DecodeAbort(pdus[1], &ab))
	require.EqualValues(t, 2, ab.Source)
}

func TestChooseTransferSyntax(t *testing.T) {
	b := func(s ...string) [][]byte {
		var out [][]byte
		for _, x := range s {
			out = append(out, []byte(x))
		}
		return out
	}
	require.Equal(t, ExplicitVRLittleEndian, chooseTransferSyntax(b("1.2.840.10008.1.2.4.70", ExplicitVRLittleEndian, ImplicitVRLittleEndian)))
	require.Equal(t, ImplicitVRLittleEndian, chooseTransferSyntax(b(ImplicitVRLittleEndian, ExplicitVRLittleEndian)))
	require.Equal(t, "1.2.840.10008.1.2.4.70", chooseTransferSyntax(b("1.2.840.10008.1.2.4.70")))
	require.Equal(t, "", chooseTransferSyntax(nil))
}

func TestInstanceFileName(t *testing.T) {
	require.Equal(t, "1.2.3.dcm", instanceFileName("1.2.3"))
	n := instanceFileName("/../etc/passwd")
	require.NotContains(t, n, "/")
	require.Equal(t, n, filepath.Base(n))
	require.True(t, strings.HasPrefix(instanceFileName(""), "instance-"))
}

// The sample instance `dicomgate serve` offers to storescu is a valid Part 10
// file, and storing it through the acceptor reproduces it.
func TestWriteSample(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sample.dcm")
	inst, err := WriteSample(path)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(inst, "2.25."))
	ds, err := dicom.ParseFile(path, nil)
	require.NoError(t, err)
	el, err := ds.FindElementByTag(tag.SOPInstanceUID)
	require.NoError(t, err)
	require.Equal(t, inst, strings.TrimRight(dicom.MustGetStrings(el.Value)[0], "\x00"))
	el, err = ds.FindElementByTag(tag.PatientName)
	require.NoError(t, err)
	require.Equal(t, "DEMO^PATIENT", dicom.MustGetStrings(el.Value)[0])
	el, err = ds.FindElementByTag(tag.Rows)
	require.NoError(t, err)
	require.Equal(t, []int{8}, el.Value.GetValue())
}
