package orders

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/internal/sqlite"
)

const (
	liteRecords = `
SELECT o.id, o.created_at, o.updated_at, d.id, d.product_id, d.price, d.quantity, d.product_incarnation, d.created_at, d.updated_at
FROM (SELECT id, created_at, updated_at FROM orders WHERE id > $1 ORDER BY id LIMIT $2) o
LEFT JOIN order_details d ON d.order_id = o.id
ORDER BY o.id, d.id`
	liteRecordsOf = `
SELECT o.id, o.created_at, o.updated_at, d.id, d.product_id, d.price, d.quantity, d.product_incarnation, d.created_at, d.updated_at
FROM orders o LEFT JOIN order_details d ON d.order_id = o.id
WHERE o.id IN (SELECT value FROM json_each($1))
ORDER BY o.id, d.id`
	liteTakenLines = `SELECT id, order_id FROM order_details WHERE id IN (SELECT value FROM json_each($1))`
	// No ON CONFLICT: a taken id fails the load, it is never skipped.
	liteLoadOrder = `INSERT INTO orders (id, created_at, updated_at) VALUES ($1, $2, $3)`
	liteLoadLine  = `INSERT INTO order_details (id, order_id, product_id, price, quantity, product_incarnation, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
)

// WithTx returns the store bound to tx: its calls run in tx and commit or
// roll back with it.
func (s *SQLStore) WithTx(tx *sqlx.Tx) *SQLStore {
	return newSQLStore(s.conn.WithTx(tx), s.opts)
}

// Records returns up to limit orders with id > after, oldest first, with
// every stored field.
func (s *SQLStore) Records(ctx context.Context, after int64, limit int) ([]Record, error) {
	rs, err := s.conn.Q().QueryContext(ctx, liteRecords, after, limit)
	if err != nil {
		return nil, fmt.Errorf("order records: %w", sqlite.Classify(err))
	}
	found, err := scanRecords(rs)
	if err != nil {
		return nil, fmt.Errorf("order records: %w", sqlite.Classify(err))
	}
	return found, nil
}

// Load writes the records of a batch that are not there, with their
// ids, in one transaction (or the one the store is bound to); see
// LoadResult. A batch with a conflict writes nothing. SQLite moves the id
// sequences (AUTOINCREMENT) past the ids it is given by itself.
func (s *SQLStore) Load(ctx context.Context, batch []Record) (LoadResult, error) {
	var res LoadResult
	err := s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		rs, err := tx.QueryContext(ctx, liteRecordsOf, idList(batch))
		if err != nil {
			return fmt.Errorf("load orders: %w", err)
		}
		there, err := scanRecords(rs)
		if err != nil {
			return fmt.Errorf("load orders: %w", err)
		}
		var write []Record
		write, res = loadPlan(batch, there)
		if len(write) == 0 || res.Conflicts != nil {
			return nil
		}
		taken := map[int64]int64{}
		ids, err := json.Marshal(lineIDs(write))
		if err != nil {
			return err
		}
		lrows, err := tx.QueryContext(ctx, liteTakenLines, string(ids))
		if err != nil {
			return fmt.Errorf("load orders: %w", err)
		}
		defer lrows.Close()
		for lrows.Next() {
			var id, order int64
			if err := lrows.Scan(&id, &order); err != nil {
				return fmt.Errorf("load orders: %w", err)
			}
			taken[id] = order
		}
		if err := lrows.Err(); err != nil {
			return fmt.Errorf("load orders: %w", err)
		}
		if res.Conflicts = takenLines(write, taken); res.Conflicts != nil {
			return nil
		}
		insOrder, err := tx.PrepareContext(ctx, liteLoadOrder)
		if err != nil {
			return fmt.Errorf("load orders: %w", err)
		}
		defer insOrder.Close()
		insLine, err := tx.PrepareContext(ctx, liteLoadLine)
		if err != nil {
			return fmt.Errorf("load orders: %w", err)
		}
		defer insLine.Close()
		stamp := func(t time.Time) string { return t.UTC().Format(liteTimeFormat) }
		for _, r := range write {
			if _, err := insOrder.ExecContext(ctx, r.ID, stamp(r.CreatedAt), stamp(r.UpdatedAt)); err != nil {
				return fmt.Errorf("load order %d: %w", r.ID, err)
			}
			for _, l := range r.Lines {
				if _, err := insLine.ExecContext(ctx, l.ID, r.ID, l.ProductID, l.Price.StringFixed(2), l.Quantity, l.Incarnation,
					stamp(l.CreatedAt), stamp(l.UpdatedAt)); err != nil {
					return fmt.Errorf("load order %d line %d: %w", r.ID, l.ID, err)
				}
			}
		}
		res.Created = len(write)
		return nil
	})
	if err != nil {
		return LoadResult{}, err
	}
	return res, nil
}

const (
	liteLastIDs = `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'orders'), 0),
    COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'order_details'), 0)`
	liteMoveSequence = `UPDATE sqlite_sequence SET seq = max(seq, $2) WHERE name = $1`
	liteAddSequence  = `INSERT INTO sqlite_sequence (name, seq)
SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = $1)`
)

// LastIDs returns the highest order and line ids the database handed out
// (AUTOINCREMENT never hands them out again), 0 if none.
func (s *SQLStore) LastIDs(ctx context.Context) (order, line int64, err error) {
	if err := s.conn.Q().QueryRowxContext(ctx, liteLastIDs).Scan(&order, &line); err != nil {
		return 0, 0, fmt.Errorf("last ids: %w", sqlite.Classify(err))
	}
	return order, line, nil
}

// Finish moves the id sequences past the given last ids (SQLite already
// moved them past the loaded ids: see Load).
func (s *SQLStore) Finish(ctx context.Context, lastOrder, lastLine int64) error {
	return s.MoveIDsPast(ctx, lastOrder, lastLine)
}

// MoveIDsPast moves the id sequences past the given last ids; a sequence
// already further on stays where it is.
func (s *SQLStore) MoveIDsPast(ctx context.Context, lastOrder, lastLine int64) error {
	return s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		for _, seq := range []struct {
			name string
			last int64
		}{{"orders", lastOrder}, {"order_details", lastLine}} {
			for _, q := range []string{liteMoveSequence, liteAddSequence} {
				if _, err := tx.ExecContext(ctx, q, seq.name, seq.last); err != nil {
					return fmt.Errorf("move sequence of %s: %w", seq.name, err)
				}
			}
		}
		return nil
	})
}
