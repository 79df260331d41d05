package orders

import (
	"context"
	"fmt"

	"github.com/lib/pq"
)

// seedOrders writes a batch of orders and their lines in one statement:
// $1 is the number of orders, and line i belongs to order $2[i] (1-based
// within the batch). The ids are drawn from the orders sequence first, so
// that lines can refer to them.
const seedOrders = `
WITH ids AS MATERIALIZED (
    SELECT n, nextval(pg_get_serial_sequence('orders', 'id'))::integer AS id
    FROM generate_series(1, $1::int) AS n
), o AS (
    INSERT INTO orders (id) SELECT id FROM ids
)
INSERT INTO order_details (order_id, product_id, price, quantity)
SELECT ids.id, l.product_id, l.price, l.quantity
FROM unnest($2::int[], $3::text[], $4::numeric[], $5::int[]) WITH ORDINALITY AS l(n, product_id, price, quantity, k)
JOIN ids USING (n)
ORDER BY l.k`

// Seed writes orders in bulk, in one statement: for loading test data
// (airship seed), not for serving requests. It takes no stock and does not
// check that the products exist.
func (s *PGStore) Seed(ctx context.Context, orders [][]NewLine) error {
	if len(orders) == 0 {
		return nil
	}
	var (
		idx    []int64
		ids    []string
		prices []string
		qtys   []int64
	)
	for i, lines := range orders {
		for _, l := range lines {
			idx = append(idx, int64(i+1))
			ids = append(ids, l.ProductID)
			prices = append(prices, l.Price.StringFixed(2))
			qtys = append(qtys, l.Quantity)
		}
	}
	if _, err := s.db.ExecContext(ctx, seedOrders, len(orders),
		pq.Array(idx), pq.Array(ids), pq.Array(prices), pq.Array(qtys)); err != nil {
		return fmt.Errorf("seed %d orders: %w", len(orders), pgErr(err))
	}
	return nil
}

// Analyze refreshes the planner's statistics of the order tables. Run it
// after a bulk load: with stale statistics PostgreSQL may plan a listing as
// a sequential scan of every order line instead of index lookups.
func (s *PGStore) Analyze(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `ANALYZE orders, order_details`); err != nil {
		return fmt.Errorf("analyze orders: %w", pgErr(err))
	}
	return nil
}
