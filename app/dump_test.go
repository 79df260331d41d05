package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/transfer/dump"
)

// shopWithHistory fills a store through the API: products (one deleted
// since it was ordered), orders (one changed, one deleted), so that the
// dump has gaps in its ids, changed timestamps, prices, incarnations and
// a line whose product is gone.
func shopWithHistory(t *testing.T, cfg config.Config) {
	t.Helper()
	s := startWith(t, cfg)
	for _, id := range []string{"the_odyssey", "the_enigma", "gone", "tiny.one~2"} {
		s.expect(s.do("POST", "/products", strings.ReplaceAll(odyssey, "the_odyssey", id)), 200, "")
	}
	s.expect(s.do("PATCH", "/products/the_enigma", `{"title": "The Enigma <&> \u00e9", "in_stock": 50}`), 200, "")
	s.expect(s.do("POST", "/orders", `{"order_details": [{"product_id": "the_odyssey", "price": "100000.99", "quantity": 1},
		{"product_id": "gone", "price": 5, "quantity": 2}]}`), 200, `{"id": 1}`)
	s.expect(s.do("POST", "/orders", `{"order_details": [{"product_id": "the_enigma", "price": "0.10", "quantity": 3}]}`), 200, `{"id": 2}`)
	s.expect(s.do("POST", "/orders", `{"order_details": [{"product_id": "tiny.one~2", "price": "1", "quantity": 1}]}`), 200, `{"id": 3}`)
	s.expect(s.do("PUT", "/orders/2", `{"order_details": [{"id": 3, "price": "0.20", "quantity": 4}]}`), 200, "")
	s.expect(s.do("DELETE", "/orders/3", ""), 204, "")
	s.expect(s.do("DELETE", "/products/gone", ""), 204, "")
}

