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

// TestOpenReads: the read pool reads the writer's file, sees a commit as
// soon as it is made, and refuses to write; an in-memory database has
// none (no other connection can open it).
func TestOpenReads(t *testing.T) {
	ctx := t.Context()
	w, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "airship.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := sqlite.OpenReads(ctx, w)
	if err != nil || r == nil {
		t.Fatalf("OpenReads = %v, %v; want a pool", r, err)
	}
	defer r.Close()
	if _, err := w.ExecContext(ctx, `CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := r.GetContext(ctx, &v, `SELECT v FROM t`); err != nil || v != 1 {
		t.Fatalf("read %d, %v; want the committed 1", v, err)
	}
	if _, err := r.ExecContext(ctx, `INSERT INTO t VALUES (2)`); err == nil {
		t.Fatal("the read pool wrote; want it refused (query_only)")
	}

	mem, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if r, err := sqlite.OpenReads(ctx, mem); r != nil || err != nil {
		t.Fatalf("OpenReads(in-memory) = %v, %v; want nil, nil", r, err)
	}
}
