package docs

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocExamplesMarked: every shell block of README.md and docs/*.md is
// run by a test that exists and reads the block's page, or excused with
// the reason and a check whose tests and make targets exist. And every
// make target and repository path that any block names exists, so that
// not even an excused example can name something that is gone.
func TestDocExamplesMarked(t *testing.T) {
	tests := testFiles(t)
	targets := makeTargets(t)
	n := map[string]int{}
	for _, file := range docFiles(t) {
		for _, b := range readDoc(t, file) {
			checkMark(t, b, tests, targets)
			checkNames(t, b, targets)
			switch {
			case b.mark == nil:
				n["unmarked"]++
			case b.mark.runBy != "":
				n["run"]++
			default:
				n["excused"]++
			}
		}
	}
	t.Logf("shell blocks: %d run by a test, %d excused, %d unmarked", n["run"], n["excused"], n["unmarked"])
}

// checkMark checks what the marker before a block says.
func checkMark(t *testing.T, b block, tests map[string][]string, targets map[string]bool) {
	t.Helper()
	m := b.mark
	switch {
	case m == nil:
		t.Errorf("%s: this ```sh block is neither run nor excused: on the line before its fence, name the test that runs it, "+
			"<!-- doc-example: run by TestName -->, or say why it cannot run here and what checks it instead, "+
			"<!-- doc-example: not run: why; checked by: what -->", b)
	case m.runBy != "":
		files, ok := tests[m.runBy]
		if !ok {
			t.Errorf("%s: run by %s, which no _test.go file of the repository defines", b, m.runBy)
			return
		}
		page := path.Base(b.file)
		if !slices.ContainsFunc(files, func(src string) bool { return strings.Contains(src, page) }) {
			t.Errorf("%s: run by %s, whose file does not name %s", b, m.runBy, page)
		}
	default:
		for _, name := range testName.FindAllString(m.checkedBy, -1) {
			if _, ok := tests[name]; !ok {
				t.Errorf("%s: checked by %s, which no _test.go file of the repository defines", b, name)
			}
		}
		for _, target := range makeTarget.FindAllStringSubmatch(m.checkedBy, -1) {
			if !targets[target[1]] {
				t.Errorf("%s: checked by make %s, which the Makefile does not have", b, target[1])
			}
		}
	}
}

var (
	makeTarget = regexp.MustCompile(`\bmake ([a-z][\w-]*)`)
	repoPath   = regexp.MustCompile(`^(scripts|deploy|test|docs)/[\w./-]+$`)
)

// checkNames checks that the make targets and repository paths the
// block's commands name exist.
func checkNames(t *testing.T, b block, targets map[string]bool) {
	t.Helper()
	for _, c := range commands(b.text) {
		words := strings.Fields(strings.ReplaceAll(c.text, "\\\n", " "))
		for i, w := range words {
			w = strings.Trim(w, `'"`)
			if repoPath.MatchString(w) {
				if _, err := os.Stat(filepath.Join(repoRoot, w)); err != nil {
					t.Errorf("%s: %q names %s, which is not in the repository", b, c.text, w)
				}
			}
			if w != "make" {
				continue
			}
			target := ""
			for j := i + 1; j < len(words) && target == ""; j++ {
				switch a := words[j]; {
				case a == "-C":
					j++
				case strings.HasPrefix(a, "-"), strings.Contains(a, "="):
				default:
					target = a
				}
			}
			if target != "" && !targets[target] {
				t.Errorf("%s: %q runs make %s, which the Makefile does not have", b, c.text, target)
			}
		}
	}
}

// testFiles returns the source of the files defining each test function
// of the repository, by test name.
func testFiles(t *testing.T) map[string][]string {
	t.Helper()
	funcs := regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\)`)
	tests := map[string][]string{}
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != repoRoot && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range funcs.FindAllStringSubmatch(string(src), -1) {
			tests[m[1]] = append(tests[m[1]], string(src))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tests
}

// makeTargets returns the Makefile's targets.
func makeTargets(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Za-z0-9_-]+):([^=]|$)`).FindAllStringSubmatch(string(raw), -1) {
		targets[m[1]] = true
	}
	return targets
}
