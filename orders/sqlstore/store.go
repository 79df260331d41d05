// Package sqlstore keeps orders in a SQL database: PostgreSQL, or the
// embedded SQLite database that also holds the products. Both run one
// algorithm and, where their SQL agrees, the same statements; a dialect
// (postgres.go, sqlite.go) says what differs: how an order is created,
// how rows are locked, the current time, lists of ids as a parameter,
// bulk loading, id sequences and which errors mean the database is
// unavailable.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/events"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// Store keeps orders, reservation claims, pending restocks, idempotency
// keys and the outbox of order events in one SQL database, with the
// tables of db/migrations: orders, order_details (whose lines go with
// their order by the foreign key's cascade), stock_reservations,
// stock_returns, idempotency_keys and outbox.
//
// A store bound to a transaction (WithTx) runs every call in it;
// otherwise each change runs in a transaction of its own.
type Store struct {
	db *sqlx.DB
	tx *sqlx.Tx // when bound to a transaction
	// reads, when set, runs Get and List outside a transaction (WithReads).
	reads *sqlx.DB
	d     *dialect
	// events: write an event to the outbox with every change (WithEvents).
	events bool
	// prepared are the hot paths' statements, prepared once on the pool
	// (where the dialect prepares) and shared by the stores bound to a
	// transaction.
	prepared *preparedSet
	keyRecords
}

var (
	_ orders.Store  = (*Store)(nil)
	_ events.Outbox = (*Store)(nil)
)

// Option configures a Store.
type Option func(*Store)

// WithEvents makes a store write an event to the outbox with every order
// change (created, updated, deleted), in the transaction of the change.
// Without it no event is written.
func WithEvents() Option { return func(s *Store) { s.events = true } }

// WithReads makes Get and List outside a transaction run on reads, a read
// pool of the same database (the embedded store's, sqlite.OpenReads), so
// that they do not queue behind the writer's commits; nil leaves them on
// the pool. A read there sees every transaction committed before it began.
func WithReads(reads *sqlx.DB) Option { return func(s *Store) { s.reads = reads } }

// NewPostgres returns a store on a migrated PostgreSQL database.
func NewPostgres(db *sqlx.DB, opts ...Option) *Store { return newStore(db, &postgresDialect, opts) }

// NewSQLite returns a store on a database migrated with the sqlite
// migrations (opened with internal/sqlite.Open: every transaction begins
// IMMEDIATE, holding the write lock from its first statement, so the
// checks a change makes still hold when it commits).
func NewSQLite(db *sqlx.DB, opts ...Option) *Store { return newStore(db, &sqliteDialect, opts) }

func newStore(db *sqlx.DB, d *dialect, opts []Option) *Store {
	s := &Store{db: db, d: d}
	for _, o := range opts {
		o(s)
	}
	create := d.stmt.createOrder
	if s.events {
		create = d.stmt.createOrderAndEvent
	}
	s.prepared = &preparedSet{
		create: prepared{query: create}, get: prepared{query: d.stmt.getOrder}, list: prepared{query: d.stmt.listOrders},
	}
	s.keyRecords = keyRecords{q: s.q, classify: d.classify}
	return s
}

// WithTx returns the store bound to tx: its calls run in tx and commit or
// roll back with it.
func (s *Store) WithTx(tx *sqlx.Tx) *Store {
	b := *s
	b.tx = tx
	b.keyRecords = keyRecords{q: b.q, classify: b.d.classify}
	return &b
}

// Transactor returns what runs changes to orders and stock in one
// transaction of this store's database, for stock kept in the same
// database (the embedded store): stock returns the stock bound to a
// transaction.
func (s *Store) Transactor(stock func(tx *sqlx.Tx) orders.Stock) orders.Transactor {
	return transactor{orders: s, stock: stock}
}

type transactor struct {
	orders *Store
	stock  func(tx *sqlx.Tx) orders.Stock
}

// InTx runs fn with stores bound to one new transaction, committed if fn
// returns nil and rolled back otherwise.
func (t transactor) InTx(ctx context.Context, fn func(orders.Store, orders.Stock) error) error {
	return t.orders.inTx(ctx, func(tx *sqlx.Tx) error {
		return fn(t.orders.WithTx(tx), t.stock(tx))
	})
}

// q is what a single statement runs on: the bound transaction or the pool.
func (s *Store) q() sqlx.ExtContext {
	if s.tx != nil {
		return s.tx
	}
	return s.db
}

