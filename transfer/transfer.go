// Package transfer moves airship's data in and out of its stores: the
// portable dump (Export and Import), the old shop's products in Redis
// (ImportLegacy) and generated data (Seed). The commands of package cli
// parse their flags and hand over an Opener for the configured stores;
// each transfer opens them once it has checked its own input.
package transfer

import (
	"context"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// Stores are the stores of the configured modules, open for a transfer.
type Stores struct {
	Products products.BulkStore
	Orders   orders.Store
	// DB is the SQL database that holds the orders, and the products too
	// when Embedded.
	DB *sqlx.DB
	// Embedded is set for the embedded store: products and orders in one
	// SQLite database, written in one transaction.
	Embedded bool
	// Close closes every store.
	Close func() error
}

// Opener opens the configured stores.
type Opener func(context.Context) (*Stores, error)
