//go:build upgrade

package upgrade

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airshipltd/airship/internal/release"
)

// A build is one release's binaries: airship (the default build) and,
// when the release has split modules, airship-remote (-tags remote).
type build struct {
	Role    string // "prev" or "cur"
	Label   string // "prev 1.0.0 (9f98364)", for messages
	Version string // what the release calls itself, when known
	Commit  string // the full commit, when built from one
	Dir     string // holds airship and perhaps airship-remote

	serveFlags  map[string]bool // the flags `airship serve --help` lists
	remoteFlags map[string]bool // the same for airship-remote
	exportFlags map[string]bool // the flags `airship export --help` lists
}

// bin is the binary for a process running modules ("all" runs the default
// build; one module needs the remote build).
func (b *build) bin(modules string) string {
	if modules == "all" {
		return filepath.Join(b.Dir, "airship")
	}
	return filepath.Join(b.Dir, "airship-remote")
}

// has reports whether the binary for modules takes the configuration key
// (its flag, and so its AIRSHIP_ variable).
func (b *build) has(modules, key string) bool {
	flags := b.serveFlags
	if modules != "all" {
		flags = b.remoteFlags
	}
	return flags[strings.ReplaceAll(key, "_", "-")]
}

// splits reports whether the release can run its modules in separate
// processes.
func (b *build) splits() bool { return b.remoteFlags["modules"] }

var (
	_, thisFile, _, _ = runtime.Caller(0)
	repoRoot          = filepath.Join(filepath.Dir(thisFile), "..", "..")
)

// cacheDir is where builds of commits are kept between runs.
func cacheDir() string {
	if d := os.Getenv("AIRSHIP_UPGRADE_CACHE"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "airship-upgrade")
}

// releases returns the previous and the current build: by default the
// newest release CHANGELOG.md records with its commit, and this tree;
// AIRSHIP_UPGRADE_PREV and AIRSHIP_UPGRADE_CUR (make's PREV and CUR) name
// another commit, or a directory holding airship (and airship-remote).
func releases(t *testing.T) (prev, cur *build) {
	t.Helper()
	if p := os.Getenv("AIRSHIP_UPGRADE_PREV"); p != "" {
		prev = resolve(t, "prev", p, "")
	} else {
		rels, err := release.ReadChangelog(repoRoot)
		if err != nil {
			t.Fatal(err)
		}
		r, err := release.Previous(rels)
		if err != nil {
			t.Fatal(err)
		}
		prev = resolve(t, "prev", r.Commit, r.Version)
	}
	if c := os.Getenv("AIRSHIP_UPGRADE_CUR"); c != "" {
		cur = resolve(t, "cur", c, "")
	} else {
		cur = buildTree(t)
	}
	t.Logf("previous release: %s", prev.Label)
	t.Logf("current release:  %s", cur.Label)
	return prev, cur
}

// resolve turns a directory of binaries or a commit into a build.
func resolve(t *testing.T, role, what, version string) *build {
	t.Helper()
	if st, err := os.Stat(what); err == nil && st.IsDir() {
		b := &build{Role: role, Label: fmt.Sprintf("%s binaries in %s", role, what), Dir: what}
		inspect(t, b)
		return b
	}
	commit := git(t, "rev-parse", "--verify", "--quiet", what+"^{commit}")
	if commit == "" {
		t.Fatalf("%s %q is neither a directory of binaries nor a commit of this repository", role, what)
	}
	b := buildCommit(t, commit, version)
	b.Role = role
	b.Label = fmt.Sprintf("%s %s", role, commit[:7])
	if version != "" {
		b.Label = fmt.Sprintf("%s %s (%s)", role, version, commit[:7])
	}
	return b
}

func git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = repoRoot
	out, _ := cmd.Output()
	return strings.TrimSpace(string(out))
}

