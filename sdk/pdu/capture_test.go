package pdu

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// capture is one entry of testdata/index.json (only the fields tests use).
type capture struct {
	Name  string `json:"name"`
	Files struct {
		C2S string `json:"c2s"`
		S2C string `json:"s2c"`
	} `json:"files"`
	Transport    string                       `json:"transport"`
	Expected     map[string]json.RawMessage   `json:"expected"`
	PDUSequence  *struct{ C2S, S2C []string } `json:"pdu_sequence"`
	DIMSEDecoded *struct{ C2S, S2C []string } `json:"dimse_decoded"`
}

// isTLS reports whether the capture's bytes are TLS records (the expected
// fields then describe the PDUs inside the tunnel, which we cannot see).
func (c *capture) isTLS() bool { return c.PDUSequence == nil }

func loadIndex(tb testing.TB) []capture {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "index.json"))
	require.NoError(tb, err)
	var idx struct {
		Captures []capture `json:"captures"`
	}
	require.NoError(tb, json.Unmarshal(raw, &idx), "testdata/index.json")
	require.NotEmpty(tb, idx.Captures, "testdata/index.json lists no captures")
	return idx.Captures
}

func readCapture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(tb, err)
	return b
}

// splitStream frames a whole stream with a default Framer and returns its
// PDUs and the error that stopped framing (nil when the stream ended on a
// PDU boundary; ErrNeedMore when it ended inside a PDU).
func splitStream(stream []byte) ([][]byte, error) {
	var f Framer
	var out [][]byte
	for len(stream) > 0 {
		pdu, rest, err := f.Next(stream)
		if err != nil {
			return out, err
		}
		out = append(out, pdu)
		stream = rest
	}
	return out, nil
}