// inTx runs fn in the bound transaction, or else in a new one that it
// commits if fn returns nil and rolls back otherwise. Errors are
// classified by the dialect.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	if s.tx != nil {
		return s.d.classify(fn(s.tx))
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return s.d.classify(fmt.Errorf("begin: %w", err))
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return s.d.classify(err)
	}
	if err := tx.Commit(); err != nil {
		return s.d.classify(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// preparedSet are the statements of the hot paths: create, get, list.
type preparedSet struct{ create, get, list prepared }

// prepared is a statement prepared on first use (database/sql then
// prepares it on each pooled connection the first time that connection
// runs it). A failed preparation (the database is down) is retried by the
// next call. lib/pq runs an unprepared statement with parameters in two
// round trips (parse, then bind and execute) and PostgreSQL plans it
// every time; a prepared one is one round trip and no planning.
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

// query runs a statement of the hot paths: prepared where the dialect
// prepares and the store is not bound to a transaction.
func (s *Store) query(ctx context.Context, p *prepared, args ...any) (*sql.Rows, error) {
	if !s.d.prepare || s.tx != nil {
		return s.q().QueryContext(ctx, p.query, args...)
	}
	st, err := p.get(ctx, s.db)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// read runs a read of the hot paths: on the read pool when there is one
// and the store is not bound to a transaction, otherwise as query does.
func (s *Store) read(ctx context.Context, p *prepared, args ...any) (*sql.Rows, error) {
	if s.reads != nil && s.tx == nil {
		return s.reads.QueryContext(ctx, p.query, args...)
	}
	return s.query(ctx, p, args...)
}

// Create writes an order, its lines and the claim of its reservation
// atomically (and its order_created event, with WithEvents); see the
// dialect's create.
func (s *Store) Create(ctx context.Context, reservationID string, lines []orders.NewLine) (orders.Order, error) {
	return s.d.create(ctx, s, reservationID, lines)
}

// Get returns one order and its lines in one query.
func (s *Store) Get(ctx context.Context, id int64) (orders.Order, error) {
	rs, err := s.read(ctx, &s.prepared.get, id)
	if err != nil {
		return orders.Order{}, fmt.Errorf("get order %d: %w", id, s.d.classify(err))
	}
	found, err := scanOrders(rs)
	if err != nil {
		return orders.Order{}, fmt.Errorf("get order %d: %w", id, s.d.classify(err))
	}
	if len(found) == 0 {
		return orders.Order{}, &orders.NotFoundError{ID: id}
	}
	return found[0], nil
}

// List returns up to limit orders after the given id, oldest first, in
// one query.
func (s *Store) List(ctx context.Context, after int64, limit int) ([]orders.Order, error) {
	rs, err := s.read(ctx, &s.prepared.list, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", s.d.classify(err))
	}
	found, err := scanOrders(rs)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", s.d.classify(err))
	}
	return found, nil
}

// getExpected reads an order in tx, locking its rows where the database
// can, and checks that its lines still hold the quantities the change
// was computed from: ErrConflict if another change came first.
func (s *Store) getExpected(ctx context.Context, tx *sqlx.Tx, id int64, c orders.Change) (orders.Order, error) {
	rs, err := tx.QueryContext(ctx, s.d.stmt.lockLines, id)
	if err != nil {
		return orders.Order{}, fmt.Errorf("get order %d: %w", id, err)
	}
	found, err := scanOrders(rs)
	if err != nil {
		return orders.Order{}, fmt.Errorf("get order %d: %w", id, err)
	}
	if len(found) == 0 {
		return orders.Order{}, &orders.NotFoundError{ID: id}
	}
	if !c.Holds(found[0].Lines) {
		return orders.Order{}, orders.ErrConflict
	}
	return found[0], nil
}

// Update applies line updates, claims the change's reservation and records
// its restock, all in one transaction. Only the lines whose price or
// quantity change are written, with the order's updated_at: a line the
// change leaves as it was keeps its updated_at. A change that changes
// nothing writes nothing (no updated_at, no event) and returns the order
// as it is.
//
// Every write checks how many rows it changed (expectRows): the order and
// its lines were read and locked in the same transaction, so another
// count means that something in the database changed the statement, and
// the whole change is rolled back.
func (s *Store) Update(ctx context.Context, id int64, updates []orders.LineUpdate, c orders.Change) (orders.Order, error) {
	var out orders.Order
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		o, err := s.getExpected(ctx, tx, id, c)
		if err != nil {
			return err
		}
		if out, err = orders.ApplyUpdates(o, updates); err != nil {
			return err
		}
		changed := orders.ChangedLines(o.Lines, out.Lines)
		if len(changed) == 0 && c.ReservationID == "" && len(c.Restock) == 0 {
			out = o
			return nil
		}
		// The order first: its lines take its new updated_at.
		res, err := tx.ExecContext(ctx, s.d.stmt.touchOrder, id)
		if err != nil {
			return err
		}
		if err := expectRows(res, 1, fmt.Sprintf("update order %d", id)); err != nil {
			return err
		}
		for _, l := range changed {
			res, err := tx.ExecContext(ctx, s.d.stmt.updateLine, l.ID, id, l.Price.StringFixed(2), l.Quantity)
			if err != nil {
				return err
			}
			if err := expectRows(res, 1, fmt.Sprintf("update order %d line %d", id, l.ID)); err != nil {
				return err
			}
		}
		if err := s.event(ctx, tx, events.OrderUpdated, out); err != nil {
			return err
		}
		return s.recordChange(ctx, tx, id, c)
	})
	if err != nil {
		return orders.Order{}, fmt.Errorf("update order %d: %w", id, err)
	}
	return out, nil
}

