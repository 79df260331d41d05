// Package docs holds the shell examples of README.md and docs/*.md to what
// they say. Every ```sh block is either run by a test or excused, on the
// line just before its fence:
//
//	<!-- doc-example: run by TestName -->
//	<!-- doc-example: not run: why it cannot run here; checked by: what checks it instead -->
//
// TestDocExamplesMarked fails on a block with neither, on a marker naming
// a test that does not exist (or whose file does not name that page), and
// on an excuse that names no check. The other tests here run the blocks
// marked with their names: each command as written, in bash's strict mode
// from a directory of the test's own, a command that serves in the
// background until the test stops it (it must then exit 0). Only what
// would clash with other programs on this machine is rewritten (ports,
// database names, the old shop's Redis): each substitution is listed where
// the test runs the block, and its old text must be in the block.
package docs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the repository, from this package's directory.
const repoRoot = "../.."

// A block is one shell example of the docs.
type block struct {
	file string // relative to the repository: README.md, docs/api.md
	line int    // of the opening fence
	mark *mark  // what the marker before it says; nil if there is none
	text string // the lines between the fences, the fence's indentation removed
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// A mark is what a doc-example marker says of the block after it: runBy,
// or notRun and checkedBy.
type mark struct {
	runBy     string // the test that runs the block
	notRun    string // why it does not run here
	checkedBy string // what checks it instead
}

var (
	// shellFence opens a shell example; anyFence opens or closes any.
	shellFence = regexp.MustCompile("^( *)```(sh|bash|console|shell)\\b")
	anyFence   = regexp.MustCompile("^( *)```")
	// marker is a doc-example comment, alone on its line.
	marker   = regexp.MustCompile(`^\s*<!-- doc-example: (.*) -->\s*$`)
	runBy    = regexp.MustCompile(`^run by (Test\w+)$`)
	excused  = regexp.MustCompile(`^not run: (.+); checked by: (.+)$`)
	testName = regexp.MustCompile(`\bTest\w+`)
)

// docFiles are the pages whose shell examples are held to what they say.
func docFiles(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"README.md"}
	for _, p := range pages {
		files = append(files, filepath.ToSlash(strings.TrimPrefix(p, repoRoot+string(filepath.Separator))))
	}
	return files
}

// parseDoc returns the shell blocks of a page, and a problem for each
// marker that is not well formed or not just before a shell block.
func parseDoc(file, text string) (blocks []block, problems []string) {
	var (
		fenced  bool   // inside a code block of any language
		current *block // the shell block being read
		indent  string // its fence's indentation
		body    []string
		pending *mark // the marker on the previous line
		pendAt  int
	)
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		if fenced {
			if anyFence.MatchString(line) && strings.TrimSpace(line) == "```" {
				fenced = false
				if current != nil {
					current.text = strings.Join(body, "\n")
					blocks = append(blocks, *current)
					current = nil
				}
			} else if current != nil {
				body = append(body, strings.TrimPrefix(line, indent))
			}
			continue
		}
		if pending != nil && !shellFence.MatchString(line) {
			problems = append(problems, fmt.Sprintf("%s:%d: a doc-example marker must be the line just before a ```sh fence", file, pendAt))
			pending = nil
		}
		switch m := shellFence.FindStringSubmatch(line); {
		case m != nil:
			fenced, indent, body = true, m[1], nil
			current = &block{file: file, line: n, mark: pending}
			pending = nil
		case anyFence.MatchString(line):
			fenced = true
		case strings.HasPrefix(strings.TrimSpace(line), "<!--") && strings.Contains(line, "doc-example"):
			mk, err := parseMark(line)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s:%d: %v", file, n, err))
				continue
			}
			pending, pendAt = mk, n
		}
	}
	return blocks, problems
}

// parseMark reads a doc-example marker line.
func parseMark(line string) (*mark, error) {
	const forms = "<!-- doc-example: run by TestName --> or <!-- doc-example: not run: why; checked by: what -->"
	m := marker.FindStringSubmatch(line)
	if m == nil {
		return nil, fmt.Errorf("%q is not a doc-example marker; write %s, alone on its line", line, forms)
	}
	if r := runBy.FindStringSubmatch(m[1]); r != nil {
		return &mark{runBy: r[1]}, nil
	}
	if e := excused.FindStringSubmatch(m[1]); e != nil {
		return &mark{notRun: strings.TrimSpace(e[1]), checkedBy: strings.TrimSpace(e[2])}, nil
	}
	return nil, fmt.Errorf("doc-example marker %q says neither what runs the block nor why not and what checks it; write %s", m[1], forms)
}

