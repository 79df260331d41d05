package orders_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"go.uber.org/goleak"

	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/orders/orderstest"
	"github.com/airshipltd/airship/products"
)

func TestPGStore(t *testing.T) {
	orderstest.Run(t, func(t *testing.T) orderstest.Stores {
		rdb, prefix := testbackend.Redis(t)
		return orderstest.Stores{
			Orders:   orders.NewPGStore(testbackend.Postgres(t)),
			Products: products.NewRedisStore(rdb, prefix),
		}
	})
}

func TestSQLStore(t *testing.T) {
	orderstest.Run(t, func(t *testing.T) orderstest.Stores {
		db := testbackend.SQLite(t)
		return orderstest.Stores{Orders: orders.NewSQLStore(db), Products: products.NewSQLStore(db), Tx: orders.NewSQLTransactor(db)}
	})
}

// TestMain fails the package if a test leaves goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestCommitInBackground: with CommitInBackground, Place answers before
// the reservation is committed; once Wait returns, every reservation is
// committed and the stock is what the orders took.
func TestCommitInBackground(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testbackend.Redis(t)
	stock := products.NewRedisStore(rdb, prefix)
	svc := orders.NewService(orders.NewPGStore(testbackend.Postgres(t)), stock,
		slog.New(slog.NewTextHandler(io.Discard, nil)), orders.Config{HoldFor: time.Minute, CommitInBackground: true})
	if err := stock.Create(ctx, products.Product{ID: "a", Title: "A", InStock: 50}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := svc.Place(ctx, []orders.NewLine{{ProductID: "a", Price: decimal.RequireFromString("1.00"), Quantity: 2}}); err != nil {
				t.Errorf("Place: %v", err)
			}
		})
	}
	wg.Wait()
	svc.Wait()
	if left, err := stock.Expired(ctx, time.Now().Add(time.Hour), 100); err != nil || len(left) != 0 {
		t.Fatalf("reservations left after Wait: %d, %v", len(left), err)
	}
	if p, _ := stock.Get(ctx, "a"); p.InStock != 10 {
		t.Fatalf("stock %d; want 10", p.InStock)
	}
}