// Delete removes an order and records the change in one transaction. Its
// lines go with it by the foreign key's cascade; that none is left is
// checked, as every write's count is.
func (s *Store) Delete(ctx context.Context, id int64, c orders.Change) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		o, err := s.getExpected(ctx, tx, id, c)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.d.stmt.deleteOrder, id)
		if err != nil {
			return err
		}
		if err := expectRows(res, 1, fmt.Sprintf("delete order %d", id)); err != nil {
			return err
		}
		var left int64
		if err := tx.QueryRowxContext(ctx, s.d.stmt.linesLeft, id).Scan(&left); err != nil {
			return err
		}
		if left != 0 {
			return &RowCountError{What: fmt.Sprintf("delete the lines of order %d (by cascade)", id),
				Got: int64(len(o.Lines)) - left, Want: int64(len(o.Lines))}
		}
		if err := s.event(ctx, tx, events.OrderDeleted, o); err != nil {
			return err
		}
		return s.recordChange(ctx, tx, id, c)
	})
	if err != nil {
		return fmt.Errorf("delete order %d: %w", id, err)
	}
	return nil
}

// recordChange claims the change's reservation and records its pending
// restock, inside the order's transaction.
func (s *Store) recordChange(ctx context.Context, tx *sqlx.Tx, orderID int64, c orders.Change) error {
	if err := s.claim(ctx, tx, c.ReservationID, orderID); err != nil {
		return err
	}
	if c.RestockID == "" || len(c.Restock) == 0 {
		return nil
	}
	raw, err := json.Marshal(encodeLines(c.Restock))
	if err != nil {
		return fmt.Errorf("order %d: restock %s: %w", orderID, c.RestockID, err)
	}
	res, err := tx.ExecContext(ctx, s.d.stmt.addReturn, c.RestockID, string(raw))
	if err != nil {
		return fmt.Errorf("order %d: restock %s: %w", orderID, c.RestockID, err)
	}
	return expectRows(res, 1, fmt.Sprintf("order %d: record restock %s", orderID, c.RestockID))
}

// claim records that the order claimed the reservation; it fails with
// ErrReservationVoid if the recovery sweep voided it first. An empty
// reservation id claims nothing.
func (s *Store) claim(ctx context.Context, tx *sqlx.Tx, reservationID string, orderID int64) error {
	if reservationID == "" {
		return nil
	}
	res, err := tx.ExecContext(ctx, s.d.stmt.claim, reservationID, orderID)
	if err != nil {
		return fmt.Errorf("claim reservation %s: %w", reservationID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("claim reservation %s: %w", reservationID, err)
	} else if n == 1 {
		return nil
	}
	var owner sql.NullInt64
	err = tx.GetContext(ctx, &owner, s.d.stmt.reservationOwner, reservationID)
	if errors.Is(err, sql.ErrNoRows) { // neither inserted nor there: the insert was swallowed
		return &RowCountError{What: fmt.Sprintf("order %d: claim reservation %s", orderID, reservationID), Got: 0, Want: 1}
	}
	if err != nil {
		return fmt.Errorf("claim reservation %s: %w", reservationID, err)
	}
	if !owner.Valid {
		return orders.ErrReservationVoid
	}
	return fmt.Errorf("claim reservation %s: already claimed by order %d", reservationID, owner.Int64)
}

// Settle decides a reservation: claimed by an order, or void from now on.
// The void row is inserted unless the reservation's row is there, then
// the row is read: on PostgreSQL the insert waits for a transaction that
// is writing the same row, and the read, a statement of its own, sees
// what that transaction committed.
func (s *Store) Settle(ctx context.Context, reservationID string) (int64, bool, error) {
	var owner sql.NullInt64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, s.d.stmt.void, reservationID); err != nil {
			return err
		}
		return tx.GetContext(ctx, &owner, s.d.stmt.reservationOwner, reservationID)
	})
	if err != nil {
		return 0, false, fmt.Errorf("settle reservation %s: %w", reservationID, err)
	}
	return owner.Int64, owner.Valid, nil
}

