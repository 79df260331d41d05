package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestConfigUnknownEnvironmentWarned: a command that reads the configuration
// logs each unknown AIRSHIP_* variable as a warning naming it.
func TestConfigUnknownEnvironmentWarned(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("AIRSHIP_SOMETHING_ELSE", "x")
	cmd := serveCommand()
	var logs bytes.Buffer
	cmd.SetErr(&logs)
	if _, _, err := loadConfig(cmd); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), `"variable":"AIRSHIP_SOMETHING_ELSE"`) {
		t.Fatalf("log %q; want a warning naming AIRSHIP_SOMETHING_ELSE", logs.String())
	}
}
