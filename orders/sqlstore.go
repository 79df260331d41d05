package orders

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/internal/sqlite"
	"github.com/airshipltd/airship/products/sqlitestore"
)

// SQLStore keeps orders in the embedded SQLite database (see
// db/migrations/sqlite), with the same tables as PGStore: orders,
// order_details, stock_reservations and stock_returns. Prices are stored
// as TEXT with two decimals, so they round-trip exactly.
//
// Every write runs in one transaction, which sqlite.Open begins
// IMMEDIATE: it holds the write lock from its first statement, so the
// checks it makes (order exists, lines as expected, reservation not void)
// still hold when it commits.
type SQLStore struct {
	conn sqlite.Conn
	opts storeOptions // WithEvents: an event in the outbox with every change
	keyRecords
}

var _ Store = (*SQLStore)(nil)

// NewSQLStore returns a store on a database migrated with the sqlite
// migrations.
func NewSQLStore(pool *sqlx.DB, opts ...StoreOption) *SQLStore {
	return newSQLStore(sqlite.NewConn(pool), applyOptions(opts))
}

func newSQLStore(conn sqlite.Conn, o storeOptions) *SQLStore {
	return &SQLStore{conn: conn, opts: o, keyRecords: keyRecords{q: conn.Q, classify: sqlite.Classify}}
}

// event writes an event about o to the outbox in tx, if events are on.
func (s *SQLStore) event(ctx context.Context, tx *sqlx.Tx, eventType string, o Order) error {
	if !s.opts.events {
		return nil
	}
	return sqlite.Classify(writeEvent(ctx, tx, eventType, o))
}

// liteNow is the current time in the format the migrations use for
// timestamps; liteTimeFormat is the same format in Go.
const (
	liteNow        = `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`
	liteTimeFormat = "2006-01-02T15:04:05.000Z"
)

const (
	liteInsertOrder = `INSERT INTO orders DEFAULT VALUES RETURNING id`
	liteInsertLine  = `INSERT INTO order_details (order_id, product_id, price, quantity, product_incarnation)
VALUES ($1, $2, $3, $4, $5) RETURNING id`
	liteClaim = `INSERT INTO stock_reservations (id, order_id) VALUES ($1, $2)
ON CONFLICT (id) DO NOTHING`
	liteVoid = `INSERT INTO stock_reservations (id, order_id) VALUES ($1, NULL)
ON CONFLICT (id) DO NOTHING`
	liteReservationOwner = `SELECT order_id FROM stock_reservations WHERE id = $1`

	// liteGetOrder and liteListOrders return order lines as scanOrders
	// reads them; every order has at least one line.
	liteGetOrder = `SELECT o.id, d.id, d.product_id, d.price, d.quantity, d.product_incarnation
FROM orders o JOIN order_details d ON d.order_id = o.id
WHERE o.id = $1
ORDER BY d.id`
	liteListOrders = `SELECT o.id, d.id, d.product_id, d.price, d.quantity, d.product_incarnation
FROM (SELECT id FROM orders WHERE id > $1 ORDER BY id LIMIT $2) o
JOIN order_details d ON d.order_id = o.id
ORDER BY o.id, d.id`

	liteUpdateLine = `UPDATE order_details SET price = $3, quantity = $4, updated_at = ` + liteNow + `
WHERE id = $1 AND order_id = $2`
	liteTouchOrder = `UPDATE orders SET updated_at = ` + liteNow + ` WHERE id = $1`

	liteDeleteLines = `DELETE FROM order_details WHERE order_id = $1`
	liteDeleteOrder = `DELETE FROM orders WHERE id = $1`

	liteInsertReturn = `INSERT INTO stock_returns (id, lines) VALUES ($1, $2)`
	litePending      = `SELECT id, lines FROM stock_returns
WHERE created_at < $1 ORDER BY created_at, id LIMIT $2`
	liteReturnDone = `DELETE FROM stock_returns WHERE id = $1`
)

// Create writes an order and claims its reservation in one transaction.
func (s *SQLStore) Create(ctx context.Context, reservationID string, lines []NewLine) (Order, error) {
	var o Order
	err := s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &o.ID, liteInsertOrder); err != nil {
			return fmt.Errorf("create order: %w", sqlite.Classify(err))
		}
		if o.ID > MaxID { // AUTOINCREMENT goes on to 2^63-1; the API stops here
			return ErrIDsExhausted
		}
		o.Lines = make([]Line, len(lines))
		for i, l := range lines {
			var id int64
			if err := tx.GetContext(ctx, &id, liteInsertLine, o.ID, l.ProductID, l.Price.StringFixed(2), l.Quantity, l.Incarnation); err != nil {
				return fmt.Errorf("create order: line %d: %w", i, sqlite.Classify(err))
			}
			if id > MaxID {
				return ErrIDsExhausted
			}
			o.Lines[i] = Line{ID: id, ProductID: l.ProductID, Price: l.Price.Round(2), Quantity: l.Quantity, Incarnation: l.Incarnation}
		}
		if err := s.event(ctx, tx, EventCreated, o); err != nil {
			return err
		}
		return liteClaimReservation(ctx, tx, reservationID, o.ID)
	})
	if err != nil {
		return Order{}, err
	}
	return o, nil
}

