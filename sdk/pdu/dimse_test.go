package pdu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/suyashkumar/dicom"
)

// dimseMessage is one DIMSE message reassembled from a stream.
type dimseMessage struct {
	command  []byte
	cs       CommandSet
	dataLen  int
	dataFrag int
}

// summary renders a message like index.json's dimse_decoded strings:
// "C-STORE-RQ id=1 dataset=8660B/1frag", "C-ECHO-RSP id=1 status=0x0000".
func (m *dimseMessage) summary() string {
	var sb strings.Builder
	sb.WriteString(m.cs.Name())
	if m.cs.IsResponse() {
		fmt.Fprintf(&sb, " id=%d status=0x%04x", m.cs.MessageIDBeingRespondedTo, m.cs.Status)
	} else {
		fmt.Fprintf(&sb, " id=%d", m.cs.MessageID)
	}
	if m.cs.HasDataSet() {
		fmt.Fprintf(&sb, " dataset=%dB/%dfrag", m.dataLen, m.dataFrag)
	}
	return sb.String()
}

// dimseMessages reassembles the DIMSE messages of one direction of a
// capture: command fragments up to the last one form the command set, then
// data-set fragments up to the last one (if the command announces a data set).
func dimseMessages(t testing.TB, stream []byte) []*dimseMessage {
	t.Helper()
	pdus, err := splitStream(stream)
	require.NoError(t, err, "framing")
	var d Decoder
	var p PDataTF
	var out []*dimseMessage
	var cur *dimseMessage
	for _, pdu := range pdus {
		if Type(pdu[0]) != TypePDataTF {
			continue
		}
		require.NoError(t, d.DecodePDataTF(pdu, &p))
		for _, v := range p.PDVs {
			if v.IsCommand() {
				if cur == nil || cur.cs.HasCommandField {
					cur = &dimseMessage{}
					out = append(out, cur)
				}
				cur.command = append(cur.command, v.Data...)
				if v.IsLast() {
					require.NoError(t, ReadCommandSet(cur.command, &cur.cs), "command set")
				}
				continue
			}
			require.True(t, cur != nil && cur.cs.HasDataSet(), "data-set fragment without a command announcing one")
			cur.dataLen += len(v.Data)
			cur.dataFrag++
		}
	}
	return out
}

// TestGoldenDIMSE checks the DIMSE messages of every plain capture against
// index.json's dimse_decoded (cross-checked there with the tools' logs), one
// subtest per capture file.
func TestGoldenDIMSE(t *testing.T) {
	n := 0
	for _, c := range loadIndex(t) {
		if c.DIMSEDecoded == nil {
			continue
		}
		for _, dir := range []struct {
			file string
			want []string
		}{{c.Files.C2S, c.DIMSEDecoded.C2S}, {c.Files.S2C, c.DIMSEDecoded.S2C}} {
			t.Run(dir.file, func(t *testing.T) {
				stream := readCapture(t, dir.file)
				if len(stream) > 0 && stream[0] == 0x16 {
					return // TLS bytes, no DIMSE visible
				}
				var got []string
				for _, m := range dimseMessages(t, stream) {
					got = append(got, m.summary())
				}
				n += len(got)
				// %q: a missing list and an empty one are the same.
				require.Equal(t, fmt.Sprintf("%q", dir.want), fmt.Sprintf("%q", got), "%s: DIMSE", dir.file)
			})
		}
	}
	require.GreaterOrEqual(t, n, 50, "only %d DIMSE messages checked", n)
}

