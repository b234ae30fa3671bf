package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCompareDatasetsDetectsChanges guards the dataset comparison the store scenarios rely on: a changed patient
// name and a single changed pixel byte must both be reported, and an identical file must compare equal.
func TestCompareDatasetsDetectsChanges(t *testing.T) {
	for _, name := range []string{"ct_small.dcm", "mr_large.dcm", "ct_jpegll.dcm"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "dcm", name))
			require.NoError(t, err)
			want, err := parsePart10(raw)
			require.NoError(t, err)
			same, err := parsePart10(raw)
			require.NoError(t, err)
			require.Empty(t, compareDatasets(want, same), "identical file reported as different")
			mut := bytes.Clone(raw)
			i := bytes.Index(mut, []byte("DOE^JANE"))
			require.GreaterOrEqual(t, i, 0, "patient name DOE^JANE not found in the file")
			mut[i+7] = 'X'
			// The file ends with pixel data; for encapsulated data the last 8 bytes are the sequence delimiter, so flip a
			// byte 12 from the end (inside the last fragment).
			mut[len(mut)-12] ^= 0x01
			got, err := parsePart10(mut)
			require.NoError(t, err)
			d := strings.Join(compareDatasets(want, got), "\n")
			var unreported []string
			for _, tagStr := range []string{"(0010,0010)", "(7fe0,0010)"} {
				if !strings.Contains(strings.ToLower(d), tagStr) {
					unreported = append(unreported, tagStr)
				}
			}
			require.Empty(t, unreported, "changes not reported; diffs:\n%s", d)
		})
	}
}
