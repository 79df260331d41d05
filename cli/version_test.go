package cli

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/airshipltd/airship/internal/release"
)

// TestVersionCommand: airship version prints what the build stamped (make
// build sets Version from the VERSION file, Commit and BuildDate), and the
// Go version it was built with.
func TestVersionCommand(t *testing.T) {
	defer func(v, c, d string) { release.Version, release.Commit, release.BuildDate = v, c, d }(release.Version, release.Commit, release.BuildDate)
	release.Version, release.Commit, release.BuildDate = "1.2.3", "0123456789abcdef0123456789abcdef01234567", "2026-11-28T13:36:24Z"
	cmd := Command()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"version"})
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := "airship 1.2.3\n" +
		"  commit: 0123456789abcdef0123456789abcdef01234567\n" +
		"  go:     " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n" +
		"  built:  2026-11-28T13:36:24Z\n"
	if out.String() != want {
		t.Errorf("airship version printed\n%s\nwant\n%s", out.String(), want)
	}
	if first, _, _ := strings.Cut(out.String(), "\n"); first != "airship "+release.Version {
		t.Errorf("first line %q: scripts read the version from it", first)
	}
}
