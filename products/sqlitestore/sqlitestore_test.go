package sqlitestore_test

import (
	"context"
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
