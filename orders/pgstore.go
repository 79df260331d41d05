package orders

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/airshipltd/airship/internal/errs"
)

// PGStore keeps orders in PostgreSQL.
//
// The statements of the hot paths (create, get, list) are prepared once
// and reused: lib/pq runs an unprepared statement with parameters in two
// round trips (parse, then bind and execute) and PostgreSQL plans it every
// time; a prepared one is one round trip and no planning.
type PGStore struct {
	db                *sqlx.DB
	create, get, list prepared
	// events: write an event to the outbox with every change (WithEvents).
	events bool
	keyRecords
}

var _ Store = (*PGStore)(nil)

// NewPGStore returns a store on a migrated PostgreSQL database.
func NewPGStore(db *sqlx.DB, opts ...StoreOption) *PGStore {
	o := applyOptions(opts)
	create := createOrder
	if o.events {
		create = createOrderAndEvent
	}
	return &PGStore{
		db:         db,
		events:     o.events,
		create:     prepared{query: create},
		get:        prepared{query: getOrder},
		list:       prepared{query: listOrders},
		keyRecords: keyRecords{q: func() sqlx.ExtContext { return db }, classify: pgErr},
	}
}

// prepared is a statement prepared on first use (database/sql then
// prepares it on each pooled connection the first time that connection
// runs it). A failed preparation (the database is down) is retried by the
// next call.
type prepared struct {
	query string
	mu    sync.Mutex
	stmt  *sql.Stmt
}

func (p *prepared) get(ctx context.Context, db *sqlx.DB) (*sql.Stmt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stmt == nil {
		st, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			return nil, err
		}
		p.stmt = st
	}
	return p.stmt, nil
}

// createOrder writes the order, its lines and the claim of its reservation
// in one statement, hence one round trip and one implicit transaction.
// createOrderAndEvent also writes the order_created event to the outbox
// ($6 its message id, $7 the schema version), its body built as EventBody
// builds it: numeric(18,2) as text has exactly two decimals, and the
// relay compacts the whitespace json_build_object puts around colons.
//
// The statement checks that it wrote one order, every line, one claim
// (and one event): if a trigger in the database swallowed a row, its last
// column fails to convert a text naming the counts to an integer, which
// fails the statement and so rolls back its transaction. (A check in Go
// would come after the commit. The text is built from the counts, not a
// constant, so that PostgreSQL cannot evaluate it while planning.)
const (
	createOrderWrites = `
WITH o AS (
    INSERT INTO orders DEFAULT VALUES RETURNING id
), claim AS (
    INSERT INTO stock_reservations (id, order_id) SELECT $1, id FROM o RETURNING id
), d AS (
    INSERT INTO order_details (order_id, product_id, price, quantity, product_incarnation)
    SELECT o.id, l.product_id, l.price, l.quantity, l.incarnation
    FROM o, unnest($2::text[], $3::numeric[], $4::int[], $5::text[])
        WITH ORDINALITY AS l(product_id, price, quantity, incarnation, n)
    ORDER BY l.n
    RETURNING id, product_id, price, quantity
)`
	createOrderEvent = `, ev AS (
    INSERT INTO outbox (message_id, order_id, event_type, schema_version, body)
    SELECT $6, o.id, '` + EventCreated + `', $7, json_build_object('order', json_build_object(
        'id', o.id,
        'order_details', (SELECT json_agg(json_build_object(
            'id', d.id, 'product_id', d.product_id, 'price', d.price::text, 'quantity', d.quantity) ORDER BY d.id) FROM d)
    ))::text
    FROM o
    RETURNING id
)`

	createOrder = createOrderWrites + `
SELECT (SELECT id FROM o), array_agg(d.id ORDER BY d.id),
    CASE WHEN (SELECT count(*) FROM o) = 1 AND count(*) = cardinality($2::text[]) AND (SELECT count(*) FROM claim) = 1
    THEN 0
    ELSE ('order not written whole: ' || (SELECT count(*) FROM o) || ' order rows, ' || count(*) || ' of ' ||
        cardinality($2::text[]) || ' lines, ' || (SELECT count(*) FROM claim) || ' claims')::int
    END
FROM d`
	createOrderAndEvent = createOrderWrites + createOrderEvent + `
SELECT (SELECT id FROM o), array_agg(d.id ORDER BY d.id),
    CASE WHEN (SELECT count(*) FROM o) = 1 AND count(*) = cardinality($2::text[]) AND (SELECT count(*) FROM claim) = 1
        AND (SELECT count(*) FROM ev) = 1
    THEN 0
    ELSE ('order not written whole: ' || (SELECT count(*) FROM o) || ' order rows, ' || count(*) || ' of ' ||
        cardinality($2::text[]) || ' lines, ' || (SELECT count(*) FROM claim) || ' claims, ' ||
        (SELECT count(*) FROM ev) || ' events')::int
    END
FROM d`
)

