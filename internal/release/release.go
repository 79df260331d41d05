// Package release reads airship's release records: the VERSION file (the
// version the tree is stamped with) and CHANGELOG.md, which lists every
// release with the commit it was cut from, so that a clone without tags
// can find and build the previous release.
package release

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Release is one section of CHANGELOG.md.
type Release struct {
	Version string // "1.0.0"; "Unreleased" for the section of work not yet released
	Date    string // "2026-11-28"; empty when unreleased
	Commit  string // the full commit hash; empty until recorded
}

// Unreleased is the version of the changelog's section of work not yet
// released.
const Unreleased = "Unreleased"

var (
	// ## [1.0.0] - 2026-11-28   or   ## [Unreleased]
	headingRe = regexp.MustCompile(`^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?\s*$`)
	// Commit: `9f9836430333696cf50eb666c6979b63060b0e9e`
	commitRe = regexp.MustCompile("^Commit: `([0-9a-f]{40})`")
	// Semantic Versioning 2.0.0, without the leading v.
	semverRe = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$`)
)

// ValidVersion reports whether v is a semantic version (without a leading v).
func ValidVersion(v string) bool { return semverRe.MatchString(v) }

// ParseChangelog reads the release sections of a changelog, newest first
// as written. Each section is "## [VERSION] - DATE" (or "## [Unreleased]")
// and a released one may carry one line "Commit: `<40 hex digits>`".
func ParseChangelog(r io.Reader) ([]Release, error) {
	var (
		rels []Release
		n    int
	)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		n++
		line := sc.Text()
		if m := headingRe.FindStringSubmatch(line); m != nil {
			rel := Release{Version: m[1], Date: m[2]}
			switch {
			case rel.Version == Unreleased && rel.Date != "":
				return nil, fmt.Errorf("line %d: the Unreleased section has a date", n)
			case rel.Version != Unreleased && !ValidVersion(rel.Version):
				return nil, fmt.Errorf("line %d: %q is not a semantic version", n, rel.Version)
			case rel.Version != Unreleased && rel.Date == "":
				return nil, fmt.Errorf("line %d: release %s has no date (## [%s] - YYYY-MM-DD)", n, rel.Version, rel.Version)
			}
			rels = append(rels, rel)
			continue
		}
		if strings.HasPrefix(line, "## ") {
			return nil, fmt.Errorf("line %d: %q is not a release heading (## [VERSION] - YYYY-MM-DD or ## [Unreleased])", n, line)
		}
		if strings.HasPrefix(line, "Commit:") {
			m := commitRe.FindStringSubmatch(line)
			switch {
			case len(rels) == 0:
				return nil, fmt.Errorf("line %d: a commit before the first release heading", n)
			case m == nil:
				return nil, fmt.Errorf("line %d: want Commit: `<the full 40-digit hash>`", n)
			case rels[len(rels)-1].Version == Unreleased:
				return nil, fmt.Errorf("line %d: the Unreleased section has a commit", n)
			case rels[len(rels)-1].Commit != "":
				return nil, fmt.Errorf("line %d: release %s has two commits", n, rels[len(rels)-1].Version)
			}
			rels[len(rels)-1].Commit = m[1]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return rels, nil
}

// Released returns the released sections (not Unreleased), newest first.
func Released(rels []Release) []Release {
	var out []Release
	for _, r := range rels {
		if r.Version != Unreleased {
			out = append(out, r)
		}
	}
	return out
}

// ErrNoPrevious means the changelog records no release with its commit.
var ErrNoPrevious = errors.New("CHANGELOG.md records no release with its commit")

// Previous returns the newest release whose commit is recorded: the
// release that production may still run, which the tree must run beside.
// (A release's own commit cannot name itself; its hash is recorded by the
// commit after it, so at a release commit the previous one is returned.)
func Previous(rels []Release) (Release, error) {
	for _, r := range Released(rels) {
		if r.Commit != "" {
			return r, nil
		}
	}
	return Release{}, ErrNoPrevious
}

// ReadVersion reads the VERSION file of the repository at root.
func ReadVersion(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(b))
	if !ValidVersion(v) {
		return "", fmt.Errorf("VERSION: %q is not a semantic version", v)
	}
	return v, nil
}

// ReadChangelog reads CHANGELOG.md of the repository at root.
func ReadChangelog(root string) ([]Release, error) {
	f, err := os.Open(filepath.Join(root, "CHANGELOG.md"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rels, err := ParseChangelog(f)
	if err != nil {
		return nil, fmt.Errorf("CHANGELOG.md: %w", err)
	}
	return rels, nil
}
