package orders_test

import (
	"testing"

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
