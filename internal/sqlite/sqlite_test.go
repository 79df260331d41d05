package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/airshipltd/airship/internal/sqlite"
)

func TestOpenCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "nested", "airship.db")
	sdb, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var mode string
	if err := sdb.Get(&mode, "PRAGMA journal_mode"); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	var sync int
	if err := sdb.Get(&sync, "PRAGMA synchronous"); err != nil || sync != 2 {
		t.Fatalf("synchronous = %d, %v; want 2 (FULL)", sync, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not created: %v", err)
	}
}