// buildTree builds this tree with its own Makefile (make build
// build-remote: the version stamped from VERSION) into bin/.
func buildTree(t *testing.T) *build {
	t.Helper()
	start := time.Now()
	runMake(t, repoRoot, "build", "build-remote")
	b := &build{Role: "cur", Dir: filepath.Join(repoRoot, "bin")}
	inspect(t, b)
	version, err := release.ReadVersion(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	b.Version, b.Commit = version, git(t, "rev-parse", "HEAD")
	b.Label = fmt.Sprintf("cur %s, this tree at %s", version, b.Commit[:7])
	t.Logf("built this tree (make build build-remote) in %s", time.Since(start).Round(time.Second))
	return b
}

// buildCommit builds a commit once per cache: in a git worktree in the
// cache directory, with that commit's own Makefile, keeping only the
// binaries. The version is passed to make when known (older Makefiles
// took it from git describe, and the cache's worktree has no tags).
func buildCommit(t *testing.T, commit, version string) *build {
	t.Helper()
	if version == "" {
		version = commit[:7]
	}
	out := filepath.Join(cacheDir(), "builds", commit)
	b := &build{Version: version, Commit: commit, Dir: out}
	if _, err := os.Stat(filepath.Join(out, "airship")); err == nil {
		inspect(t, b)
		return b
	}
	if err := os.MkdirAll(cacheDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	// One build per commit at a time: a second run waits, then finds it.
	lock, err := os.OpenFile(filepath.Join(cacheDir(), ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // released on close anyway
	if _, err := os.Stat(filepath.Join(out, "airship")); err == nil {
		inspect(t, b)
		return b
	}

	start := time.Now()
	src := filepath.Join(cacheDir(), "src-"+commit[:12])
	gitRun(t, "worktree", "remove", "--force", src) // a worktree left by a run cut short
	_ = os.RemoveAll(src)
	gitRun(t, "worktree", "prune")
	if out, err := gitCmd("worktree", "add", "--detach", src, commit).CombinedOutput(); err != nil {
		t.Fatalf("git worktree add %s %s: %v\n%s", src, commit, err, out)
	}
	defer func() {
		gitRun(t, "worktree", "remove", "--force", src)
		_ = os.RemoveAll(src)
	}()
	targets := []string{"build"}
	if makeHas(src, "build-remote") {
		targets = append(targets, "build-remote")
	}
	runMake(t, src, append(targets, "VERSION="+version)...)
	tmp := out + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"airship", "airship-remote"} {
		if err := copyFile(filepath.Join(src, "bin", name), filepath.Join(tmp, name)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s (%s) in %s into %s", commit[:7], strings.Join(targets, ", "), time.Since(start).Round(time.Second), out)
	inspect(t, b)
	return b
}

func gitCmd(args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = repoRoot
	return cmd
}

// gitRun runs git for tidying; its failure is not the test's.
func gitRun(t *testing.T, args ...string) {
	t.Helper()
	_ = gitCmd(args...).Run()
}

// makeHas reports whether the Makefile in dir has a target.
func makeHas(dir, target string) bool {
	cmd := exec.Command("make", "-n", target)
	cmd.Dir = dir
	return cmd.Run() == nil
}

func runMake(t *testing.T, dir string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

var flagRe = regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`)

// inspect reads which configuration keys each binary of the build takes,
// from `serve --help`.
func inspect(t *testing.T, b *build) {
	t.Helper()
	b.serveFlags = serveFlags(t, filepath.Join(b.Dir, "airship"))
	if b.serveFlags == nil {
		t.Fatalf("%s: no airship binary in %s", b.Label, b.Dir)
	}
	b.remoteFlags = serveFlags(t, filepath.Join(b.Dir, "airship-remote"))
	b.exportFlags = commandFlags(t, b, "export")
}

func serveFlags(t *testing.T, bin string) map[string]bool {
	t.Helper()
	if _, err := os.Stat(bin); err != nil {
		return nil
	}
	cmd := exec.Command(bin, "serve", "--help")
	cmd.Dir = t.TempDir() // no config.yaml
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s serve --help: %v\n%s", bin, err, out)
	}
	flags := map[string]bool{}
	for _, m := range flagRe.FindAllSubmatch(out, -1) {
		flags[string(m[1])] = true
	}
	return flags
}

// hasCommand reports whether the release's airship has a command.
func hasCommand(t *testing.T, b *build, command string) bool {
	t.Helper()
	cmd := exec.Command(b.bin("all"), command, "--help")
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	return err == nil && strings.Contains(string(out), "airship "+command)
}

// commandFlags returns the flags `airship COMMAND --help` lists.
func commandFlags(t *testing.T, b *build, command string) map[string]bool {
	t.Helper()
	cmd := exec.Command(b.bin("all"), command, "--help")
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv()
	out, _ := cmd.CombinedOutput()
	flags := map[string]bool{}
	for _, m := range flagRe.FindAllSubmatch(out, -1) {
		flags[string(m[1])] = true
	}
	return flags
}

// cleanEnv is this process's environment without any AIRSHIP_ variable,
// so that a developer's settings never reach the releases under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AIRSHIP_") {
			env = append(env, kv)
		}
	}
	return env
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
