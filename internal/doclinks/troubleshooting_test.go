package doclinks

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/internal/filtertable"
)

// TestTroubleshootingCoversEveryCloseReason: docs/troubleshooting.md has a
// row, with cause and fix, for every reason the filter closes a connection
// for (the audit line's reason and dicomgate_denied_total's label, as the
// behaviour table pins them).
func TestTroubleshootingCoversEveryCloseReason(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "troubleshooting.md"))
	require.NoError(t, err)
	require.NotEmpty(t, filtertable.Reasons)
	for _, r := range filtertable.Reasons {
		require.Contains(t, string(doc), "\n| `"+r+"` | ", "docs/troubleshooting.md has no row for the close reason %q", r)
	}
}
