package orders

import (
	"context"
	"fmt"

	"github.com/airshipltd/airship/db"
)

const (
	sqlSeedOrder = `INSERT INTO orders DEFAULT VALUES`
	sqlSeedLine  = `INSERT INTO order_details (order_id, product_id, price, quantity) VALUES ($1, $2, $3, $4)`
)

// Seed writes orders in bulk, in one transaction with prepared INSERTs:
// for loading test data (airship seed), not for serving requests. It takes
// no stock and does not check that the products exist.
func (s *SQLStore) Seed(ctx context.Context, orders [][]NewLine) error {
	if len(orders) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seed orders: begin: %w", seedErr(err))
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	insOrder, err := tx.PrepareContext(ctx, sqlSeedOrder)
	if err != nil {
		return fmt.Errorf("seed orders: %w", seedErr(err))
	}
	defer insOrder.Close()
	insLine, err := tx.PrepareContext(ctx, sqlSeedLine)
	if err != nil {
		return fmt.Errorf("seed orders: %w", seedErr(err))
	}
	defer insLine.Close()
	for _, lines := range orders {
		res, err := insOrder.ExecContext(ctx)
		if err != nil {
			return fmt.Errorf("seed orders: %w", seedErr(err))
		}
		id, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("seed orders: %w", seedErr(err))
		}
		for _, l := range lines {
			if _, err := insLine.ExecContext(ctx, id, l.ProductID, l.Price.StringFixed(2), l.Quantity); err != nil {
				return fmt.Errorf("seed order %d: %w", id, seedErr(err))
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed orders: commit: %w", seedErr(err))
	}
	return nil
}

// seedErr marks errors that mean the database could not be used as
// ErrUnavailable.
func seedErr(err error) error {
	if db.Unavailable(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// Analyze refreshes the query planner's statistics (of every table);
// run it after a bulk load.
func (s *SQLStore) Analyze(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `ANALYZE`); err != nil {
		return fmt.Errorf("analyze orders: %w", seedErr(err))
	}
	return nil
}