// Create writes an order and claims its reservation atomically.
func (s *PGStore) Create(ctx context.Context, reservationID string, lines []NewLine) (Order, error) {
	ids := make([]string, len(lines))
	prices := make([]string, len(lines))
	qtys := make([]int64, len(lines))
	incs := make([]string, len(lines))
	for i, l := range lines {
		ids[i], prices[i], qtys[i], incs[i] = l.ProductID, l.Price.StringFixed(2), l.Quantity, l.Incarnation
	}
	var (
		orderID int64
		lineIDs pq.Int64Array
		whole   int
	)
	args := []any{reservationID, pq.StringArray(ids), pq.StringArray(prices), pq.Int64Array(qtys), pq.StringArray(incs)}
	if s.events {
		args = append(args, uuid.NewString(), EventSchemaVersion)
	}
	st, err := s.create.get(ctx, s.db)
	if err == nil {
		err = st.QueryRowContext(ctx, args...).Scan(&orderID, &lineIDs, &whole)
	}
	if isUniqueViolation(err) {
		return Order{}, ErrReservationVoid
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "22P02" && strings.Contains(pqErr.Message, "not written whole") {
		return Order{}, fmt.Errorf("create order: the database did not write it whole (a rule or trigger?), "+
			"so the statement was rolled back: %w", err)
	}
	if err != nil {
		return Order{}, fmt.Errorf("create order: %w", pgErr(err))
	}
	o := Order{ID: orderID, Lines: make([]Line, len(lines))}
	for i, l := range lines {
		o.Lines[i] = Line{ID: lineIDs[i], ProductID: l.ProductID, Price: l.Price, Quantity: l.Quantity, Incarnation: l.Incarnation}
	}
	return o, nil
}

const getOrder = `
SELECT o.id AS order_id, d.id, d.product_id, d.price, d.quantity, d.product_incarnation
FROM orders o JOIN order_details d ON d.order_id = o.id
WHERE o.id = $1
ORDER BY d.id`

// Get returns one order and its lines in one query.
func (s *PGStore) Get(ctx context.Context, id int64) (Order, error) {
	found, err := s.query(ctx, &s.get, id)
	if err != nil {
		return Order{}, fmt.Errorf("get order %d: %w", id, pgErr(err))
	}
	if len(found) == 0 {
		return Order{}, &NotFoundError{ID: id}
	}
	return found[0], nil
}

// listOrders reads each order's lines in a LATERAL subquery. Its OFFSET 0
// keeps PostgreSQL from flattening the subquery into a join, so the lines
// can only be read order by order through the order_details (order_id)
// index, whatever the statistics say: as a plain join, stale statistics
// made it hash-join a sequential scan of every order line. (OFFSET 0
// rather than an ORDER BY d.id inside: that adds a sort per order and
// measured 25% slower; the outer ORDER BY orders the lines.)
const listOrders = `
SELECT o.id AS order_id, d.id, d.product_id, d.price, d.quantity, d.product_incarnation
FROM (SELECT id FROM orders WHERE id > $1 ORDER BY id LIMIT $2) o
CROSS JOIN LATERAL (
    SELECT d.id, d.product_id, d.price, d.quantity, d.product_incarnation
    FROM order_details d
    WHERE d.order_id = o.id
    OFFSET 0
) d
ORDER BY o.id, d.id`

// List returns up to limit orders after the given id, oldest first.
func (s *PGStore) List(ctx context.Context, after int64, limit int) ([]Order, error) {
	found, err := s.query(ctx, &s.list, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", pgErr(err))
	}
	return found, nil
}

// query runs a prepared statement that returns order lines and groups
// them into orders (see scanOrders).
func (s *PGStore) query(ctx context.Context, p *prepared, args ...any) ([]Order, error) {
	st, err := p.get(ctx, s.db)
	if err != nil {
		return nil, err
	}
	rs, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	return scanOrders(rs)
}

// Every write below checks how many rows it changed (expectRows): the
// order and its lines were read and locked in the same transaction, so
// another count means that something in the database changed the
// statement, and the whole change is rolled back.
const (
	lockLines   = `SELECT o.id AS order_id, d.id, d.product_id, d.price, d.quantity, d.product_incarnation FROM orders o JOIN order_details d ON d.order_id = o.id WHERE o.id = $1 ORDER BY d.id FOR UPDATE`
	updateLine  = `UPDATE order_details SET price = $3, quantity = $4, updated_at = now() WHERE id = $1 AND order_id = $2`
	touchOrder  = `UPDATE orders SET updated_at = now() WHERE id = $1`
	claimRes    = `INSERT INTO stock_reservations (id, order_id) VALUES ($1, $2)`
	addReturn   = `INSERT INTO stock_returns (id, lines) VALUES ($1, $2)`
	deleteLines = `DELETE FROM order_details WHERE order_id = $1`
	deleteOrd   = `DELETE FROM orders WHERE id = $1`
)

// Update applies line updates, claims the change's reservation and records
// its restock, all in one transaction. Only the lines whose price or
// quantity change are written; a change that changes nothing writes
// nothing (no updated_at, no event) and returns the order as it is.
func (s *PGStore) Update(ctx context.Context, id int64, updates []LineUpdate, c Change) (Order, error) {
	var out Order
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		o, err := getExpected(ctx, tx, lockLines, id, c.Expect)
		if err != nil {
			return err
		}
		if out, err = applyUpdates(o, updates); err != nil {
			return err
		}
		changed := changedLines(o.Lines, out.Lines)
		if len(changed) == 0 && c.ReservationID == "" && len(c.Restock) == 0 {
			out = o
			return nil
		}
		for _, l := range changed {
			res, err := tx.ExecContext(ctx, updateLine, l.ID, id, l.Price.StringFixed(2), l.Quantity)
			if err != nil {
				return err
			}
			if err := expectRows(res, 1, fmt.Sprintf("update order %d line %d", id, l.ID)); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, touchOrder, id)
		if err != nil {
			return err
		}
		if err := expectRows(res, 1, fmt.Sprintf("update order %d", id)); err != nil {
			return err
		}
		if s.events {
			if err := writeEvent(ctx, tx, EventUpdated, out); err != nil {
				return err
			}
		}
		return s.recordChange(ctx, tx, id, c)
	})
	if err != nil {
		return Order{}, fmt.Errorf("update order %d: %w", id, err)
	}
	return out, nil
}