// PendingRestocks returns up to limit restocks recorded before the given
// time, oldest first.
func (s *Store) PendingRestocks(ctx context.Context, before time.Time, limit int) ([]orders.PendingRestock, error) {
	var rows []struct {
		ID    string `db:"id"`
		Lines []byte `db:"lines"`
	}
	if err := sqlx.SelectContext(ctx, s.q(), &rows, s.d.stmt.pendingReturns, s.d.timeArg(before), limit); err != nil {
		return nil, fmt.Errorf("pending restocks: %w", s.d.classify(err))
	}
	out := make([]orders.PendingRestock, len(rows))
	for i, r := range rows {
		lines, err := decodeLines(r.Lines)
		if err != nil {
			return nil, fmt.Errorf("pending restock %s: unreadable lines: %w", r.ID, err)
		}
		out[i] = orders.PendingRestock{ID: r.ID, Lines: lines}
	}
	return out, nil
}

// RestockDone forgets an applied restock.
func (s *Store) RestockDone(ctx context.Context, id string) error {
	if _, err := s.q().ExecContext(ctx, s.d.stmt.returnDone, id); err != nil {
		return fmt.Errorf("restock %s done: %w", id, s.d.classify(err))
	}
	return nil
}

// Analyze refreshes the query planner's statistics of the order tables.
// Run it after a bulk load: with stale statistics PostgreSQL may plan a
// listing as a sequential scan of every order line instead of index
// lookups.
func (s *Store) Analyze(ctx context.Context) error {
	if _, err := s.q().ExecContext(ctx, s.d.stmt.analyze); err != nil {
		return fmt.Errorf("analyze orders: %w", s.d.classify(err))
	}
	return nil
}

// scanOrders reads rows of (order id, line id, product id, price,
// quantity, product incarnation), sorted by order then line, into orders,
// and closes them.
func scanOrders(rs *sql.Rows) ([]orders.Order, error) {
	defer rs.Close()
	var (
		out []orders.Order
		// Every field is scanned on every row. One variable, which Scan's
		// pointers move to the heap, for all the rows and columns.
		row struct {
			orderID int64
			l       orders.Line
		}
	)
	l := &row.l
	for rs.Next() {
		if err := rs.Scan(&row.orderID, &l.ID, &l.ProductID, &l.Price, &l.Quantity, &l.Incarnation); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].ID != row.orderID {
			out = append(out, orders.Order{ID: row.orderID})
		}
		last := &out[len(out)-1]
		last.Lines = append(last.Lines, *l)
	}
	return out, rs.Err()
}

// storedLine is a line of a pending restock as stock_returns.lines keeps
// it (JSON).
type storedLine struct {
	ProductID   string `json:"product_id"`
	Quantity    int64  `json:"quantity"`
	Incarnation string `json:"incarnation,omitempty"`
}

func encodeLines(lines []products.Line) []storedLine {
	out := make([]storedLine, len(lines))
	for i, l := range lines {
		out[i] = storedLine(l)
	}
	return out
}

func decodeLines(raw []byte) ([]products.Line, error) {
	var stored []storedLine
	if err := json.Unmarshal(raw, &stored); err != nil {
		return nil, err
	}
	out := make([]products.Line, len(stored))
	for i, l := range stored {
		out[i] = products.Line(l)
	}
	return out, nil
}

// RowCountError means a write changed another number of rows than it
// must: something in the database (a rule, a trigger, a policy) changed
// what the statement does. The store rolls the whole change back and
// reports this error (an internal error to the client), never a success:
// an order whose DELETE deleted nothing must not be reported deleted, nor
// its stock given back.
type RowCountError struct {
	What      string // the write: "delete order 5", "update order 5 line 7"…
	Got, Want int64
}

func (e *RowCountError) Error() string {
	return fmt.Sprintf("%s: %d rows changed, %d expected (a rule or trigger in the database?); the change was rolled back",
		e.What, e.Got, e.Want)
}

// expectRows checks that a write changed want rows.
func expectRows(res sql.Result, want int64, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n != want {
		return &RowCountError{What: what, Got: n, Want: want}
	}
	return nil
}
