package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestExitCodes: a command line airship cannot run exits with status 2
// and says where the usage is, as Go's own tools do; a command that runs
// and fails exits with 1.
func TestExitCodes(t *testing.T) {
	t.Chdir(t.TempDir()) // no ./config.yaml, and nothing written here
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{nil, 2, "airship needs a command"},
		{[]string{"fly"}, 2, `unknown command "fly" for "airship"`},
		{[]string{"serve", "--no-such-flag"}, 2, "unknown flag: --no-such-flag"},
		{[]string{"serve", "--request-timeout", "soon"}, 2, `invalid argument "soon" for "--request-timeout"`},
		{[]string{"serve", "--body-limit", "1.5"}, 2, `invalid argument "1.5" for "--body-limit"`},
		{[]string{"serve", "extra"}, 2, `unknown command "extra" for "airship serve"`},
		{[]string{"migrate"}, 2, "migrate needs a subcommand: up, down or status"},
		{[]string{"migrate", "sideways"}, 2, `unknown command "sideways" for "airship migrate"`},
		{[]string{"migrate", "up", "--confirm"}, 2, "unknown flag: --confirm"},
		{[]string{"seed"}, 2, "seed: give how many products to write"},
		{[]string{"seed", "--orders", "5"}, 2, "give --products too"},
		{[]string{"healthcheck", "--timeout", "-1s"}, 2, "--timeout must be positive"},
		{[]string{"export", "--dump-version", "9"}, 2, "--dump-version must be from 1 to"},
		{[]string{"import-legacy"}, 2, "--from REDIS_URL"},
		{[]string{"loadtest", "--max-error-rate", "2"}, 2, "--max-error-rate 2"},
		{[]string{"version"}, 0, ""},
		{[]string{"--version"}, 0, ""},
		// Runs, and fails: nothing answers there.
		{[]string{"healthcheck", "--url", "http://127.0.0.1:1/readyz", "--timeout", "1s"}, 1, "not ready"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), c.args, &stdout, &stderr)
		if code != c.code || !strings.Contains(stderr.String(), c.says) {
			t.Errorf("airship %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, stderr.String(), c.code, c.says)
		}
		if c.code == 2 && !strings.Contains(stderr.String(), "--help' for usage") {
			t.Errorf("airship %s: stderr %q does not say where the usage is", strings.Join(c.args, " "), stderr.String())
		}
	}
}

// TestVersionFlag: airship --version prints the version line that
// airship version starts with.
func TestVersionFlag(t *testing.T) {
	var stdout, flag bytes.Buffer
	if code := run(t.Context(), []string{"version"}, &stdout, &bytes.Buffer{}); code != 0 {
		t.Fatalf("airship version: exit %d", code)
	}
	if code := run(t.Context(), []string{"--version"}, &flag, &bytes.Buffer{}); code != 0 {
		t.Fatalf("airship --version: exit %d", code)
	}
	first, _, _ := strings.Cut(stdout.String(), "\n")
	if flag.String() != first+"\n" {
		t.Errorf("airship --version printed %q; want %q, the first line of airship version", flag.String(), first+"\n")
	}
}

// TestTypedFlagsInHelp: --help names each setting's type, and migrate's
// subcommands have their own help.
func TestTypedFlagsInHelp(t *testing.T) {
	var out bytes.Buffer
	if code := run(t.Context(), []string{"serve", "--help"}, &out, &out); code != 0 {
		t.Fatalf("serve --help: exit %d\n%s", code, out.String())
	}
	for _, want := range []string{"--request-timeout duration", "--body-limit int", "--api-keys strings", "--log-format string"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve --help does not show %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(t.Context(), []string{"migrate", "down", "--help"}, &out, &out); code != 0 || !strings.Contains(out.String(), "--confirm") {
		t.Errorf("migrate down --help: exit %d, want its own help with --confirm:\n%s", code, out.String())
	}
}
