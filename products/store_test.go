package products_test

import (
	"testing"

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
