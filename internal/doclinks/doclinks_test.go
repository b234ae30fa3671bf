package doclinks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRepositoryLinks is the CI check: every relative link in every
// Markdown file of the repository resolves, anchors included.
func TestRepositoryLinks(t *testing.T) {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(root, "go.mod"))
	require.NoError(t, err, "the repository root must be two levels up")
	files, err := MarkdownFiles(root)
	require.NoError(t, err)
	require.Contains(t, files, "README.md")
	require.Contains(t, files, filepath.Join("docs", "cli.md"))
	problems, err := Check(root)
	require.NoError(t, err)
	var msgs []string
	for _, p := range problems {
		msgs = append(msgs, p.String())
	}
	require.Empty(t, msgs, "broken links:\n%s", strings.Join(msgs, "\n"))
}

// TestCheckFindsBrokenLinks: the checker reports a missing file, a missing
// anchor and a link out of the repository, and ignores external links and
// links inside code.
func TestCheckFindsBrokenLinks(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	write("docs/a.md", "# A page\n\n## Set up: the `make` way\n\n<a id=\"custom\"></a>\n")
	write("README.md", strings.Join([]string{
		"[ok](docs/a.md) [ok anchor](docs/a.md#set-up-the-make-way) [ok id](docs/a.md#custom)",
		"[dir](docs/) [self](#top) [web](https://example.com/x.md) [mail](mailto:x@y)",
		"[missing](docs/missing.md)",
		"[bad anchor](docs/a.md#nope)",
		"[outside](../elsewhere.md)",
		"`[in code](nope.md)`",
		"```",
		"[in fence](nope.md)",
		"```",
		"[ref]: docs/gone.md",
		"# Top",
	}, "\n"))
	write("build/skipped.md", "[x](nope.md)")
	problems, err := Check(root)
	require.NoError(t, err)
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
	}
	require.Equal(t, []string{
		`README.md:3: link "docs/missing.md": no such file or directory in the repository`,
		`README.md:4: link "docs/a.md#nope": docs/a.md has no heading with anchor #nope`,
		`README.md:5: link "../elsewhere.md": points outside the repository`,
		`README.md:10: link "docs/gone.md": no such file or directory in the repository`,
	}, got)
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"dicomgate check":                  "dicomgate-check",
		"Set up":                           "set-up",
		"What `make run` shows":            "what-make-run-shows",
		"Exit status (0, 1, 2)":            "exit-status-0-1-2",
		"[cli](cli.md) reference":          "cli-reference",
		"peerSubjects: the exact format":   "peersubjects-the-exact-format",
		"upstream_closed vs. NoRouteFound": "upstream_closed-vs-noroutefound",
	} {
		require.Equal(t, want, Slug(in), in)
	}
}
