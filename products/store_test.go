package products_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/productstest"
)

func TestRedisStore(t *testing.T) {
	productstest.Run(t, func(t *testing.T) products.Store {
		rdb, prefix := testbackend.Redis(t)
		return products.NewRedisStore(rdb, prefix)
	})
}

func TestSQLStore(t *testing.T) {
	productstest.Run(t, func(t *testing.T) products.Store {
		return products.NewSQLStore(testbackend.SQLite(t))
	})
}

// TestMain fails the package if a test leaves goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRedisStoreReloadsScripts: after Redis forgets its scripts (a restart,
// SCRIPT FLUSH), stock operations load them again and run once.
func TestRedisStoreReloadsScripts(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testbackend.Redis(t)
	s := products.NewRedisStore(rdb, prefix)
	if err := s.Create(ctx, products.Product{ID: "a", Title: "A", InStock: 10}); err != nil {
		t.Fatal(err)
	}
	r := products.Reservation{ID: "r", Lines: []products.Line{{ProductID: "a", Quantity: 3}}, Deadline: time.Now().Add(time.Minute)}
	steps := []struct {
		name  string
		run   func() error
		stock int64
	}{
		{"Reserve", func() error { return s.Reserve(ctx, r) }, 7},
		{"Release", func() error { return s.Release(ctx, r) }, 10},
		{"Restock", func() error { return s.Restock(ctx, "x", r.Lines) }, 13},
	}
	for _, step := range steps {
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := step.run(); err != nil {
			t.Fatalf("%s after SCRIPT FLUSH: %v", step.name, err)
		}
		if p, _ := s.Get(ctx, "a"); p.InStock != step.stock {
			t.Fatalf("stock after %s = %d; want %d", step.name, p.InStock, step.stock)
		}
	}
}