func TestCommandSetFields(t *testing.T) {
	// move_study: the C-MOVE-RQ carries MoveDestination "MOVESCU " (padded
	// to even length, not to 16).
	msgs := dimseMessages(t, readCapture(t, "move_study.c2s.bin"))
	cs := msgs[0].cs
	require.Equal(t, "C-MOVE-RQ", cs.Name())
	require.Equal(t, "MOVESCU", string(cs.MoveDestination), "C-MOVE-RQ MoveDestination")
	require.Equal(t, "1.2.840.10008.5.1.4.1.2.2.2", string(cs.AffectedSOPClassUID), "C-MOVE-RQ AffectedSOPClassUID")
	require.True(t, cs.HasPriority, "C-MOVE-RQ has no Priority")
	require.Equal(t, uint16(0), cs.Priority, "C-MOVE-RQ Priority")
	// echo_default: the worked example of docs/internals.md ("A worked example: a C-ECHO association").
	msgs = dimseMessages(t, readCapture(t, "echo_default.c2s.bin"))
	cs = msgs[0].cs
	require.Equal(t, uint16(0x0030), cs.CommandField, "C-ECHO-RQ = %+v", cs)
	require.Equal(t, uint32(56), cs.CommandGroupLength, "C-ECHO-RQ = %+v", cs)
	require.Equal(t, uint16(1), cs.MessageID, "C-ECHO-RQ = %+v", cs)
	require.Equal(t, NoDataSet, cs.CommandDataSetType, "C-ECHO-RQ = %+v", cs)
	require.False(t, cs.HasDataSet(), "C-ECHO-RQ = %+v", cs)
	require.False(t, cs.IsResponse(), "C-ECHO-RQ = %+v", cs)
	require.Equal(t, "1.2.840.10008.1.1", string(cs.AffectedSOPClassUID), "C-ECHO-RQ = %+v", cs)
	// store_default: the C-STORE-RQ names the instance.
	msgs = dimseMessages(t, readCapture(t, "store_default.c2s.bin"))
	cs = msgs[0].cs
	require.NotEmpty(t, cs.AffectedSOPInstanceUID, "C-STORE-RQ = %+v", cs)
	require.True(t, cs.HasDataSet(), "C-STORE-RQ = %+v", cs)
}

func TestCommandFieldName(t *testing.T) {
	want := map[uint16]string{
		0x0030: "C-ECHO-RQ", 0x8030: "C-ECHO-RSP", 0x0001: "C-STORE-RQ", 0x8021: "C-MOVE-RSP",
		0x0FFF: "C-CANCEL-RQ", 0x8150: "N-DELETE-RSP", 0x1234: "unknown command 0x1234",
	}
	got := map[uint16]string{}
	for cf := range want {
		got[cf] = CommandFieldName(cf)
	}
	require.Equal(t, want, got, "CommandFieldName by command field")
}

func TestReadCommandSetErrors(t *testing.T) {
	el := func(group, elem uint16, vl uint32, v ...byte) []byte {
		b := binary.LittleEndian.AppendUint16(nil, group)
		b = binary.LittleEndian.AppendUint16(b, elem)
		b = binary.LittleEndian.AppendUint32(b, vl)
		return append(b, v...)
	}
	cf := el(0, 0x0100, 2, 0x30, 0x00)
	tests := []struct {
		name  string
		in    []byte
		class error
		msg   string
	}{
		{"length past end", append(append([]byte{}, cf...), el(0, 0x0002, 100, '1', '.', '2')...), ErrTruncated,
			"pdu: offset 14: element (0000,0002): value length 100 exceeds remaining 3 bytes"},
		{"length 0xFFFFFFFF", append(el(0, 0x0002, 0xffffffff), cf...), ErrInvalid, "undefined length is not allowed"},
		{"data set group", append(append([]byte{}, cf...), el(0x0008, 0x0016, 0)...), ErrInvalid,
			"tag (0008,0016) is not in group 0000"},
		{"US wrong length", el(0, 0x0100, 3, 1, 2, 3), ErrInvalid, "element (0000,0100) CommandField: value length 3, want 2"},
		{"short header", append(append([]byte{}, cf...), 0, 0, 0), ErrTruncated, "3 trailing bytes cannot hold an 8-byte element header"},
		{"no command field", el(0, 0x0110, 2, 1, 0), ErrInvalid, "no CommandField element (0000,0100)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cs CommandSet
			err := ReadCommandSet(tt.in, &cs)
			require.ErrorIs(t, err, tt.class)
			require.ErrorContains(t, err, tt.msg)
		})
	}
}