// exportTo exports the store of cfg to a file and returns its bytes.
func exportTo(t *testing.T, cfg config.Config) []byte {
	t.Helper()
	file := filepath.Join(t.TempDir(), "shop.jsonl")
	if out, err := runCommand(t, cfg, "export", "--out", file); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestExportImportRoundTrip: for every pair of stores, export A → import
// into B → export B gives the same dump, and B serves the same shop: the
// same orders, stock going back to the very products it came from, and
// new orders and lines numbered after the imported ones.
func TestExportImportRoundTrip(t *testing.T) {
	for _, from := range storeBackends() {
		for _, to := range storeBackends() {
			t.Run(from.name+" to "+to.name, func(t *testing.T) {
				a := from.config(t)
				shopWithHistory(t, a)
				dumpA := exportTo(t, a)

				b := to.config(t)
				if out, err := runCommand(t, b, "import", "--in", writeFile(t, dumpA)); err != nil ||
					!strings.Contains(out, "imported 3 products and 2 orders (3 lines)") {
					t.Fatalf("import: %v\n%s", err, out)
				}
				if dumpB := exportTo(t, b); !bytes.Equal(dumpA, dumpB) {
					t.Fatalf("the dump of the imported store differs:\n%s\nwas\n%s", dumpB, dumpA)
				}

				sa, sb := startWith(t, a), startWith(t, b)
				for _, path := range []string{"/orders", "/orders/1", "/orders/2", "/products?limit=10", "/products/the_enigma"} {
					ra, rb := sa.do("GET", path, ""), sb.do("GET", path, "")
					if ra.status != 200 || !bytes.Equal(ra.body, rb.body) {
						t.Fatalf("GET %s: %d %s in the copy, %d %s in the original", path, rb.status, rb.body, ra.status, ra.body)
					}
				}
				// Stock goes back to the incarnation it came from.
				sb.expect(sb.do("DELETE", "/orders/2", ""), 204, "")
				sb.expect(sb.do("GET", "/products/the_enigma", ""), 200,
					`{"id": "the_enigma", "title": "The Enigma <&> \u00e9", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 50}`)
				sb.expect(sb.do("POST", "/orders", orderOfOne), 200, `{"id": 4}`)
				sb.expect(sb.do("GET", "/orders/4", ""), 200, "")
				if r := sb.do("GET", "/orders/4", ""); !strings.Contains(string(r.body), `"order_details":[{"id":5,`) {
					t.Fatalf("new order's line: %s; want line id 5, after the imported ones", r.body)
				}
			})
		}
	}
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "dump.jsonl")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestImportRefusals: a damaged dump and a non-empty store are refused
// and nothing is written; --merge skips what is there and equal, and
// stops, leaving nothing of its own, at a record that differs.
func TestImportRefusals(t *testing.T) {
	for _, b := range backends[:2] {
		t.Run(b.name, func(t *testing.T) {
			src := b.config(t)
			shopWithHistory(t, src)
			good := exportTo(t, src)

			dst := b.config(t)
			empty := exportTo(t, dst)
			truncated := good[:len(good)-len(good)/3]
			altered := bytes.Replace(good, []byte(`"price":"100000.99"`), []byte(`"price":"100000.98"`), 1)
			if bytes.Equal(altered, good) {
				t.Fatal("nothing altered")
			}
			for name, damaged := range map[string][]byte{"truncated": truncated, "altered": altered} {
				out, err := runCommandIn(t, dst, bytes.NewReader(damaged), "import")
				if err == nil || !strings.Contains(err.Error(), "dump line") {
					t.Fatalf("import of a %s dump from stdin: %v\n%s", name, err, out)
				}
				if got := exportTo(t, dst); !bytes.Equal(got, empty) {
					t.Fatalf("a %s dump left data behind:\n%s", name, got)
				}
			}

			if out, err := runCommandIn(t, dst, bytes.NewReader(good), "import"); err != nil {
				t.Fatalf("import from stdin: %v\n%s", err, out)
			}
			if out, err := runCommand(t, dst, "import", "--in", writeFile(t, good)); err == nil || !strings.Contains(err.Error(), "not empty") {
				t.Fatalf("import into a non-empty store: %v\n%s", err, out)
			}
			out, err := runCommand(t, dst, "import", "--in", writeFile(t, good), "--merge")
			if err != nil || !strings.Contains(out, "imported 0 products and 0 orders") || !strings.Contains(out, "already there and equal: 3 products, 2 orders") {
				t.Fatalf("merge of the same dump: %v\n%s", err, out)
			}

			// A dump with a new product and a product that differs from the
			// store's: the new one must not stay.
			other := b.config(t)
			s := startWith(t, other)
			s.expect(s.do("POST", "/products", strings.ReplaceAll(odyssey, "the_odyssey", "aaa_new")), 200, "")
			s.expect(s.do("POST", "/products", strings.ReplaceAll(odyssey, "the_odyssey", "the_enigma")), 200, "")
			conflicting := exportTo(t, other)
			before := exportTo(t, dst)
			out, err = runCommand(t, dst, "import", "--in", writeFile(t, conflicting), "--merge")
			if err == nil || !strings.Contains(err.Error(), "product the_enigma: a product with this id is here and differs") {
				t.Fatalf("merge of a conflicting dump: %v\n%s", err, out)
			}
			if after := exportTo(t, dst); !bytes.Equal(after, before) {
				t.Fatalf("a refused merge changed the store:\n%s\nwas\n%s", after, before)
			}
		})
	}
}

// dumpOf writes a dump of ps and rs, sealed as export seals it, whatever
// the records hold: for dumps that a careless or hostile hand made.
func dumpOf(t *testing.T, ps []products.Product, rs []orders.Record, ids dump.IDs) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := dump.NewWriter(&buf)
	for _, p := range ps {
		if err := w.Product(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range rs {
		if err := w.Order(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(ids); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// orderRecord is an order of the_odyssey with lines of the given ids.
func orderRecord(id int64, lineIDs ...int64) orders.Record {
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	r := orders.Record{ID: id, CreatedAt: at, UpdatedAt: at}
	for _, l := range lineIDs {
		r.Lines = append(r.Lines, orders.RecordLine{Line: orders.Line{ID: l, ProductID: "the_odyssey",
			Price: decimal.RequireFromString("100000.99"), Quantity: 1}, CreatedAt: at, UpdatedAt: at})
	}
	return r
}

var odysseyProduct = products.Product{ID: "the_odyssey", Title: "The Odyssey", PassengerCapacity: 101, MaximumSpeed: 5, InStock: 10}

// TestImportRefusesSharedLineIDs: two orders of a dump with one line id
// (its checksum right) are refused whole, in whichever batch each comes;
// nothing of the dump is imported, and no order loses a line.
func TestImportRefusesSharedLineIDs(t *testing.T) {
	for _, b := range backends[:2] {
		t.Run(b.name, func(t *testing.T) {
			cfg := b.config(t)
			empty := exportTo(t, cfg)
			for name, rs := range map[string][]orders.Record{
				"neighbours": {orderRecord(1, 5), orderRecord(2, 5)},
				// Over 1,000 orders: the two are in different batches.
				"far apart": append(append([]orders.Record{orderRecord(1, 5)}, func() (rs []orders.Record) {
					for id := int64(2); id <= 1500; id++ {
						rs = append(rs, orderRecord(id, id+10))
					}
					return rs
				}()...), orderRecord(1501, 5)),
			} {
				d := dumpOf(t, []products.Product{odysseyProduct}, rs, dump.IDs{})
				out, err := runCommand(t, cfg, "import", "--in", writeFile(t, d))
				if err == nil || !strings.Contains(err.Error(), "line id 5 is also a line of an earlier order") {
					t.Fatalf("%s: import of a dump with a line id in two orders: %v\n%s", name, err, out)
				}
				if got := exportTo(t, cfg); !bytes.Equal(got, empty) {
					t.Fatalf("%s: the refused dump left data behind:\n%.2000s", name, got)
				}
			}
		})
	}
}

// TestImportRefusesIDsAtTheEnd: a trailer whose last order id is moved
// to the end of the id range is refused, by the checksum (version 2) or
// by the range (version 1, whose checksum does not cover the trailer),
// and nothing is imported: the shop keeps placing orders with the next
// ids. A version-1 export imports as any dump.
func TestImportRefusesIDsAtTheEnd(t *testing.T) {
	for _, b := range backends[:2] {
		t.Run(b.name, func(t *testing.T) {
			src := b.config(t)
			shopWithHistory(t, src)
			v2 := exportTo(t, src)
			if !bytes.HasPrefix(v2, []byte(`{"airship_dump":{"version":2}}`)) {
				t.Fatalf("export wrote %.40s; want version 2", v2)
			}
			file := filepath.Join(t.TempDir(), "v1.jsonl")
			if out, err := runCommand(t, src, "export", "--out", file, "--dump-version", "1"); err != nil {
				t.Fatalf("export --dump-version 1: %v\n%s", err, out)
			}
			v1, err := os.ReadFile(file)
			if err != nil || !bytes.HasPrefix(v1, []byte(`{"airship_dump":{"version":1}}`)) || !bytes.Contains(v1, []byte(`"last_order_id":3,`)) {
				t.Fatalf("export --dump-version 1 wrote %s (%v)", v1, err)
			}
			if out, err := runCommand(t, src, "export", "--dump-version", "3"); err == nil || !strings.Contains(err.Error(), "--dump-version must be from 1 to 2") {
				t.Fatalf("export --dump-version 3: %v\n%s", err, out)
			}

			dst := b.config(t)
			empty := exportTo(t, dst)
			for name, c := range map[string]struct {
				dump    []byte
				problem string
			}{
				"version 2": {bytes.Replace(v2, []byte(`"last_order_id":3,`), []byte(`"last_order_id":2147483647,`), 1), "the checksum does not match"},
				"version 1": {bytes.Replace(v1, []byte(`"last_order_id":3,`), []byte(`"last_order_id":2147483647,`), 1),
					"the trailer's last_order_id 2147483647 is not from 1 to 2146483647"},
			} {
				out, err := runCommand(t, dst, "import", "--in", writeFile(t, c.dump))
				if err == nil || !strings.Contains(err.Error(), c.problem) {
					t.Fatalf("%s: import of a trailer at the end of the ids: %v\n%s", name, err, out)
				}
				if got := exportTo(t, dst); !bytes.Equal(got, empty) {
					t.Fatalf("%s: the refused dump left data behind:\n%s", name, got)
				}
			}
			if out, err := runCommand(t, dst, "import", "--in", writeFile(t, v1)); err != nil {
				t.Fatalf("import of a version-1 export: %v\n%s", err, out)
			}
			if got := exportTo(t, dst); !bytes.Equal(got, v2) {
				t.Fatalf("the copy of a version-1 export exports as\n%s\nnot as the original\n%s", got, v2)
			}
			s := startWith(t, dst)
			s.expect(s.do("POST", "/orders", orderOfOne), 200, `{"id": 4}`)
		})
	}
}

// TestImportChecksBeforeAnythingIsVisible: import --merge into a store
// that is serving, from a pipe, of a dump whose trailer turns out bad:
// while the import reads, no product of the dump is ever visible, clients
// keep placing orders and changing products, and when the trailer fails
// nothing of the dump is there and nothing clients did is undone. The
// dump is spooled to --spool-dir, which is empty afterwards.
func TestImportChecksBeforeAnythingIsVisible(t *testing.T) {
	for _, b := range backends[:2] {
		t.Run(b.name, func(t *testing.T) {
			cfg := b.config(t)
			s := startWith(t, cfg)
			for _, id := range []string{"r_existing", "q_existing"} {
				s.expect(s.do("POST", "/products", strings.ReplaceAll(odyssey, "the_odyssey", id)), 200, "")
			}
			p1 := products.Product{ID: "p1", Title: "P1", PassengerCapacity: 1, MaximumSpeed: 1, InStock: 100}
			p2 := products.Product{ID: "p2", Title: "P2", PassengerCapacity: 1, MaximumSpeed: 1, InStock: 100}
			d := dumpOf(t, []products.Product{p1, p2}, []orders.Record{orderRecord(500, 500)}, dump.IDs{LastOrderID: 600, LastLineID: 600})
			cut := bytes.LastIndex(d[:len(d)-1], []byte("\n")) + 1
			body, trailer := d[:cut], bytes.Clone(d[cut:])
			digit := bytes.Index(trailer, []byte(`"sha256":"`)) + len(`"sha256":"`)
			trailer[digit] = "10"[min(1, int(trailer[digit]-'0'))] // another first digit

			spool := t.TempDir()
			pr, pw := io.Pipe()
			type result struct {
				out string
				err error
			}
			done := make(chan result, 1)
			go func() {
				out, err := runCommandIn(t, cfg, pr, "import", "--merge", "--spool-dir", spool)
				pr.CloseWithError(err) // a failed import stops the writes below
				done <- result{out, err}
			}()
			if _, err := pw.Write(body); err != nil {
				t.Fatalf("the import stopped reading before the trailer: %v (%+v)", err, <-done)
			}

			// Every record but the trailer has been read. Clients go on.
			placed := s.do("POST", "/orders", `{"order_details": [{"product_id": "r_existing", "price": "1.00", "quantity": 3}]}`)
			s.expect(placed, 200, "")
			s.expect(s.do("PATCH", "/products/q_existing", `{"title": "Patched meanwhile"}`), 200, "")
			// No product of the dump may be seen before the dump is checked.
			visible := false
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !visible; time.Sleep(50 * time.Millisecond) {
				visible = s.do("GET", "/products/p1", "").status == 200
			}
			if visible {
				t.Errorf("product p1 of the dump was visible before the dump was checked")
				// What the old shop's clients did with it: an order of 40
				// and a change.
				s.expect(s.do("POST", "/orders", `{"order_details": [{"product_id": "p1", "price": "1.00", "quantity": 40}]}`), 200, "")
				s.expect(s.do("PATCH", "/products/p2", `{"title": "Patched P2"}`), 200, "")
			}

			if _, err := pw.Write(trailer); err != nil {
				t.Logf("write the trailer: %v", err)
			}
			pw.Close()
			res := <-done
			if res.err == nil || !strings.Contains(res.err.Error(), "checksum does not match") || !strings.Contains(res.err.Error(), "nothing was imported") {
				t.Fatalf("import of a dump with a bad trailer: %v\n%s", res.err, res.out)
			}
			for _, id := range []string{"p1", "p2"} {
				if r := s.do("GET", "/products/"+id, ""); r.status != 404 {
					t.Errorf("GET /products/%s after the failed import: %d %s", id, r.status, r.body)
				}
			}
			s.expect(s.do("GET", "/orders/500", ""), 404, "")
			var id struct{ ID int64 }
			if err := json.Unmarshal(placed.body, &id); err != nil {
				t.Fatal(err)
			}
			if r := s.do("GET", fmt.Sprintf("/orders/%d", id.ID), ""); r.status != 200 || !strings.Contains(string(r.body), `"product_id":"r_existing"`) {
				t.Errorf("the order placed meanwhile: %d %s", r.status, r.body)
			}
			s.expect(s.do("GET", "/products/r_existing", ""), 200, strings.ReplaceAll(strings.ReplaceAll(odyssey, "the_odyssey", "r_existing"), `"in_stock": 10`, `"in_stock": 7`))
			s.expect(s.do("GET", "/products/q_existing", ""), 200, strings.ReplaceAll(strings.ReplaceAll(odyssey, "the_odyssey", "q_existing"), "The Odyssey", "Patched meanwhile"))
			if left, _ := os.ReadDir(spool); len(left) > 0 {
				t.Errorf("the import left %d files in --spool-dir: %v", len(left), left)
			}
		})
	}
}

// TestExportToSpecialFiles: export --out writes through to what is not a
// regular file (a FIFO), follows a symbolic link to the regular file it
// names and leaves the link a link, refuses a link to nothing and a
// directory, and replaces a regular file whole.
func TestExportToSpecialFiles(t *testing.T) {
	cfg := backends[1].config(t)
	shopWithHistory(t, cfg)
	want := exportTo(t, cfg)
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }

	// A FIFO: its reader gets the dump; it is still a FIFO afterwards.
	if err := syscall.Mkfifo(at("fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		f, err := os.Open(at("fifo"))
		if err != nil {
			got <- []byte(err.Error())
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- b
	}()
	if out, err := runCommand(t, cfg, "export", "--out", at("fifo")); err != nil {
		t.Fatalf("export --out a FIFO: %v\n%s", err, out)
	}
	if fi, err := os.Lstat(at("fifo")); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Fatalf("the FIFO after export: %v, %v; want a FIFO still", fi.Mode(), err) // (its reader waits on for a writer)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the FIFO's reader got %d bytes: %.200s; want the dump", len(b), b)
	}

	// A symbolic link to a regular file: the file gets the dump, the link
	// stays.
	if err := os.WriteFile(at("target.jsonl"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target.jsonl", at("link.jsonl")); err != nil {
		t.Fatal(err)
	}
	if out, err := runCommand(t, cfg, "export", "--out", at("link.jsonl")); err != nil {
		t.Fatalf("export --out a link: %v\n%s", err, out)
	}
	if fi, err := os.Lstat(at("link.jsonl")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the link after export: %v, %v; want a link still", fi.Mode(), err)
	}
	if b, err := os.ReadFile(at("target.jsonl")); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("the link's target after export: %.200s, %v; want the dump", b, err)
	}

	// A link to nothing, and a directory: refused, left as they are.
	if err := os.Symlink("nowhere.jsonl", at("dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(at("dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, problem := range map[string]string{"dangling": "is a symbolic link to nothing", "dir": "is a directory"} {
		if out, err := runCommand(t, cfg, "export", "--out", at(name)); err == nil || !strings.Contains(err.Error(), problem) {
			t.Fatalf("export --out %s: %v\n%s; want an error saying it %s", name, err, out, problem)
		}
	}
	if target, err := os.Readlink(at("dangling")); err != nil || target != "nowhere.jsonl" {
		t.Fatalf("the link to nothing after export: %q, %v", target, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 5 {
		t.Fatalf("export left %d entries in the directory; want the 5 the test made: %v", len(left), left)
	}
}
