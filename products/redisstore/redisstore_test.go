package redisstore_test

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/productstest"
	"github.com/airshipltd/airship/products/redisstore"
)

func TestStore(t *testing.T) {
	productstest.Run(t, func(t *testing.T) products.Store {
		rdb, prefix := testbackend.Redis(t)
		return redisstore.New(rdb, prefix)
	})
}

func TestBulk(t *testing.T) {
	productstest.RunBulk(t, func(t *testing.T) products.BulkStore {
		rdb, prefix := testbackend.Redis(t)
		return redisstore.New(rdb, prefix)
	})
}

// TestMain fails the package if a test leaves goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestReloadsScripts: after Redis forgets its scripts (a restart,
// SCRIPT FLUSH), stock operations load them again and run once. It flushes
// the scripts of a Redis server of its own: on the shared one, other
// tests' requests would meet the flush too.
func TestReloadsScripts(t *testing.T) {
	ctx := t.Context()
	rdb := testbackend.PrivateRedis(t)
	s := redisstore.New(rdb, "airship:")
	if err := s.Create(ctx, products.Product{ID: "a", Title: "A", InStock: 10}); err != nil {
		t.Fatal(err)
	}
	r := products.Reservation{ID: "r", Lines: []products.Line{{ProductID: "a", Quantity: 3}}, Deadline: time.Now().Add(time.Minute)}
	steps := []struct {
		name  string
		run   func() error
		stock int64
	}{
		{"Reserve", func() error { _, err := s.Reserve(ctx, r); return err }, 7},
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

// TestUpgrade: products written before the id index and
// incarnations existed are listed and get an incarnation; one deleted
// while the upgrade runs is not brought back.
func TestUpgrade(t *testing.T) {
	ctx := t.Context()
	rdb, prefix := testbackend.Redis(t)
	for i := range 2500 {
		key := fmt.Sprintf("%sproduct:{old%04d}", prefix, i)
		if err := rdb.HSet(ctx, key, "title", "Old", "passenger_capacity", "1", "maximum_speed", "2", "in_stock", "3").Err(); err != nil {
			t.Fatal(err)
		}
	}
	s := redisstore.New(rdb, prefix)
	if page, err := s.List(ctx, "", 10); err != nil || len(page.Products) != 0 {
		t.Fatalf("List before the upgrade = %+v, %v; want nothing (no index yet)", page, err)
	}
	if err := s.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for cursor := ""; ; {
		page, err := s.List(ctx, cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Products {
			if p.Incarnation == "" || p.Title != "Old" || p.InStock != 3 {
				t.Fatalf("upgraded product %+v", p)
			}
			seen++
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if seen != 2500 {
		t.Fatalf("listed %d upgraded products; want 2500", seen)
	}
	before, _ := s.Get(ctx, "old0001")
	// A second upgrade changes nothing, and a product deleted since stays deleted.
	if err := s.Delete(ctx, "old0002"); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, prefix+"schema").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Get(ctx, "old0001"); after != before {
		t.Fatalf("second upgrade changed %+v to %+v", before, after)
	}
	if n, _ := rdb.Exists(ctx, prefix+"product:{old0002}").Result(); n != 0 {
		t.Fatal("upgrade brought a deleted product back")
	}
}
