package filtertable

import (
	"bytes"
	"testing"
)

func TestCasesAreWellFormed(t *testing.T) {
	caps, err := LoadCaptures()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range Cases(caps) {
		if c.Name == "" || seen[c.Name] {
			t.Errorf("case name %q empty or duplicated", c.Name)
		}
		seen[c.Name] = true
		if c.ConfigRejected && len(c.Conns) > 0 {
			t.Errorf("%s: a rejected configuration cannot carry connections", c.Name)
		}
		if !c.ConfigRejected && len(c.Conns) == 0 {
			t.Errorf("%s: no connections", c.Name)
		}
		for i, cs := range c.Conns {
			if len(cs.Steps) == 0 {
				t.Errorf("%s conn %d: no steps", c.Name, i)
			}
			if cs.Want.Closed && len(cs.Want.Forwarded) > 0 {
				t.Errorf("%s conn %d: a closed connection forwards nothing in this table", c.Name, i)
			}
		}
	}
}

func TestHelpers(t *testing.T) {
	caps, err := LoadCaptures()
	if err != nil {
		t.Fatal(err)
	}
	echo := caps["echo_default"]
	rq := FirstPDU(echo)
	if len(rq) != 211 || rq[0] != 0x01 {
		t.Fatalf("FirstPDU(echo_default) = %d bytes, type %#x; want the 211-byte A-ASSOCIATE-RQ", len(rq), rq[0])
	}
	if got := FirstPDU([]byte{1, 0, 0, 0, 0xff}); len(got) != 5 {
		t.Fatalf("FirstPDU of a short stream must return it whole")
	}
	rw := WithAETitles(rq, "PACS", "")
	if !bytes.Equal(rw[10:26], []byte("PACS            ")) || !bytes.Equal(rw[26:42], rq[26:42]) || !bytes.Equal(rw[42:], rq[42:]) {
		t.Fatalf("WithAETitles changed the wrong bytes")
	}
	if bytes.Equal(rq[10:26], rw[10:26]) {
		t.Fatalf("WithAETitles modified its input")
	}
	var n int
	for _, s := range Chunks(rq, 100) {
		n += len(s.Data)
	}
	if st := Chunks(rq, 100); len(st) != 3 || n != len(rq) {
		t.Fatalf("Chunks(211 bytes, 100) = %d steps, %d bytes", len(st), n)
	}
}
