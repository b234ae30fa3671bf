package e2e

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/internal/filtertable"
	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// reading is what an implementation made of the A-ASSOCIATE-RQ fields a policy (or a PACS) decides by.
type reading struct {
	Called, Calling string
	AppContext      string
	Contexts        []ctxReading
	ImplClassUID    string
	ImplVersion     string
	MaxPDU          string
	// Username is the username of a type 1 or 2 user identity ("" and HasUsername false when there is none).
	Username    string
	HasUsername bool
}

type ctxReading struct {
	ID        int
	Abstract  string
	Transfers []string
}

// sdkReading is how sdk/pdu (and so the filter, which compares the trimmed titles) reads rq.
func sdkReading(rq *pdu.AssociateRQ) reading {
	r := reading{
		Called: string(rq.CalledAETitle()), Calling: string(rq.CallingAETitle()),
		AppContext:   string(rq.ApplicationContext),
		ImplClassUID: string(rq.UserInformation.ImplementationClassUID),
		ImplVersion:  string(rq.UserInformation.ImplementationVersionName),
	}
	if rq.UserInformation.HasMaxLength {
		r.MaxPDU = strconv.FormatUint(uint64(rq.UserInformation.MaxLength), 10)
	}
	for _, pc := range rq.PresentationContexts {
		c := ctxReading{ID: int(pc.ID), Abstract: string(pc.AbstractSyntax)}
		for _, ts := range pc.TransferSyntaxes {
			c.Transfers = append(c.Transfers, string(ts))
		}
		r.Contexts = append(r.Contexts, c)
	}
	if id := rq.UserInformation.UserIdentity; rq.UserInformation.HasUserIdentity &&
		(id.Type == pdu.UserIdentityUsername || id.Type == pdu.UserIdentityUsernamePasscode) {
		r.Username, r.HasUsername = string(id.Primary), true
	}
	return r
}

// dcmtkReading parses what storescp -ll trace logged while it parsed one A-ASSOCIATE-RQ (DCMTK 3.6.7): the AE
// titles as parseAssociate stored them ("Called AP Title:  X", after strncpy and trim_trailing_spaces), every
// sub-item as parseSubItem stored it ("Subitem parse: Type 30, Length 0017, Content: X", a C string), contexts
// ("Presentation Context ID: 01", hex), and from ASC_dumpParameters the values the association kept ("Their
// Implementation Class UID", "Their Implementation Version Name", "Their Max PDU Receive Size", the user identity's
// "Username: [X]"). ok is false when dcmtk did not accept the PDU (no "I: Association Received" line).
func dcmtkReading(log string) (r reading, ok bool) {
	var cur *ctxReading
	after := func(line, label string) (string, bool) {
		i := strings.Index(line, label)
		if i < 0 {
			return "", false
		}
		return line[i+len(label):], true
	}
	first := map[string]bool{}
	for _, line := range strings.Split(log, "\n") {
		if v, found := after(line, "T: Called AP Title:  "); found {
			r.Called = v
		} else if v, found := after(line, "T: Calling AP Title: "); found {
			r.Calling = v
		} else if v, found := after(line, "T: Presentation Context ID: "); found {
			id, _ := strconv.ParseInt(strings.TrimSpace(v), 16, 32)
			r.Contexts = append(r.Contexts, ctxReading{ID: int(id)})
			cur = &r.Contexts[len(r.Contexts)-1]
		} else if v, found := after(line, "T: Subitem parse: Type "); found {
			typ, rest, _ := strings.Cut(v, ",")
			_, content, _ := strings.Cut(rest, "Content: ")
			switch typ {
			case "10":
				r.AppContext = content
			case "30":
				if cur != nil {
					cur.Abstract = content
				}
			case "40":
				if cur != nil {
					cur.Transfers = append(cur.Transfers, content)
				}
			}
		} else if strings.Contains(line, "I: Association Received") {
			ok = true
		} else {
			for _, f := range []struct {
				label string
				dst   *string
			}{
				{"D: Their Implementation Class UID:", &r.ImplClassUID},
				{"D: Their Implementation Version Name:", &r.ImplVersion},
				{"D: Their Max PDU Receive Size:", &r.MaxPDU},
				{"D:   Username: [", &r.Username},
			} {
				if v, found := after(line, f.label); found && !first[f.label] {
					first[f.label] = true
					*f.dst = strings.TrimLeft(v, " ")
					if f.dst == &r.Username {
						*f.dst = strings.TrimSuffix(v, "]")
						r.HasUsername = true
					}
				}
			}
		}
	}
	return r, ok
}

