package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/events"
	"github.com/airshipltd/airship/internal/sqlite"
	"github.com/airshipltd/airship/orders"
)

// sqliteDialect is the dialect of the embedded database (see
// db/migrations/sqlite). Prices are kept as TEXT with two decimals, so
// they round-trip exactly; timestamps as TEXT in liteTimeFormat. One process uses the database and
// every transaction holds its write lock, so nothing is locked row by row;
// one relay reads the outbox, and holds no transaction while it publishes
// (that would hold the only writer lock): it reads the pending events,
// publishes them, then marks those confirmed in a transaction of their
// own. A crash between the confirm and the mark publishes them again (at
// least once, same message id).
var sqliteDialect = dialect{
	now:         liteNow,
	inIDs:       `IN (SELECT value FROM json_each($1))`,
	ids:         liteIDs,
	timeArg:     func(t time.Time) any { return t.UTC().Format(liteTimeFormat) },
	classify:    sqlite.Classify,
	create:      liteCreate,
	load:        liteLoad,
	lastIDs:     liteLastIDs,
	moveIDsPast: liteMoveIDsPast,
}

func init() {
	sqliteDialect.stmt = newStatements(&sqliteDialect, liteListOrders, liteRecords, `ANALYZE`)
}

// liteNow is the current time in the format the migrations use for
// timestamps; liteTimeFormat is the same format in Go.
const (
	liteNow        = `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`
	liteTimeFormat = "2006-01-02T15:04:05.000Z"
)

const (
	liteListOrders = `
SELECT o.id, d.id, d.product_id, d.price, d.quantity, d.product_incarnation
FROM (SELECT id FROM orders WHERE id > $1 ORDER BY id LIMIT $2) o
JOIN order_details d ON d.order_id = o.id
ORDER BY o.id, d.id`
	liteRecords = `
SELECT ` + recordColumns + `
FROM (SELECT id, created_at, updated_at FROM orders WHERE id > $1 ORDER BY id LIMIT $2) o
LEFT JOIN order_details d ON d.order_id = o.id
ORDER BY o.id, d.id`

	liteInsertOrder = `INSERT INTO orders DEFAULT VALUES RETURNING id, created_at`
	// The lines take the order's created_at: an order's timestamps are
	// one, as on PostgreSQL, where now() is the transaction's time.
	liteInsertLine = `INSERT INTO order_details (order_id, product_id, price, quantity, product_incarnation, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`

	// No ON CONFLICT: a taken id fails the load, it is never skipped.
	liteLoadOrder = `INSERT INTO orders (id, created_at, updated_at) VALUES ($1, $2, $3)`
	liteLoadLine  = `INSERT INTO order_details (id, order_id, product_id, price, quantity, product_incarnation, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

	liteSelectLastIDs = `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'orders'), 0),
    COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'order_details'), 0)`
	liteMoveSequence = `UPDATE sqlite_sequence SET seq = max(seq, $2) WHERE name = $1`
	liteAddSequence  = `INSERT INTO sqlite_sequence (name, seq)
SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = $1)`
)

// liteIDs is ids as a JSON array, the parameter of json_each.
func liteIDs(ids []int64) any {
	raw, _ := json.Marshal(ids) // integers always marshal
	if ids == nil {
		raw = []byte("[]")
	}
	return string(raw)
}

// liteCreate writes an order, its lines, its event and the claim of its
// reservation in one transaction.
func liteCreate(ctx context.Context, s *Store, reservationID string, lines []orders.NewLine) (orders.Order, error) {
	var o orders.Order
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var created string
		if err := tx.QueryRowxContext(ctx, liteInsertOrder).Scan(&o.ID, &created); err != nil {
			return fmt.Errorf("create order: %w", err)
		}
		if o.ID > orders.MaxID { // AUTOINCREMENT goes on to 2^63-1; the API stops here
			return orders.ErrIDsExhausted
		}
		o.Lines = make([]orders.Line, len(lines))
		for i, l := range lines {
			var id int64
			if err := tx.GetContext(ctx, &id, liteInsertLine, o.ID, l.ProductID, l.Price.StringFixed(2), l.Quantity, l.Incarnation,
				created); err != nil {
				return fmt.Errorf("create order: line %d: %w", i, err)
			}
			if id > orders.MaxID {
				return orders.ErrIDsExhausted
			}
			o.Lines[i] = orders.Line{ID: id, ProductID: l.ProductID, Price: l.Price.Round(2), Quantity: l.Quantity, Incarnation: l.Incarnation}
		}
		if err := s.event(ctx, tx, events.OrderCreated, o); err != nil {
			return err
		}
		return s.claim(ctx, tx, reservationID, o.ID)
	})
	if err != nil {
		return orders.Order{}, err
	}
	return o, nil
}

// liteLoad inserts records with two prepared statements.
func liteLoad(ctx context.Context, tx *sqlx.Tx, write []orders.Record) error {
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
	return nil
}

// liteLastIDs returns the highest order and line ids the database handed
// out (AUTOINCREMENT never hands them out again), 0 if none.
func liteLastIDs(ctx context.Context, q sqlx.QueryerContext) (order, line int64, err error) {
	if err := q.QueryRowxContext(ctx, liteSelectLastIDs).Scan(&order, &line); err != nil {
		return 0, 0, fmt.Errorf("last ids: %w", sqlite.Classify(err))
	}
	return order, line, nil
}

// liteMoveIDsPast moves the AUTOINCREMENT sequences past the given last
// ids; a sequence already further on stays where it is (SQLite moves them
// past the ids it is given by itself).
func liteMoveIDsPast(ctx context.Context, q sqlx.ExtContext, lastOrder, lastLine int64) error {
	for _, seq := range []struct {
		name string
		last int64
	}{{"orders", lastOrder}, {"order_details", lastLine}} {
		for _, stmt := range []string{liteMoveSequence, liteAddSequence} {
			if _, err := q.ExecContext(ctx, stmt, seq.name, seq.last); err != nil {
				return fmt.Errorf("move sequence of %s: %w", seq.name, err)
			}
		}
	}
	return nil
}