// TestCommandSetCrossCheck parses every command set of every capture with
// github.com/suyashkumar/dicom (implicit VR little endian, no preamble) and
// compares each element ReadCommandSet exposes; every difference of every
// command set is listed at once.
func TestCommandSetCrossCheck(t *testing.T) {
	n := 0
	var diffs []string
	for _, c := range loadIndex(t) {
		for _, file := range []string{c.Files.C2S, c.Files.S2C} {
			stream := readCapture(t, file)
			if len(stream) == 0 || stream[0] == 0x16 {
				continue
			}
			for _, m := range dimseMessages(t, stream) {
				ref := parseWithSuyashkumar(t, m.command)
				diffs = append(diffs, diffAgainstRef(file, &m.cs, ref)...)
				n++
			}
		}
	}
	require.Empty(t, diffs, "ReadCommandSet differs from suyashkumar/dicom")
	require.GreaterOrEqual(t, n, 50, "only %d command sets cross-checked", n)
}

// parseWithSuyashkumar returns the raw value of every element, keyed by
// element number (group 0000 tags are not in its dictionary, so their values
// come back as raw bytes, which is what we want to compare).
func parseWithSuyashkumar(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	// Without a meta header NewParser infers the transfer syntax from a
	// 100-byte peek (implicit VR LE is tried first), so pad the reader; the
	// parser still reads only len(b) bytes.
	padded := append(append([]byte{}, b...), make([]byte, 100)...)
	p, err := dicom.NewParser(bytes.NewReader(padded), int64(len(b)), nil, dicom.SkipMetadataReadOnNewParserInit())
	require.NoError(t, err, "suyashkumar/dicom NewParser")
	out := map[uint16][]byte{}
	for {
		e, err := p.Next()
		if errors.Is(err, dicom.ErrorEndOfDICOM) || errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "suyashkumar/dicom Next")
		require.Zero(t, e.Tag.Group, "suyashkumar/dicom returned tag %v outside group 0000", e.Tag)
		switch v := e.Value.GetValue().(type) {
		case []byte:
			out[e.Tag.Element] = v
		case []int:
			// (0000,0000) is in its dictionary as UL.
			out[e.Tag.Element] = binary.LittleEndian.AppendUint32(nil, uint32(v[0]))
		default:
			require.FailNowf(t, "unexpected value type", "suyashkumar/dicom: unexpected value type %T for %v", v, e.Tag)
		}
	}
	return out
}

// diffAgainstRef returns one line per element where cs and the reference
// parse (parseWithSuyashkumar) differ.
func diffAgainstRef(file string, cs *CommandSet, ref map[uint16][]byte) []string {
	var diffs []string
	u16 := func(elem uint16, has bool, got uint16) {
		v, ok := ref[elem]
		if ok != has || (ok && (len(v) != 2 || binary.LittleEndian.Uint16(v) != got)) {
			diffs = append(diffs, fmt.Sprintf("%s: (0000,%04x): ours %v/%d, suyashkumar %v/%x", file, elem, has, got, ok, v))
		}
	}
	str := func(elem uint16, got []byte) {
		want := strings.Trim(string(ref[elem]), " \x00")
		if string(got) != want {
			diffs = append(diffs, fmt.Sprintf("%s: (0000,%04x): ours %q, suyashkumar %q", file, elem, got, want))
		}
	}
	if v, ok := ref[0x0000]; ok != cs.HasCommandGroupLength || (ok && binary.LittleEndian.Uint32(v) != cs.CommandGroupLength) {
		diffs = append(diffs, fmt.Sprintf("%s: group length ours %d, suyashkumar %x", file, cs.CommandGroupLength, v))
	}
	u16(0x0100, cs.HasCommandField, cs.CommandField)
	u16(0x0110, cs.HasMessageID, cs.MessageID)
	u16(0x0120, cs.HasMessageIDBeingRespondedTo, cs.MessageIDBeingRespondedTo)
	u16(0x0700, cs.HasPriority, cs.Priority)
	u16(0x0800, cs.HasCommandDataSetType, cs.CommandDataSetType)
	u16(0x0900, cs.HasStatus, cs.Status)
	u16(0x1031, cs.HasMoveOriginatorMessageID, cs.MoveOriginatorMessageID)
	str(0x0002, cs.AffectedSOPClassUID)
	str(0x0003, cs.RequestedSOPClassUID)
	str(0x0600, cs.MoveDestination)
	str(0x1000, cs.AffectedSOPInstanceUID)
	str(0x1001, cs.RequestedSOPInstanceUID)
	str(0x1030, cs.MoveOriginatorAETitle)
	return diffs
}