// liteClaimReservation records that the order claimed the reservation; it fails with
// ErrReservationVoid if the recovery sweep voided it first. An empty
// reservation id claims nothing.
func liteClaimReservation(ctx context.Context, tx *sqlx.Tx, reservationID string, orderID int64) error {
	if reservationID == "" {
		return nil
	}
	res, err := tx.ExecContext(ctx, liteClaim, reservationID, orderID)
	if err != nil {
		return fmt.Errorf("claim reservation %s: %w", reservationID, sqlite.Classify(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("claim reservation %s: %w", reservationID, sqlite.Classify(err))
	} else if n == 1 {
		return nil
	}
	var owner sql.NullInt64
	err = tx.GetContext(ctx, &owner, liteReservationOwner, reservationID)
	if errors.Is(err, sql.ErrNoRows) { // neither inserted nor there: the insert was swallowed
		return &RowCountError{What: fmt.Sprintf("order %d: claim reservation %s", orderID, reservationID), Got: 0, Want: 1}
	}
	if err != nil {
		return fmt.Errorf("claim reservation %s: %w", reservationID, sqlite.Classify(err))
	}
	if !owner.Valid {
		return ErrReservationVoid
	}
	return fmt.Errorf("claim reservation %s: already claimed by order %d", reservationID, owner.Int64)
}

// Get returns an order with its lines, in one query.
func (s *SQLStore) Get(ctx context.Context, id int64) (Order, error) {
	o, err := liteGetOne(ctx, s.conn.Q(), id)
	if err != nil {
		return Order{}, err
	}
	return o, nil
}

// liteGetOne reads an order with q, the database or a transaction.
func liteGetOne(ctx context.Context, q sqlx.QueryerContext, id int64) (Order, error) {
	o, err := getOne(ctx, q, liteGetOrder, id)
	return o, sqlite.Classify(err)
}

// List returns up to limit orders with id > after, oldest first, in one query.
func (s *SQLStore) List(ctx context.Context, after int64, limit int) ([]Order, error) {
	rs, err := s.conn.Q().QueryContext(ctx, liteListOrders, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", sqlite.Classify(err))
	}
	found, err := scanOrders(rs)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", sqlite.Classify(err))
	}
	return found, nil
}

// Update applies line updates and the change in one transaction. Only
// the lines whose price or quantity change are written; a change that
// changes nothing writes nothing (no updated_at, no event) and returns
// the order as it is. Every write checks how many rows it changed: the
// transaction holds the write lock since it read the order, so another
// count means a trigger changed the statement, and all is rolled back.
func (s *SQLStore) Update(ctx context.Context, id int64, updates []LineUpdate, c Change) (Order, error) {
	var o Order
	err := s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		current, err := getExpected(ctx, tx, liteGetOrder, id, c.Expect)
		if err != nil {
			return err
		}
		next, err := applyUpdates(current, updates)
		if err != nil {
			return err
		}
		changed := changedLines(current.Lines, next.Lines)
		if len(changed) == 0 && c.ReservationID == "" && len(c.Restock) == 0 {
			o = current
			return nil
		}
		for _, l := range changed {
			res, err := tx.ExecContext(ctx, liteUpdateLine, l.ID, id, l.Price.StringFixed(2), l.Quantity)
			if err != nil {
				return fmt.Errorf("update order %d line %d: %w", id, l.ID, sqlite.Classify(err))
			}
			if err := expectRows(res, 1, fmt.Sprintf("update order %d line %d", id, l.ID)); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, liteTouchOrder, id)
		if err != nil {
			return fmt.Errorf("update order %d: %w", id, sqlite.Classify(err))
		}
		if err := expectRows(res, 1, fmt.Sprintf("update order %d", id)); err != nil {
			return err
		}
		if o, err = liteGetOne(ctx, tx, id); err != nil {
			return err
		}
		if err := s.event(ctx, tx, EventUpdated, o); err != nil {
			return err
		}
		return liteRecordChange(ctx, tx, id, c)
	})
	if err != nil {
		return Order{}, err
	}
	return o, nil
}

