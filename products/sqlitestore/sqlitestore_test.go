package sqlitestore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/productstest"
	"github.com/airshipltd/airship/products/sqlitestore"
)

// newStores are the store as airship serve opens it (reads on the read
// pool) and on its writer connection alone (as for an in-memory database).
var newStores = map[string]func(t *testing.T) *sqlitestore.Store{
	"reads on the read pool": func(t *testing.T) *sqlitestore.Store {
		db := testbackend.SQLite(t)
		return sqlitestore.New(db, sqlitestore.WithReads(testbackend.SQLiteReads(t, db)))
	},
	"writer only": func(t *testing.T) *sqlitestore.Store { return sqlitestore.New(testbackend.SQLite(t)) },
}

func TestStore(t *testing.T) {
	for name, newStore := range newStores {
		t.Run(name, func(t *testing.T) {
			productstest.Run(t, func(t *testing.T) products.Store { return newStore(t) })
		})
	}
}

func TestBulk(t *testing.T) {
	for name, newStore := range newStores {
		t.Run(name, func(t *testing.T) {
			productstest.RunBulk(t, func(t *testing.T) products.BulkStore { return newStore(t) })
		})
	}
}

// TestReadsDoNotWaitForTheWriter: with a read pool, a read answers while
// a write transaction holds the writer connection, and sees what was
// committed before it (not the transaction's change); once the change
// commits, the next read sees it. On the writer alone the read would wait
// for the transaction, past the deadline.
func TestReadsDoNotWaitForTheWriter(t *testing.T) {
	ctx := t.Context()
	db := testbackend.SQLite(t)
	s := sqlitestore.New(db, sqlitestore.WithReads(testbackend.SQLiteReads(t, db)))
	if err := s.Create(ctx, products.Product{ID: "a", Title: "A", InStock: 10}); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `UPDATE products SET in_stock = 7 WHERE id = 'a'`); err != nil {
		t.Fatal(err)
	}
	readCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := s.Get(readCtx, "a")
	if err != nil || p.InStock != 10 {
		t.Fatalf("get during a write transaction: stock %d, %v; want 10 (the committed stock) at once", p.InStock, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Get(ctx, "a"); err != nil || p.InStock != 7 {
		t.Fatalf("get after the commit: stock %d, %v; want 7", p.InStock, err)
	}
}

// TestMain fails the package if a test leaves goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestWritesChecked: when a trigger in the embedded database
// swallows a write that must happen (SELECT RAISE(IGNORE): the statement
// reports success and changes nothing), the call fails and leaves the
// stock as it was, instead of reporting stock held or given back that
// was not.
func TestWritesChecked(t *testing.T) {
	cases := []struct {
		table string
		call  func(ctx context.Context, s *sqlitestore.Store) error
	}{
		{"product_reservations", reserve},
		{"product_holds", reserve},
		{"product_restocks", func(ctx context.Context, s *sqlitestore.Store) error {
			return s.Restock(ctx, "restock-1", []products.Line{{ProductID: "a", Quantity: 2}})
		}},
	}
	for _, c := range cases {
		t.Run(c.table, func(t *testing.T) {
			ctx := t.Context()
			db := testbackend.SQLite(t)
			s := sqlitestore.New(db)
			if err := s.Create(ctx, products.Product{ID: "a", Title: "A", InStock: 10}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `CREATE TRIGGER swallow BEFORE INSERT ON `+c.table+` BEGIN SELECT RAISE(IGNORE); END`); err != nil {
				t.Fatal(err)
			}
			if err := c.call(ctx, s); err == nil {
				t.Fatalf("the insert into %s was swallowed, and the call succeeded; want an error", c.table)
			}
			if p, err := s.Get(ctx, "a"); err != nil || p.InStock != 10 {
				t.Fatalf("stock %d, %v; want 10", p.InStock, err)
			}
		})
	}
}

func reserve(ctx context.Context, s *sqlitestore.Store) error {
	_, err := s.Reserve(ctx, products.Reservation{ID: "r", Lines: []products.Line{{ProductID: "a", Quantity: 3}},
		Deadline: time.Now().Add(time.Minute)})
	return err
}

// TestTake: Take takes the stock of every line (repeated products merged)
// or, when a line cannot be served, none of it, with the error Reserve
// gives; it records no reservation.
func TestTake(t *testing.T) {
	ctx := t.Context()
	db := testbackend.SQLite(t)
	s := sqlitestore.New(db)
	for _, p := range []products.Product{{ID: "a", Title: "A", InStock: 10}, {ID: "b", Title: "B", InStock: 1}} {
		if err := s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	stock := func(id string) int64 {
		t.Helper()
		p, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return p.InStock
	}

	taken, err := s.Take(ctx, []products.Line{{ProductID: "a", Quantity: 2}, {ProductID: "a", Quantity: 1}, {ProductID: "b", Quantity: 1}})
	if err != nil || len(taken) != 2 || taken["a"] == "" || taken["b"] == "" {
		t.Fatalf("Take = %v, %v; want the incarnations of a and b", taken, err)
	}
	if a, b := stock("a"), stock("b"); a != 7 || b != 0 {
		t.Fatalf("stock a %d, b %d; want 7 and 0", a, b)
	}

	_, err = s.Take(ctx, []products.Line{{ProductID: "a", Quantity: 1}, {ProductID: "b", Quantity: 1}})
	var short *products.OutOfStockError
	if !errors.As(err, &short) || short.ID != "b" || err.Error() != short.Error() {
		t.Fatalf("Take past the stock: %v; want the *OutOfStockError of b as it is", err)
	}
	_, err = s.Take(ctx, []products.Line{{ProductID: "a", Quantity: 1}, {ProductID: "nope", Quantity: 1}})
	var missing *products.NotFoundError
	if !errors.As(err, &missing) || missing.ID != "nope" || err.Error() != missing.Error() {
		t.Fatalf("Take of a missing product: %v; want the *NotFoundError of nope as it is", err)
	}
	if a := stock("a"); a != 7 {
		t.Fatalf("stock a %d after the failed takes; want 7 (none taken)", a)
	}

	var records int
	if err := db.GetContext(ctx, &records, `SELECT (SELECT count(*) FROM product_reservations) + (SELECT count(*) FROM product_holds)`); err != nil || records != 0 {
		t.Fatalf("%d reservation records, %v; want none", records, err)
	}
}
