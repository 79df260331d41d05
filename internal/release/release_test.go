package release

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const root = "../.."

func TestParseChangelog(t *testing.T) {
	const good = "# Changelog\n\nIntro with ## inside a line.\n\n" +
		"## [Unreleased]\n\n### Added\n- x\n\n" +
		"## [1.1.0] - 2026-12-05\n\n### Changed\n- y\n\n" +
		"## [1.0.0] - 2026-11-28\n\nCommit: `9f9836430333696cf50eb666c6979b63060b0e9e`\n\n### Added\n- z\n"
	rels, err := ParseChangelog(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	want := []Release{
		{Version: Unreleased},
		{Version: "1.1.0", Date: "2026-12-05"},
		{Version: "1.0.0", Date: "2026-11-28", Commit: "9f9836430333696cf50eb666c6979b63060b0e9e"},
	}
	if len(rels) != len(want) {
		t.Fatalf("got %+v, want %+v", rels, want)
	}
	for i := range want {
		if rels[i] != want[i] {
			t.Errorf("section %d: got %+v, want %+v", i, rels[i], want[i])
		}
	}
	// 1.1.0 is cut but its commit not yet recorded: the previous release
	// is still 1.0.0.
	prev, err := Previous(rels)
	if err != nil || prev.Version != "1.0.0" {
		t.Errorf("Previous = %+v, %v; want 1.0.0", prev, err)
	}
	if got := Released(rels); len(got) != 2 || got[0].Version != "1.1.0" {
		t.Errorf("Released = %+v", got)
	}

	for name, text := range map[string]string{
		"no date":             "## [1.0.0]\n",
		"not semver":          "## [1.0] - 2026-11-28\n",
		"v prefix":            "## [v1.0.0] - 2026-11-28\n",
		"dated unreleased":    "## [Unreleased] - 2026-11-28\n",
		"short commit":        "## [1.0.0] - 2026-11-28\nCommit: `9f98364`\n",
		"commit unquoted":     "## [1.0.0] - 2026-11-28\nCommit: 9f9836430333696cf50eb666c6979b63060b0e9e\n",
		"unreleased commit":   "## [Unreleased]\nCommit: `9f9836430333696cf50eb666c6979b63060b0e9e`\n",
		"two commits":         "## [1.0.0] - 2026-11-28\nCommit: `9f9836430333696cf50eb666c6979b63060b0e9e`\nCommit: `9f9836430333696cf50eb666c6979b63060b0e9e`\n",
		"commit before":       "Commit: `9f9836430333696cf50eb666c6979b63060b0e9e`\n## [1.0.0] - 2026-11-28\n",
		"other level-2 title": "## Releases\n",
	} {
		if _, err := ParseChangelog(strings.NewReader(text)); err == nil {
			t.Errorf("%s: %q accepted", name, text)
		}
	}
	if _, err := Previous([]Release{{Version: Unreleased}, {Version: "1.0.0", Date: "2026-11-28"}}); err != ErrNoPrevious {
		t.Errorf("Previous without any commit: %v, want ErrNoPrevious", err)
	}
}

// TestRecordsAgree locks the release records of this tree together: the
// VERSION file (stamped into the binary and the image label by the
// Makefile) is the newest release of CHANGELOG.md and the chart's
// appVersion, and the previous release's commit is in the repository,
// where make test-upgrade builds it from.
func TestRecordsAgree(t *testing.T) {
	version, err := ReadVersion(root)
	if err != nil {
		t.Fatal(err)
	}
	rels, err := ReadChangelog(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) == 0 || rels[0].Version != Unreleased {
		t.Errorf("CHANGELOG.md: the first section must be ## [Unreleased], for the work since the last release")
	}
	released := Released(rels)
	if len(released) == 0 {
		t.Fatal("CHANGELOG.md lists no release")
	}
	if released[0].Version != version {
		t.Errorf("VERSION says %s, the newest release in CHANGELOG.md is %s: cut a release by changing both", version, released[0].Version)
	}
	for i := 1; i < len(released); i++ {
		if released[i].Date > released[i-1].Date {
			t.Errorf("CHANGELOG.md: %s (%s) is listed above %s (%s): newest first", released[i-1].Version, released[i-1].Date, released[i].Version, released[i].Date)
		}
	}

	b, err := os.ReadFile(filepath.Join(root, "deploy", "helm", "airship", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		Version    string `yaml:"version"`
		AppVersion string `yaml:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &chart); err != nil {
		t.Fatal(err)
	}
	if chart.AppVersion != version {
		t.Errorf("deploy/helm/airship/Chart.yaml appVersion is %q, VERSION says %s", chart.AppVersion, version)
	}
	if !ValidVersion(chart.Version) {
		t.Errorf("Chart.yaml version %q is not a semantic version", chart.Version)
	}

	prev, err := Previous(rels)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("git", "cat-file", "-e", prev.Commit+"^{commit}")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the previous release %s, commit %s, is not in this clone (%v %s): fetch the whole history (git fetch --unshallow)",
			prev.Version, prev.Commit, err, out)
	}
}