// Delete removes an order and records the change in one transaction.
func (s *SQLStore) Delete(ctx context.Context, id int64, c Change) error {
	return s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		current, err := getExpected(ctx, tx, liteGetOrder, id, c.Expect)
		if err != nil {
			return err
		}
		// The order was read in this transaction, which holds the write
		// lock: a count other than its lines and one order means a trigger
		// changed the statement.
		res, err := tx.ExecContext(ctx, liteDeleteLines, id)
		if err != nil {
			return fmt.Errorf("delete order %d: %w", id, sqlite.Classify(err))
		}
		if err := expectRows(res, int64(len(current.Lines)), fmt.Sprintf("delete the lines of order %d", id)); err != nil {
			return err
		}
		if res, err = tx.ExecContext(ctx, liteDeleteOrder, id); err != nil {
			return fmt.Errorf("delete order %d: %w", id, sqlite.Classify(err))
		}
		if err := expectRows(res, 1, fmt.Sprintf("delete order %d", id)); err != nil {
			return err
		}
		if err := s.event(ctx, tx, EventDeleted, current); err != nil {
			return err
		}
		return liteRecordChange(ctx, tx, id, c)
	})
}

// liteRecordChange claims the change's reservation and records its pending
// restock, inside the order's transaction.
func liteRecordChange(ctx context.Context, tx *sqlx.Tx, orderID int64, c Change) error {
	if err := liteClaimReservation(ctx, tx, c.ReservationID, orderID); err != nil {
		return err
	}
	if c.RestockID == "" || len(c.Restock) == 0 {
		return nil
	}
	lines, err := json.Marshal(encodeLines(c.Restock))
	if err != nil {
		return fmt.Errorf("order %d: restock %s: %w", orderID, c.RestockID, err)
	}
	res, err := tx.ExecContext(ctx, liteInsertReturn, c.RestockID, string(lines))
	if err != nil {
		return fmt.Errorf("order %d: restock %s: %w", orderID, c.RestockID, sqlite.Classify(err))
	}
	return expectRows(res, 1, fmt.Sprintf("order %d: record restock %s", orderID, c.RestockID))
}

// Settle decides a reservation: claimed by an order, or void from now on.
func (s *SQLStore) Settle(ctx context.Context, reservationID string) (int64, bool, error) {
	var owner sql.NullInt64
	err := s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, liteVoid, reservationID); err != nil {
			return sqlite.Classify(err)
		}
		return sqlite.Classify(tx.GetContext(ctx, &owner, liteReservationOwner, reservationID))
	})
	if err != nil {
		return 0, false, fmt.Errorf("settle reservation %s: %w", reservationID, err)
	}
	return owner.Int64, owner.Valid, nil
}

// PendingRestocks returns up to limit restocks recorded before the given
// time, oldest first.
func (s *SQLStore) PendingRestocks(ctx context.Context, before time.Time, limit int) ([]PendingRestock, error) {
	var rows []struct {
		ID    string `db:"id"`
		Lines string `db:"lines"`
	}
	if err := sqlx.SelectContext(ctx, s.conn.Q(), &rows, litePending, before.UTC().Format(liteTimeFormat), limit); err != nil {
		return nil, fmt.Errorf("pending restocks: %w", sqlite.Classify(err))
	}
	out := make([]PendingRestock, len(rows))
	for i, row := range rows {
		lines, err := decodeLines([]byte(row.Lines))
		if err != nil {
			return nil, fmt.Errorf("pending restock %s: unreadable lines: %w", row.ID, err)
		}
		out[i] = PendingRestock{ID: row.ID, Lines: lines}
	}
	return out, nil
}

// RestockDone forgets a pending restock.
func (s *SQLStore) RestockDone(ctx context.Context, id string) error {
	if _, err := s.conn.Q().ExecContext(ctx, liteReturnDone, id); err != nil {
		return fmt.Errorf("restock %s done: %w", id, sqlite.Classify(err))
	}
	return nil
}

// SQLTransactor runs changes to orders and stock in one transaction of
// the embedded database, where both live: Service uses it so that an
// order and its stock change commit together, and a failure undoes both.
type SQLTransactor struct {
	pool   *sqlx.DB
	orders *SQLStore
}

// NewSQLTransactor returns a transactor on the embedded database pool
// whose orders store is orders (bound to each transaction with its
// options).
func NewSQLTransactor(pool *sqlx.DB, orders *SQLStore) SQLTransactor {
	return SQLTransactor{pool: pool, orders: orders}
}

// InTx runs fn with stores bound to one new transaction, committed if fn
// returns nil and rolled back otherwise.
func (t SQLTransactor) InTx(ctx context.Context, fn func(Store, Stock) error) error {
	return sqlite.InTx(ctx, t.pool, func(tx *sqlx.Tx) error {
		return fn(t.orders.WithTx(tx), sqlitestore.New(t.pool).WithTx(tx))
	})
}
