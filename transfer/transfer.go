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
	// Orders is nil when the process runs no orders module.
	Orders Orders
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

// Orders is what the transfers need of the orders store: its records,
// read and loaded whole, and its id sequences.
type Orders interface {
	// Records returns up to limit orders after the given id, with their
	// lines and timestamps.
	Records(ctx context.Context, after int64, limit int) ([]orders.Record, error)
	// Load writes orders as they are, ids and timestamps included.
	Load(ctx context.Context, batch []orders.Record) (orders.LoadResult, error)
	// LastIDs returns the highest order and line ids ever handed out.
	LastIDs(ctx context.Context) (order, line int64, err error)
	// MoveIDsPast moves the id sequences past the given ids.
	MoveIDsPast(ctx context.Context, lastOrder, lastLine int64) error
	// Analyze refreshes the planner's statistics after a bulk load.
	Analyze(ctx context.Context) error
}