// Delete removes an order (its lines go with it) and records the change.
func (s *PGStore) Delete(ctx context.Context, id int64, c Change) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		o, err := getExpected(ctx, tx, lockLines, id, c.Expect)
		if err != nil {
			return err
		}
		// The lines first, rather than by the foreign key's cascade, so
		// that their count is checked too.
		res, err := tx.ExecContext(ctx, deleteLines, id)
		if err != nil {
			return err
		}
		if err := expectRows(res, int64(len(o.Lines)), fmt.Sprintf("delete the lines of order %d", id)); err != nil {
			return err
		}
		if res, err = tx.ExecContext(ctx, deleteOrd, id); err != nil {
			return err
		}
		if err := expectRows(res, 1, fmt.Sprintf("delete order %d", id)); err != nil {
			return err
		}
		if s.events {
			if err := writeEvent(ctx, tx, EventDeleted, o); err != nil {
				return err
			}
		}
		return s.recordChange(ctx, tx, id, c)
	})
	if err != nil {
		return fmt.Errorf("delete order %d: %w", id, err)
	}
	return nil
}

func (s *PGStore) recordChange(ctx context.Context, tx *sqlx.Tx, orderID int64, c Change) error {
	if c.ReservationID != "" {
		res, err := tx.ExecContext(ctx, claimRes, c.ReservationID, orderID)
		if isUniqueViolation(err) {
			return ErrReservationVoid
		}
		if err != nil {
			return err
		}
		if err := expectRows(res, 1, fmt.Sprintf("order %d: claim reservation %s", orderID, c.ReservationID)); err != nil {
			return err
		}
	}
	if c.RestockID != "" && len(c.Restock) > 0 {
		raw, err := json.Marshal(encodeLines(c.Restock))
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, addReturn, c.RestockID, raw)
		if err != nil {
			return err
		}
		if err := expectRows(res, 1, fmt.Sprintf("order %d: record restock %s", orderID, c.RestockID)); err != nil {
			return err
		}
	}
	return nil
}

