package pdu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

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
	if err != nil {
		t.Fatalf("framing: %v", err)
	}
	var d Decoder
	var p PDataTF
	var out []*dimseMessage
	var cur *dimseMessage
	for _, pdu := range pdus {
		if Type(pdu[0]) != TypePDataTF {
			continue
		}
		if err := d.DecodePDataTF(pdu, &p); err != nil {
			t.Fatal(err)
		}
		for _, v := range p.PDVs {
			if v.IsCommand() {
				if cur == nil || cur.cs.HasCommandField {
					cur = &dimseMessage{}
					out = append(out, cur)
				}
				cur.command = append(cur.command, v.Data...)
				if v.IsLast() {
					if err := ReadCommandSet(cur.command, &cur.cs); err != nil {
						t.Fatalf("command set: %v", err)
					}
				}
				continue
			}
			if cur == nil || !cur.cs.HasDataSet() {
				t.Fatalf("data-set fragment without a command announcing one")
			}
			cur.dataLen += len(v.Data)
			cur.dataFrag++
		}
	}
	return out
}

// TestGoldenDIMSE checks the DIMSE messages of every plain capture against
// index.json's dimse_decoded (cross-checked there with the tools' logs).
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
			stream := readCapture(t, dir.file)
			if len(stream) > 0 && stream[0] == 0x16 {
				continue // TLS bytes, no DIMSE visible
			}
			var got []string
			for _, m := range dimseMessages(t, stream) {
				got = append(got, m.summary())
			}
			if fmt.Sprint(got) != fmt.Sprint(dir.want) {
				t.Errorf("%s: DIMSE\n got %q\nwant %q", dir.file, got, dir.want)
			}
			n += len(got)
		}
	}
	if n < 50 {
		t.Fatalf("only %d DIMSE messages checked", n)
	}
}

func TestCommandSetFields(t *testing.T) {
	// move_study: the C-MOVE-RQ carries MoveDestination "MOVESCU " (padded
	// to even length, not to 16).
	msgs := dimseMessages(t, readCapture(t, "move_study.c2s.bin"))
	cs := msgs[0].cs
	if cs.Name() != "C-MOVE-RQ" || string(cs.MoveDestination) != "MOVESCU" ||
		string(cs.AffectedSOPClassUID) != "1.2.840.10008.5.1.4.1.2.2.2" || !cs.HasPriority || cs.Priority != 0 {
		t.Fatalf("C-MOVE-RQ = %s dest %q class %q priority %v/%d", cs.Name(), cs.MoveDestination, cs.AffectedSOPClassUID, cs.HasPriority, cs.Priority)
	}
	// echo_default: the worked example of docs/internals.md ("A worked example: a C-ECHO association").
	msgs = dimseMessages(t, readCapture(t, "echo_default.c2s.bin"))
	cs = msgs[0].cs
	if cs.CommandField != 0x0030 || cs.CommandGroupLength != 56 || cs.MessageID != 1 ||
		cs.CommandDataSetType != NoDataSet || cs.HasDataSet() || cs.IsResponse() ||
		string(cs.AffectedSOPClassUID) != "1.2.840.10008.1.1" {
		t.Fatalf("C-ECHO-RQ = %+v", cs)
	}
	// store_default: the C-STORE-RQ names the instance.
	msgs = dimseMessages(t, readCapture(t, "store_default.c2s.bin"))
	if cs := msgs[0].cs; len(cs.AffectedSOPInstanceUID) == 0 || !cs.HasDataSet() {
		t.Fatalf("C-STORE-RQ = %+v", cs)
	}
}

func TestCommandFieldName(t *testing.T) {
	for cf, want := range map[uint16]string{
		0x0030: "C-ECHO-RQ", 0x8030: "C-ECHO-RSP", 0x0001: "C-STORE-RQ", 0x8021: "C-MOVE-RSP",
		0x0FFF: "C-CANCEL-RQ", 0x8150: "N-DELETE-RSP", 0x1234: "unknown command 0x1234",
	} {
		if got := CommandFieldName(cf); got != want {
			t.Errorf("CommandFieldName(%#04x) = %q, want %q", cf, got, want)
		}
	}
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
		var cs CommandSet
		err := ReadCommandSet(tt.in, &cs)
		if !errors.Is(err, tt.class) || !strings.Contains(fmt.Sprint(err), tt.msg) {
			t.Errorf("%s: err = %v, want %v containing %q", tt.name, err, tt.class, tt.msg)
		}
	}
}

// TestCommandSetCrossCheck parses every command set of every capture with
// github.com/suyashkumar/dicom (implicit VR little endian, no preamble) and
// compares each element ReadCommandSet exposes.
func TestCommandSetCrossCheck(t *testing.T) {
	n := 0
	for _, c := range loadIndex(t) {
		for _, file := range []string{c.Files.C2S, c.Files.S2C} {
			stream := readCapture(t, file)
			if len(stream) == 0 || stream[0] == 0x16 {
				continue
			}
			for _, m := range dimseMessages(t, stream) {
				ref := parseWithSuyashkumar(t, m.command)
				checkAgainstRef(t, file, &m.cs, ref)
				n++
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d command sets cross-checked", n)
	}
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
	if err != nil {
		t.Fatalf("suyashkumar/dicom NewParser: %v", err)
	}
	out := map[uint16][]byte{}
	for {
		e, err := p.Next()
		if errors.Is(err, dicom.ErrorEndOfDICOM) || errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("suyashkumar/dicom Next: %v", err)
		}
		if e.Tag.Group != 0 {
			t.Fatalf("suyashkumar/dicom returned tag %v outside group 0000", e.Tag)
		}
		switch v := e.Value.GetValue().(type) {
		case []byte:
			out[e.Tag.Element] = v
		case []int:
			// (0000,0000) is in its dictionary as UL.
			out[e.Tag.Element] = binary.LittleEndian.AppendUint32(nil, uint32(v[0]))
		default:
			t.Fatalf("suyashkumar/dicom: unexpected value type %T for %v", v, e.Tag)
		}
	}
	return out
}

func checkAgainstRef(t *testing.T, file string, cs *CommandSet, ref map[uint16][]byte) {
	t.Helper()
	u16 := func(elem uint16, has bool, got uint16) {
		t.Helper()
		v, ok := ref[elem]
		if ok != has || (ok && (len(v) != 2 || binary.LittleEndian.Uint16(v) != got)) {
			t.Errorf("%s: (0000,%04x): ours %v/%d, suyashkumar %v/%x", file, elem, has, got, ok, v)
		}
	}
	str := func(elem uint16, got []byte) {
		t.Helper()
		want := strings.Trim(string(ref[elem]), " \x00")
		if string(got) != want {
			t.Errorf("%s: (0000,%04x): ours %q, suyashkumar %q", file, elem, got, want)
		}
	}
	if v, ok := ref[0x0000]; ok != cs.HasCommandGroupLength || (ok && binary.LittleEndian.Uint32(v) != cs.CommandGroupLength) {
		t.Errorf("%s: group length ours %d, suyashkumar %x", file, cs.CommandGroupLength, v)
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
}