// dcmtkRead starts a fresh `storescp -ll trace` (so its log holds exactly one association), sends rq raw, waits for
// the answer (A-ASSOCIATE-AC/RJ or a close), and returns storescp's log.
func dcmtkRead(t *testing.T, label string, rq []byte) string {
	t.Helper()
	port := mustFreePort(t)
	p, err := startProc(label, nil, "storescp", "-ll", "trace", "+xa", "-aet", "DIFFSCP", "-od", t.TempDir(), strconv.Itoa(port))
	require.NoError(t, err)
	defer func() { _ = p.stop() }()
	require.NoError(t, waitListening(p, port, 20*time.Second))
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	// A refused RQ may get neither an answer nor a close from storescp: stop reading after 5 s.
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Write(rq)
	require.NoError(t, err)
	hdr := make([]byte, 6)
	if _, err := io.ReadFull(c, hdr); err == nil {
		_, _ = io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(hdr[2:])))
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isNetError(err) {
		require.NoError(t, err, "reading storescp's answer")
	}
	// storescp logs the parse before it answers; "I: Association Received" (accepted) or an error line follows.
	_, _ = p.waitOutput("Association Received", 2*time.Second)
	_ = c.Close()
	require.NoError(t, p.stop())
	return p.out.String()
}

// isNetError reports a socket error (storescp may reset the connection after refusing the RQ).
func isNetError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// diffCase is one RQ of the differential corpus. differs marks the known parser differentials: dcmtk reads the RQ
// differently from sdk/pdu with AllowAmbiguous (the decoder without its ambiguity checks, i.e. the filter before
// issue 11), so the default decoder must refuse it.
type diffCase struct {
	name    string
	rq      []byte
	differs bool
}

