package cluster_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/airshipltd/airship/cli"
	"github.com/airshipltd/airship/internal/testbackend"
)

// testImportLegacy: import-legacy --from the old shop's Redis when it is
// a cluster or found through Sentinels: every product hash is imported,
// on a cluster from every master.
func testImportLegacy(t *testing.T, old redis.UniversalClient, from string) {
	ctx := t.Context()
	prefix := testbackend.Name("old-shop") + ":products:"
	const n = 60 // spread over every master of a cluster
	for i := range n {
		id := fmt.Sprintf("ship-%02d", i)
		if err := old.HSet(ctx, prefix+id, "id", id, "title", "Ship "+id, "passenger_capacity", "10",
			"maximum_speed", "5", "in_stock", "3").Err(); err != nil {
			t.Fatal(err)
		}
	}
	cmd := cli.Command()
	var out bytes.Buffer
	cmd.SetArgs([]string{"import-legacy", "--from", from, "--pattern", prefix + "*", "--batch", "7",
		"--data-dir", t.TempDir(), "--log-level", "warn"})
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("import-legacy --from %s: %v\n%s", from, err, out.String())
	}
	if want := fmt.Sprintf("imported:                   %d", n); !strings.Contains(out.String(), want) {
		t.Fatalf("import-legacy --from %s:\n%s\nwant %q", from, out.String(), want)
	}
}