// readDoc reads and parses a page; its marker problems fail the test.
func readDoc(t *testing.T, file string) []block {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, file))
	if err != nil {
		t.Fatal(err)
	}
	blocks, problems := parseDoc(file, string(raw))
	for _, p := range problems {
		t.Error(p)
	}
	return blocks
}

// docBlocks returns the blocks of a page marked as run by the calling
// test (the top-level test of t); there must be n.
func docBlocks(t *testing.T, file string, n int) []block {
	t.Helper()
	name, _, _ := strings.Cut(t.Name(), "/")
	var mine []block
	for _, b := range readDoc(t, file) {
		if b.mark != nil && b.mark.runBy == name {
			mine = append(mine, b)
		}
	}
	if len(mine) != n {
		t.Fatalf("%s has %d blocks marked <!-- doc-example: run by %s -->; this test runs %d", file, len(mine), name, n)
	}
	return mine
}

// pick returns the one block whose text contains s.
func pick(t *testing.T, blocks []block, s string) block {
	t.Helper()
	var found []block
	for _, b := range blocks {
		if strings.Contains(b.text, s) {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d of the blocks %v contain %q; want one", len(found), blocks, s)
	}
	return found[0]
}

// A sub is one substitution a test makes in a block before running it.
type sub struct{ old, new string }

// rewrite returns the block's text with each substitution made. Each old
// text must be in the block, so that the table keeps up with the docs.
func rewrite(t *testing.T, b block, subs ...sub) string {
	t.Helper()
	text := b.text
	for _, s := range subs {
		if !strings.Contains(text, s.old) {
			t.Fatalf("%s has no %q any more; update this test's substitutions\n%s", b, s.old, b.text)
		}
		text = strings.ReplaceAll(text, s.old, s.new)
	}
	return text
}

// A command is one command of a block: its lines (a line continues on
// the next after a \, a | or && at its end, or in an open quote), the
// comment that ends its last line, and the comment lines after it, which
// say what it prints.
type command struct {
	text string   // as written, continuation lines included, comment removed
	note string   // the comment at the end of its last line
	said []string // the comment lines that follow it
}

// commands splits a block's text into its commands. Comment lines before
// the first command, such as headings, are dropped.
func commands(text string) []command {
	var (
		cmds  []command
		cur   []string
		quote rune // the quote open at the end of the last line
	)
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if len(cur) == 0 {
			if trimmed == "" {
				continue
			}
			if strings.HasPrefix(trimmed, "#") {
				if len(cmds) > 0 {
					last := &cmds[len(cmds)-1]
					last.said = append(last.said, strings.TrimSpace(strings.TrimPrefix(trimmed, "#")))
				}
				continue
			}
		}
		var code, note string
		code, note, quote = splitComment(line, quote)
		code = strings.TrimRight(code, " \t")
		cur = append(cur, code)
		if quote != 0 || strings.HasSuffix(code, `\`) || strings.HasSuffix(code, "|") || strings.HasSuffix(code, "&&") {
			continue
		}
		cmds = append(cmds, command{text: strings.Join(cur, "\n"), note: note})
		cur = nil
	}
	return cmds
}

// splitComment splits a line at a shell comment (a # after a blank,
// outside quotes), given the quote open where it starts; it returns the
// quote open where it ends.
func splitComment(line string, quote rune) (code, note string, open rune) {
	prev, escaped := ' ', false
	for i, r := range line {
		switch {
		case escaped:
			escaped = false
		case r == '\\' && quote != '\'':
			escaped = true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t'):
			return line[:i], strings.TrimSpace(line[i+1:]), 0
		}
		prev = r
	}
	return line, "", quote
}

// skip returns the commands without the one that starts with prefix,
// which must be there.
func skip(t *testing.T, cmds []command, prefix string) []command {
	t.Helper()
	var kept []command
	for _, c := range cmds {
		if !strings.HasPrefix(c.text, prefix) {
			kept = append(kept, c)
		}
	}
	if len(kept) != len(cmds)-1 {
		t.Fatalf("want one command starting with %q among %q", prefix, cmds)
	}
	return kept
}
