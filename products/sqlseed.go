package products

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

const sqlSeed = `INSERT INTO products (id, title, passenger_capacity, maximum_speed, in_stock, incarnation)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (id) DO UPDATE SET title = excluded.title,
    passenger_capacity = excluded.passenger_capacity,
    maximum_speed = excluded.maximum_speed,
    in_stock = excluded.in_stock,
    incarnation = excluded.incarnation`

// Seed writes products in bulk, in one transaction with a prepared INSERT.
// Unlike Create it overwrites products that exist. It is for loading test
// data (airship seed), not for serving requests.
func (s *SQLStore) Seed(ctx context.Context, ps []Product) error {
	if len(ps) == 0 {
		return nil
	}
	return s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		stmt, err := tx.PrepareContext(ctx, sqlSeed)
		if err != nil {
			return fmt.Errorf("seed products: %w", err)
		}
		defer stmt.Close()
		for _, p := range ps {
			if _, err := stmt.ExecContext(ctx, p.ID, p.Title, p.PassengerCapacity, p.MaximumSpeed, p.InStock, p.IncarnationOrNew()); err != nil {
				return fmt.Errorf("seed product %s: %w", p.ID, err)
			}
		}
		return nil
	})
}