const settle = `
WITH ins AS (
    INSERT INTO stock_reservations (id) VALUES ($1) ON CONFLICT (id) DO NOTHING RETURNING order_id
)
SELECT order_id FROM ins
UNION ALL
SELECT order_id FROM stock_reservations WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM ins)`

// Settle decides a reservation's outcome; see Store.
func (s *PGStore) Settle(ctx context.Context, reservationID string) (int64, bool, error) {
	var orderID sql.NullInt64
	err := s.db.QueryRowContext(ctx, settle, reservationID).Scan(&orderID)
	if errors.Is(err, sql.ErrNoRows) {
		// A concurrent transaction inserted the row after this statement's
		// snapshot was taken; a new statement sees it.
		err = s.db.QueryRowContext(ctx, settle, reservationID).Scan(&orderID)
	}
	if err != nil {
		return 0, false, fmt.Errorf("settle reservation %s: %w", reservationID, pgErr(err))
	}
	return orderID.Int64, orderID.Valid, nil
}

const (
	pendingReturns = `SELECT id, lines FROM stock_returns WHERE created_at < $1 ORDER BY created_at LIMIT $2`
	returnDone     = `DELETE FROM stock_returns WHERE id = $1`
)

// PendingRestocks returns restocks recorded before the given time.
func (s *PGStore) PendingRestocks(ctx context.Context, before time.Time, limit int) ([]PendingRestock, error) {
	var rows []struct {
		ID    string `db:"id"`
		Lines []byte `db:"lines"`
	}
	if err := s.db.SelectContext(ctx, &rows, pendingReturns, before, limit); err != nil {
		return nil, fmt.Errorf("pending restocks: %w", pgErr(err))
	}
	out := make([]PendingRestock, len(rows))
	for i, r := range rows {
		lines, err := decodeLines(r.Lines)
		if err != nil {
			return nil, fmt.Errorf("pending restock %s: %w", r.ID, err)
		}
		out[i] = PendingRestock{ID: r.ID, Lines: lines}
	}
	return out, nil
}

// RestockDone forgets an applied restock.
func (s *PGStore) RestockDone(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, returnDone, id); err != nil {
		return fmt.Errorf("restock %s done: %w", id, pgErr(err))
	}
	return nil
}

func (s *PGStore) inTx(ctx context.Context, fn func(*sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return pgErr(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return pgErr(err)
	}
	return pgErr(tx.Commit())
}

func isUniqueViolation(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "23505"
}

// pgErr marks errors that mean PostgreSQL could not be reached or is not
// accepting work as ErrUnavailable, by the error's type or SQLSTATE;
// domain errors pass through.
func pgErr(err error) error {
	if err == nil || errs.Of(err) != errs.Internal {
		return err
	}
	var (
		netErr net.Error
		pqErr  *pq.Error
	)
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, sql.ErrConnDone), errors.As(err, &netErr):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case errors.As(err, &pqErr) && pqErr.Code == "2200H": // a sequence reached its maximum
		return fmt.Errorf("%w: %w", ErrIDsExhausted, err)
	case errors.As(err, &pqErr):
		// Class 08: connection exception; 53: insufficient resources;
		// 57P01-57P03: admin shutdown, crash shutdown, cannot connect now.
		if c := string(pqErr.Code); strings.HasPrefix(c, "08") || strings.HasPrefix(c, "53") ||
			c == "57P01" || c == "57P02" || c == "57P03" {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return err
}

// StatementNames names the SQL statements PGStore runs, by their text, so
// that metrics and traces can tell them apart without the SQL itself.
func StatementNames() map[string]string {
	return map[string]string{
		createOrder: "create_order", getOrder: "get_order", listOrders: "list_orders",
		lockLines: "lock_lines", updateLine: "update_line", touchOrder: "touch_order",
		claimRes: "claim_reservation", addReturn: "add_return", deleteLines: "delete_lines", deleteOrd: "delete_order",
		settle: "settle_reservation", pendingReturns: "pending_returns", returnDone: "return_done",
		insertKey: "insert_key", selectKey: "select_key", dropExpiredKey: "drop_expired_key",
		takeOverKey: "take_over_key", completeKey: "complete_key", yieldKey: "yield_key",
		purgeKeys: "purge_keys", seedOrders: "seed_orders",
		createOrderAndEvent: "create_order", insertEvent: "insert_event",
		pgPendingEvents: "outbox_pending", pgMarkPublished: "outbox_mark_published",
		pgBacklog: "outbox_backlog", pgPurgeEvents: "outbox_purge",
	}
}
