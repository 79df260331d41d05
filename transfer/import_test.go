package transfer

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/redisstore"
)

// TestDumpSourceReadsTwice: import reads a regular file twice where it
// is (standard input redirected from a file from where it stands), and
// spools anything else (a FIFO, a reader) to --spool-dir, leaving
// nothing there.
func TestDumpSourceReadsTwice(t *testing.T) {
	dir, spool := t.TempDir(), t.TempDir()
	file := filepath.Join(dir, "dump")
	if err := os.WriteFile(file, []byte("skipped|the dump\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	redirected, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer redirected.Close()
	if _, err := redirected.Seek(int64(len("skipped|")), io.SeekStart); err != nil {
		t.Fatal(err)
	}
	go func() { // the FIFO's writer
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			w.WriteString("the dump\n")
			w.Close()
		}
	}()
	for _, c := range []struct {
		name, in string
		stdin    io.Reader
		spooled  bool
	}{
		{"--in a regular file", file, nil, false},
		{"standard input from a regular file", "", redirected, false},
		{"--in a FIFO", fifo, nil, true},
		{"standard input from a pipe", "-", strings.NewReader("the dump\n"), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			src, err := openDumpSource(c.in, spool, c.stdin)
			if err != nil {
				t.Fatal(err)
			}
			defer src.close()
			if (src.spool != nil) != c.spooled {
				t.Fatalf("spooled: %v; want %v", src.spool != nil, c.spooled)
			}
			first, err := io.ReadAll(src.first())
			if err != nil {
				t.Fatal(err)
			}
			again, err := src.second()
			if err != nil {
				t.Fatal(err)
			}
			second, err := io.ReadAll(again)
			if err != nil {
				t.Fatal(err)
			}
			want := "the dump\n"
			if c.in == file {
				want = "skipped|the dump\n"
			}
			if string(first) != want || string(second) != want {
				t.Fatalf("read %q, then %q; want %q twice", first, second, want)
			}
			if left, _ := os.ReadDir(spool); len(left) > 0 {
				t.Fatalf("the spool is visible in --spool-dir while import runs: %v", left)
			}
		})
	}
}

// TestUndoKeepsWhatClientsChanged: when a load into Redis fails, the
// products it created are deleted again, except those a client changed
// or ordered meanwhile, which stay and are named.
func TestUndoKeepsWhatClientsChanged(t *testing.T) {
	ctx := t.Context()
	rdb, prefix := testbackend.Redis(t)
	store := redisstore.New(rdb, prefix)
	journal, err := newCreatedJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer journal.remove()
	var ps []products.Product
	for _, id := range []string{"a", "b", "c"} {
		ps = append(ps, products.Product{ID: id, Title: "T", PassengerCapacity: 1, MaximumSpeed: 1, InStock: 5, Incarnation: "0f" + id})
	}
	if _, err := journal.wrap(store, false).Load(ctx, ps, products.LoadMode{}); err != nil {
		t.Fatal(err)
	}
	title := "Patched by a client"
	if _, err := store.Update(ctx, "b", products.Patch{Title: &title}); err != nil {
		t.Fatal(err)
	}
	err = journal.undo(ctx, store)
	if err == nil || !strings.Contains(err.Error(), "1 products it created were changed or ordered meanwhile and stay: b") {
		t.Fatalf("undo: %v; want it to name b", err)
	}
	for id, want := range map[string]bool{"a": false, "b": true, "c": false} {
		if ok, err := store.Exists(ctx, id); err != nil || ok != want {
			t.Errorf("product %s exists: %v, %v; want %v", id, ok, err, want)
		}
	}
}
