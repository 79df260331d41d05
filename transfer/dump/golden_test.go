package dump

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

var update = flag.Bool("update", false, "write the golden dumps missing from testdata/ (those of a new version)")

// goldenShop writes a shop with what a dump must carry exactly: HTML and
// non-ASCII characters (escaped as encoding/json escapes them), prices
// with and without cents, a line without an incarnation, gaps in the ids.
func goldenShop(t *testing.T, w *Writer, ids IDs) {
	t.Helper()
	for _, p := range []products.Product{
		{ID: "a-1", Title: "Zeppelin <&> \u00e9\u2028", PassengerCapacity: 0, MaximumSpeed: 2147483647, InStock: 7, Incarnation: "0123456789abcdef"},
		{ID: "the_odyssey", Title: "The Odyssey", PassengerCapacity: 101, MaximumSpeed: 5, InStock: 9, Incarnation: "fedcba9876543210"},
	} {
		if err := w.Product(p); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 11, 27, 10, 0, 0, 987654321, time.UTC)
	for _, r := range []orders.Record{
		{ID: 2, CreatedAt: at, UpdatedAt: at.Add(time.Minute), Lines: []orders.RecordLine{
			{Line: orders.Line{ID: 3, ProductID: "the_odyssey", Price: decimal.RequireFromString("100000.99"), Quantity: 1, Incarnation: "fedcba9876543210"}, CreatedAt: at, UpdatedAt: at},
			{Line: orders.Line{ID: 5, ProductID: "gone", Price: decimal.RequireFromString("5"), Quantity: 2}, CreatedAt: at, UpdatedAt: at.Add(time.Second)},
		}},
		{ID: 9, CreatedAt: at.Add(time.Hour), UpdatedAt: at.Add(time.Hour)},
	} {
		if err := w.Order(r); err != nil {
			t.Fatal(err)
		}
	}
	closeDump(t, w, ids)
}

func closeDump(t *testing.T, w *Writer, ids IDs) {
	t.Helper()
	if _, err := w.Close(ids); err != nil {
		t.Fatal(err)
	}
}

// TestGoldenDumps: the writer gives, byte for byte, the dumps in
// testdata/, which the release that introduced each version wrote (the
// v1 files: the release whose reader knows only version 1, commit
// 9f98364); the reader reads them.
func TestGoldenDumps(t *testing.T) {
	shop := func(w *Writer) { goldenShop(t, w, IDs{LastOrderID: 11, LastLineID: 12}) }
	empty := func(w *Writer) { closeDump(t, w, IDs{}) }
	cases := []struct {
		file    string
		version int
		write   func(*Writer)
	}{
		// Written by the release before version 2, which reads only these.
		{"v1-shop.jsonl", 1, shop},
		{"v1-empty.jsonl", 1, empty},
		{"v2-shop.jsonl", 2, shop},
		{"v2-empty.jsonl", 2, empty},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewVersionWriter(&buf, c.version)
			if err != nil {
				t.Fatal(err)
			}
			c.write(w)
			file := filepath.Join("testdata", c.file)
			if _, err := os.Stat(file); *update && errors.Is(err, fs.ErrNotExist) {
				if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("the writer wrote\n%s\nthe golden dump is\n%s", buf.Bytes(), want)
			}
			if _, err := readAll(want); err != nil {
				t.Fatalf("read the golden dump: %v", err)
			}
		})
	}
}
