// Package doclinks checks the repository's Markdown: every relative link
// must name a file or directory that exists, and a "#fragment" must name a
// heading of the target page (GitHub's anchor rules). Its test runs the
// check over the whole repository with `go test ./...`.
package doclinks

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// Problem is one broken link.
type Problem struct {
	// File is the Markdown file (relative to the root), Line its 1-based
	// line.
	File string
	Line int
	// Target is the link as written.
	Target string
	// Reason says what is wrong.
	Reason string
}

// String renders "FILE:LINE: link TARGET: REASON".
func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: link %q: %s", p.File, p.Line, p.Target, p.Reason)
}

// skipDirs are directories never searched for Markdown: build output,
// version control and third-party trees.
var skipDirs = map[string]bool{".git": true, "build": true, "node_modules": true, "vendor": true}

// MarkdownFiles returns the .md files under root (relative paths, sorted by
// the walk), skipping skipDirs and hidden directories.
func MarkdownFiles(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (skipDirs[d.Name()] || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(d.Name(), ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, rel)
		}
		return nil
	})
	return out, err
}

// inlineLink matches [text](target) and ![alt](target), with an optional
// "title"; refLink matches a reference definition "[id]: target".
var (
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refLink    = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$`)
	inlineCode = regexp.MustCompile("`+[^`]*`+")
)

// Links returns each link target of a Markdown document with its line,
// outside fenced code blocks and inline code spans.
func Links(doc []byte) (targets []string, lines []int) {
	sc := bufio.NewScanner(bytes.NewReader(doc))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	fence := ""
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		line = inlineCode.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			targets, lines = append(targets, m[1]), append(lines, n)
		}
		if m := refLink.FindStringSubmatch(line); m != nil {
			targets, lines = append(targets, m[1]), append(lines, n)
		}
	}
	return targets, lines
}

// Anchors returns the GitHub anchors of a Markdown document's headings
// ("## Set up" is "set-up"; a repeated heading gets "-1", "-2", ...) and
// of explicit <a id="..."> / <a name="..."> tags.
func Anchors(doc []byte) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	fence := ""
	sc := bufio.NewScanner(bytes.NewReader(doc))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		for _, m := range explicitAnchor.FindAllStringSubmatch(line, -1) {
			out[m[1]] = true
		}
		if !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(line, "#"))
		slug := Slug(text)
		if n := seen[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

var explicitAnchor = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)

// Slug turns heading text into its GitHub anchor: lower case, inline
// markup and punctuation other than "-" and "_" dropped, spaces as "-".
func Slug(text string) string {
	text = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(text, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Check returns the broken relative links of the Markdown files under root.
func Check(root string) ([]Problem, error) {
	files, err := MarkdownFiles(root)
	if err != nil {
		return nil, err
	}
	var problems []Problem
	anchors := map[string]map[string]bool{}
	anchorsOf := func(path string) (map[string]bool, error) {
		if a, ok := anchors[path]; ok {
			return a, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		anchors[path] = Anchors(b)
		return anchors[path], nil
	}
	for _, f := range files {
		doc, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return nil, err
		}
		targets, lines := Links(doc)
		for i, target := range targets {
			if reason := checkLink(root, f, target, anchorsOf); reason != "" {
				problems = append(problems, Problem{File: f, Line: lines[i], Target: target, Reason: reason})
			}
		}
	}
	return problems, nil
}

// checkLink returns why target, written in file, does not resolve ("" when
// it does or is not relative).
func checkLink(root, file, target string, anchorsOf func(string) (map[string]bool, error)) string {
	u, err := url.Parse(target)
	if err != nil {
		return "not a URL: " + err.Error()
	}
	if u.Scheme != "" || u.Host != "" {
		return "" // external: not checked
	}
	path := filepath.Join(root, filepath.Dir(file))
	if u.Path != "" {
		if strings.HasPrefix(u.Path, "/") {
			path = filepath.Join(root, u.Path)
		} else {
			path = filepath.Join(path, u.Path)
		}
	} else {
		path = filepath.Join(root, file)
	}
	rel, err := filepath.Rel(root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "points outside the repository"
	}
	st, err := os.Stat(path)
	if err != nil {
		return "no such file or directory in the repository"
	}
	if u.Fragment == "" || st.IsDir() || !strings.HasSuffix(path, ".md") {
		return ""
	}
	a, err := anchorsOf(path)
	if err != nil {
		return err.Error()
	}
	if !a[u.Fragment] {
		return fmt.Sprintf("%s has no heading with anchor #%s", filepath.ToSlash(rel), u.Fragment)
	}
	return ""
}
