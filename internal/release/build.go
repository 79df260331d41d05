package release

import "runtime/debug"

// Version is the release version of the running binary, set at build
// time from the VERSION file (make build: -ldflags "-X
// github.com/airshipltd/airship/internal/release.Version=...").
var Version = "dev"

// Commit is the VCS commit the binary was built from, set at build time
// like Version; CommitOf falls back to what Go recorded.
var Commit = ""

// BuildDate is when the binary was built (RFC 3339, UTC), set at build
// time like Version.
var BuildDate = "unknown"

// CommitOf returns Commit, or the revision Go recorded at build time, or
// "unknown".
func CommitOf() string {
	if Commit != "" {
		return Commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	return "unknown"
}
