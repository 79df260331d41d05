package orders

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/internal/sqlite"
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
	return s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		insOrder, err := tx.PrepareContext(ctx, sqlSeedOrder)
		if err != nil {
			return fmt.Errorf("seed orders: %w", err)
		}
		defer insOrder.Close()
		insLine, err := tx.PrepareContext(ctx, sqlSeedLine)
		if err != nil {
			return fmt.Errorf("seed orders: %w", err)
		}
		defer insLine.Close()
		for _, lines := range orders {
			res, err := insOrder.ExecContext(ctx)
			if err != nil {
				return fmt.Errorf("seed orders: %w", err)
			}
			id, err := res.LastInsertId()
			if err != nil {
				return fmt.Errorf("seed orders: %w", err)
			}
			for _, l := range lines {
				if _, err := insLine.ExecContext(ctx, id, l.ProductID, l.Price.StringFixed(2), l.Quantity); err != nil {
					return fmt.Errorf("seed order %d: %w", id, err)
				}
			}
		}
		return nil
	})
}

// Analyze refreshes the query planner's statistics (of every table);
// run it after a bulk load.
func (s *SQLStore) Analyze(ctx context.Context) error {
	if _, err := s.conn.Q().ExecContext(ctx, `ANALYZE`); err != nil {
		return fmt.Errorf("analyze orders: %w", sqlite.Classify(err))
	}
	return nil
}