// differentialCorpus is the first A-ASSOCIATE-RQ of every plain capture in sdk/pdu/testdata (dcmtk, Orthanc) plus
// the generated edge cases (issue 11): NUL inside or padding an AE title, leading spaces, control characters,
// backslash, UIDs with junk, padding or over 64 characters, repeated singleton items and sub-items, identity
// smuggling.
func differentialCorpus(t *testing.T) []diffCase {
	t.Helper()
	dir := filepath.Join(repoRoot, "sdk", "pdu", "testdata")
	idx, err := os.ReadFile(filepath.Join(dir, "index.json"))
	require.NoError(t, err)
	var index struct {
		Captures []struct {
			Name  string `json:"name"`
			Files struct {
				C2S string `json:"c2s"`
			} `json:"files"`
		} `json:"captures"`
	}
	require.NoError(t, json.Unmarshal(idx, &index))
	var out []diffCase
	for _, c := range index.Captures {
		b, err := os.ReadFile(filepath.Join(dir, c.Files.C2S))
		require.NoError(t, err)
		rq := filtertable.FirstPDU(b)
		if len(rq) < 74 || rq[0] != 0x01 || len(rq) != 6+int(binary.BigEndian.Uint32(rq[2:6])) {
			continue // TLS or not an RQ
		}
		out = append(out, diffCase{name: "capture " + c.Name, rq: rq})
	}
	require.GreaterOrEqual(t, len(out), 20, "captures with an A-ASSOCIATE-RQ in %s", dir)

	b, err := os.ReadFile(filepath.Join(dir, "echo_default.c2s.bin"))
	require.NoError(t, err)
	echo := filtertable.FirstPDU(b)
	ae := filtertable.WithRawAETitle
	ui := filtertable.WithUserInfoSubItems
	id := filtertable.UserIdentityItem
	item := func(typ byte, content ...[]byte) []byte {
		var c []byte
		for _, p := range content {
			c = append(c, p...)
		}
		return append([]byte{typ, 0, byte(len(c) >> 8), byte(len(c))}, c...)
	}
	appendItems := func(rq []byte, extra ...[]byte) []byte {
		return filtertable.WithVariableItems(rq, func(items [][]byte) [][]byte { return append(items, extra...) })
	}
	ctStorage := "1.2.840.10008.5.1.4.1.1.2"
	return append(out,
		diffCase{"calling AE CT1 NUL SPOOF", ae(echo, 26, "CT1\x00SPOOF       "), true},
		diffCase{"calling AE NUL padded", ae(echo, 26, "CT1\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), false},
		diffCase{"called AE with leading spaces", ae(echo, 10, "  ANY-SCP       "), true},
		diffCase{"calling AE with a tab", ae(echo, 26, "CT1\t            "), false},
		diffCase{"calling AE with a backslash", ae(echo, 26, "CT\\1            "), false},
		diffCase{"calling AE with a Latin-1 byte", ae(echo, 26, "CT\xe9            "), false},
		diffCase{"calling AE with inner space", ae(echo, 26, "CT 1            "), false},
		diffCase{"calling AE of 16 characters", ae(echo, 26, "CALLING_AE_16CHR"), false},
		diffCase{"abstract syntax NUL junk", filtertable.WithAbstractSyntax(echo, "1.2.840.10008.1.1\x00junk"), true},
		diffCase{"abstract syntax with one trailing NUL", filtertable.WithAbstractSyntax(echo, "1.2.840.10008.1.1\x00"), false},
		diffCase{"abstract syntax with two trailing NULs", filtertable.WithAbstractSyntax(echo, "1.2.840.10008.1.1\x00\x00"), true},
		diffCase{"abstract syntax with a trailing space", filtertable.WithAbstractSyntax(echo, "1.2.840.10008.1.1 "), false},
		diffCase{"abstract syntax with a leading zero", filtertable.WithAbstractSyntax(echo, "1.2.840.010008.1.1"), false},
		diffCase{"abstract syntax of 65 characters", filtertable.WithAbstractSyntax(echo, "1."+strings.Repeat("2", 63)), false},
		diffCase{"two user identities", ui(echo, id(1, "alice", ""), id(1, "mallory", "")), true},
		diffCase{"two user information items", appendItems(ui(echo, id(1, "alice", "")), item(0x50, id(1, "mallory", ""))), true},
		diffCase{"identity hidden in a type-1 secondary field", ui(echo, id(1, "alice", string(id(1, "mallory", "")))), true},
		diffCase{"username with a NUL inside", ui(echo, id(2, "alice\x00mallory", "pw")), true},
		diffCase{"UTF-8 username with a passcode", ui(echo, id(2, "jörg", "secret")), false},
		diffCase{"AC presentation context in the RQ", appendItems(echo, item(0x21, []byte{3, 0, 0, 0},
			item(0x30, []byte(ctStorage)), item(0x40, []byte("1.2.840.10008.1.2")))), true},
		diffCase{"two implementation class UIDs", ui(echo, item(0x52, []byte("1.2.3.4"))), true},
		diffCase{"two maximum lengths", ui(echo, item(0x51, []byte{0, 0, 0x10, 0})), true},
		diffCase{"implementation version name of 17 characters", filtertable.WithVariableItems(echo, func(items [][]byte) [][]byte {
			for i, it := range items {
				if it[0] == 0x50 {
					items[i] = item(0x50, item(0x51, []byte{0, 0, 0x40, 0}), item(0x52, []byte("1.2.3")), item(0x55, []byte("VERSION_NAME_17CH")))
				}
			}
			return items
		}), true},
		diffCase{"unknown item and sub-item", appendItems(ui(echo, item(0x5f, []byte("vendor"))), item(0x99, []byte("x"))), false},
	)
}

// TestDcmtkReadsWhatTheFilterReads sends every RQ of the differential corpus straight to dcmtk's storescp and
// asserts, for each: either sdk/pdu's default decoder (the filter's) refuses it, or dcmtk's reading of every field
// the policy can decide by — AE titles, application context, contexts with abstract and transfer syntaxes,
// implementation class UID and version name, maximum length, username — equals sdk/pdu's. For the known
// differentials it also asserts that they are real: dcmtk's reading differs from the decoder's without its
// ambiguity checks, which is why the default decoder refuses them.
func TestDcmtkReadsWhatTheFilterReads(t *testing.T) {
	for _, dc := range differentialCorpus(t) {
		t.Run(dc.name, func(t *testing.T) {
			var rq pdu.AssociateRQ
			refused := (&pdu.Decoder{}).DecodeAssociateRQ(dc.rq, &rq)
			log := dcmtkRead(t, "dcmtk-diff", dc.rq)
			dcmtk, dcmtkAccepted := dcmtkReading(log)
			if dc.differs {
				require.ErrorIs(t, refused, pdu.ErrAmbiguous, "a known differential must be refused as ambiguous")
				var lenient pdu.AssociateRQ
				require.NoError(t, (&pdu.Decoder{AllowAmbiguous: true}).DecodeAssociateRQ(dc.rq, &lenient))
				require.True(t, dcmtkAccepted, "dcmtk refused the RQ, so it is no differential; storescp log:\n%s", tail(log, 40))
				require.NotEqual(t, sdkReading(&lenient), dcmtk, "dcmtk reads it as the lenient decoder does: not a differential")
				t.Logf("refused: %v; dcmtk read %+v", refused, dcmtk)
				return
			}
			if refused != nil {
				require.ErrorIs(t, refused, pdu.ErrInvalid)
				t.Logf("refused by sdk/pdu: %v (dcmtk accepted: %v)", refused, dcmtkAccepted)
				return
			}
			require.True(t, dcmtkAccepted, "sdk/pdu accepts an RQ dcmtk refuses; storescp log:\n%s", tail(log, 40))
			require.Equal(t, sdkReading(&rq), dcmtk, "dcmtk reads the RQ differently from sdk/pdu")
		})
	}
}

// TestDcmtkReadingParser pins the log parser on the lines dcmtk 3.6.7 prints, so a change of dcmtk's log format
// fails here instead of making the differential test compare empty readings.
func TestDcmtkReadingParser(t *testing.T) {
	log := strings.Join([]string{
		"T: Called AP Title:  ANY-SCP",
		"T: Calling AP Title:  LEAD",
		"T: Subitem parse: Type 10, Length 0021, Content: 1.2.840.10008.3.1.1.1",
		"T: Presentation Context ID: 0b",
		"T: Subitem parse: Type 30, Length 0017, Content: 1.2.840.10008.1.1",
		"T: Subitem parse: Type 40, Length 0017, Content: 1.2.840.10008.1.2",
		"T: Subitem parse: Type 52, Length 0027, Content: 1.2.276.0.7230010.3.0.3.6.7",
		"I: Association Received",
		"D: Their Implementation Class UID:    1.2.276.0.7230010.3.0.3.6.7",
		"D: Their Implementation Version Name: OFFIS_DCMTK_367",
		"D: Their Max PDU Receive Size:  16384",
		"D:   Username: [alice]",
		"D: Their Implementation Class UID:    9.9",
	}, "\n")
	r, ok := dcmtkReading(log)
	require.True(t, ok)
	require.Equal(t, reading{Called: "ANY-SCP", Calling: " LEAD", AppContext: "1.2.840.10008.3.1.1.1",
		Contexts:     []ctxReading{{ID: 11, Abstract: "1.2.840.10008.1.1", Transfers: []string{"1.2.840.10008.1.2"}}},
		ImplClassUID: "1.2.276.0.7230010.3.0.3.6.7", ImplVersion: "OFFIS_DCMTK_367", MaxPDU: "16384",
		Username: "alice", HasUsername: true}, r)
	_, ok = dcmtkReading("E: Receiving Association failed: DUL illegal subitem length")
	require.False(t, ok, "a failed parse is not an accepted RQ")
}
