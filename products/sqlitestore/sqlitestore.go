// Package sqlitestore is the products store in the embedded SQLite
// database, which also holds the orders: a store bound to a transaction
// (WithTx) takes part in the orders store's.
package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/internal/sqlite"
	"github.com/airshipltd/airship/products"
)

// Store keeps products in the "products" table of the embedded SQLite
// database (see db/migrations/sqlite).
//
// Stock moves inside transactions: Reserve takes every line's stock with a
// conditional UPDATE (in_stock >= quantity) in one transaction and rolls it
// all back when a line fails, so a reservation is all or nothing and
// in_stock never goes below zero. Held quantities are recorded per product
// in "product_holds" (keyed by reservation id) and the reservation itself,
// with its lines and deadline, in "product_reservations"; Commit and Release
// are idempotent because stock returns only while the hold is there.
// "product_restocks" remembers applied Restock calls for a week.
type Store struct {
	conn sqlite.Conn
}

var _ products.BulkStore = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithReads makes the reads of products outside a transaction (Get,
// GetMany, Exists, List) run on reads, the read pool of the same database
// (sqlite.OpenReads); nil leaves them on the pool.
func WithReads(reads *sqlx.DB) Option { return func(s *Store) { s.conn = s.conn.WithReads(reads) } }

// New returns a store on a database migrated with the sqlite
// migrations.
func New(pool *sqlx.DB, opts ...Option) *Store {
	s := &Store{conn: sqlite.NewConn(pool)}
	for _, o := range opts {
		o(s)
	}
	return s
}

// WithTx returns the store bound to tx: its calls run in tx and commit or
// roll back with it (see sqlstore.Store.Transactor in orders/sqlstore).
func (s *Store) WithTx(tx *sqlx.Tx) *Store {
	return &Store{conn: s.conn.WithTx(tx)}
}

const (
	sqlGetProduct = `SELECT id, title, passenger_capacity, maximum_speed, in_stock, incarnation
FROM products WHERE id = $1`
	// The ids travel as one JSON array parameter, so the statement is the
	// same whatever their number.
	sqlGetProducts = `SELECT id, title, passenger_capacity, maximum_speed, in_stock, incarnation
FROM products WHERE id IN (SELECT value FROM json_each($1))`
	sqlExists = `SELECT EXISTS (SELECT 1 FROM products WHERE id = $1)`
	sqlCreate = `INSERT INTO products (id, title, passenger_capacity, maximum_speed, in_stock, incarnation)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`
	sqlUpdate = `UPDATE products SET
    title = COALESCE($2, title),
    passenger_capacity = COALESCE($3, passenger_capacity),
    maximum_speed = COALESCE($4, maximum_speed),
    in_stock = COALESCE($5, in_stock)
WHERE id = $1
RETURNING id, title, passenger_capacity, maximum_speed, in_stock, incarnation`
	sqlDelete      = `DELETE FROM products WHERE id = $1`
	sqlDeleteHolds = `DELETE FROM product_holds WHERE product_id = $1`
	sqlList        = `SELECT id, title, passenger_capacity, maximum_speed, in_stock, incarnation
FROM products WHERE id > $1 ORDER BY id LIMIT $2`

	sqlInsertReservation = `INSERT INTO product_reservations (id, lines, deadline_ms)
VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`
	// $3 is the incarnation the line must take from, '' for any.
	sqlTakeStock = `UPDATE products SET in_stock = in_stock - $2
WHERE id = $1 AND in_stock >= $2 AND ($3 = '' OR incarnation = $3)
RETURNING incarnation`
	sqlStockOf  = `SELECT in_stock FROM products WHERE id = $1 AND ($2 = '' OR incarnation = $2)`
	sqlHeldFrom = `SELECT p.id, p.incarnation FROM product_holds h JOIN products p ON p.id = h.product_id
WHERE h.reservation_id = $1`
	sqlHold      = `INSERT INTO product_holds (reservation_id, product_id, quantity) VALUES ($1, $2, $3)`
	sqlHeld      = `SELECT EXISTS (SELECT 1 FROM product_reservations WHERE id = $1)`
	sqlDropHolds = `DELETE FROM product_holds WHERE reservation_id = $1`
	// Gives every held quantity back to its product, if it still exists.
	sqlReturnHolds = `UPDATE products SET in_stock = in_stock + (
    SELECT quantity FROM product_holds h WHERE h.reservation_id = $1 AND h.product_id = products.id)
WHERE id IN (SELECT product_id FROM product_holds WHERE reservation_id = $1)`
	sqlDropReservation = `DELETE FROM product_reservations WHERE id = $1`
	sqlExpired         = `SELECT id, lines, deadline_ms FROM product_reservations
WHERE deadline_ms < $1 ORDER BY deadline_ms, id LIMIT $2`

	sqlRestockMarker = `INSERT INTO product_restocks (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`
	sqlRestocked     = `SELECT EXISTS (SELECT 1 FROM product_restocks WHERE id = $1)`
	sqlPruneRestocks = `DELETE FROM product_restocks WHERE created_at < $1`
	sqlGiveStock     = `UPDATE products SET in_stock = in_stock + $2
WHERE id = $1 AND ($3 = '' OR incarnation = $3)`
)

// Get returns one product.
func (s *Store) Get(ctx context.Context, id string) (products.Product, error) {
	var p products.Product
	err := sqlx.GetContext(ctx, s.conn.R(), &p, sqlGetProduct, id)
	if errors.Is(err, sql.ErrNoRows) {
		return products.Product{}, &products.NotFoundError{ID: id}
	}
	if err != nil {
		return products.Product{}, fmt.Errorf("get product %s: %w", id, sqlite.Classify(err))
	}
	return p, nil
}

// GetMany returns the existing products among ids in one query.
func (s *Store) GetMany(ctx context.Context, ids []string) (map[string]products.Product, error) {
	out := make(map[string]products.Product, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var found []products.Product
	if err := sqlx.SelectContext(ctx, s.conn.R(), &found, sqlGetProducts, jsonIDs(ids)); err != nil {
		return nil, fmt.Errorf("get products: %w", sqlite.Classify(err))
	}
	for _, p := range found {
		out[p.ID] = p
	}
	return out, nil
}

// Exists reports whether the product exists.
func (s *Store) Exists(ctx context.Context, id string) (bool, error) {
	var ok bool
	if err := sqlx.GetContext(ctx, s.conn.R(), &ok, sqlExists, id); err != nil {
		return false, fmt.Errorf("product %s exists: %w", id, sqlite.Classify(err))
	}
	return ok, nil
}

// Create adds a product unless its id is taken.
func (s *Store) Create(ctx context.Context, p products.Product) error {
	if p.Incarnation == "" {
		p.Incarnation = products.NewIncarnation()
	}
	res, err := s.conn.Q().ExecContext(ctx, sqlCreate, p.ID, p.Title, p.PassengerCapacity, p.MaximumSpeed, p.InStock, p.Incarnation)
	if err != nil {
		return fmt.Errorf("create product %s: %w", p.ID, sqlite.Classify(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("create product %s: %w", p.ID, sqlite.Classify(err))
	} else if n == 0 {
		return &products.ExistsError{ID: p.ID}
	}
	return nil
}

// Update applies patch to an existing product in one statement.
func (s *Store) Update(ctx context.Context, id string, patch products.Patch) (products.Product, error) {
	var p products.Product
	err := sqlx.GetContext(ctx, s.conn.Q(), &p, sqlUpdate, id, patch.Title, patch.PassengerCapacity, patch.MaximumSpeed, patch.InStock)
	if errors.Is(err, sql.ErrNoRows) {
		return products.Product{}, &products.NotFoundError{ID: id}
	}
	if err != nil {
		return products.Product{}, fmt.Errorf("update product %s: %w", id, sqlite.Classify(err))
	}
	return p, nil
}

// Delete removes a product and any stock held on it.
func (s *Store) Delete(ctx context.Context, id string) error {
	return s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, sqlDelete, id)
		if err != nil {
			return fmt.Errorf("delete product %s: %w", id, sqlite.Classify(err))
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete product %s: %w", id, sqlite.Classify(err))
		} else if n == 0 {
			return &products.NotFoundError{ID: id}
		}
		if _, err := tx.ExecContext(ctx, sqlDeleteHolds, id); err != nil {
			return fmt.Errorf("delete product %s: holds: %w", id, sqlite.Classify(err))
		}
		return nil
	})
}

// List pages through the products in id order.
func (s *Store) List(ctx context.Context, cursor string, limit int) (products.Page, error) {
	after, err := products.ListStart(cursor, limit)
	if err != nil {
		return products.Page{}, err
	}
	var found []products.Product
	// One row more than asked tells whether there is a next page.
	if err := sqlx.SelectContext(ctx, s.conn.R(), &found, sqlList, after, limit+1); err != nil {
		return products.Page{}, fmt.Errorf("list products: %w", sqlite.Classify(err))
	}
	return products.PageOf(found, limit), nil
}

// Reserve takes stock for all lines, or none, in one transaction. A
// reservation id that is already held takes nothing more.
func (s *Store) Reserve(ctx context.Context, r products.Reservation) (products.Taken, error) {
	lines := products.MergeLines(r.Lines)
	record, err := products.EncodeRecord(lines)
	if err != nil {
		return nil, fmt.Errorf("reserve %s: %w", r.ID, err)
	}
	taken := make(products.Taken, len(lines))
	err = s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, sqlInsertReservation, r.ID, string(record), r.Deadline.UnixMilli())
		if err != nil {
			return fmt.Errorf("reserve %s: %w", r.ID, sqlite.Classify(err))
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("reserve %s: %w", r.ID, sqlite.Classify(err))
		} else if n == 0 { // already held: report what it holds
			if err := mustExist(ctx, tx, sqlHeld, r.ID, "reserve "+r.ID+": the reservation's record"); err != nil {
				return err
			}
			rows, err := tx.QueryxContext(ctx, sqlHeldFrom, r.ID)
			if err != nil {
				return fmt.Errorf("reserve %s: %w", r.ID, sqlite.Classify(err))
			}
			defer rows.Close()
			for rows.Next() {
				var id, inc string
				if err := rows.Scan(&id, &inc); err != nil {
					return fmt.Errorf("reserve %s: %w", r.ID, sqlite.Classify(err))
				}
				taken[id] = inc
			}
			return sqlite.Classify(rows.Err())
		}
		for _, l := range lines {
			inc, err := reserveLine(ctx, tx, r.ID, l)
			if err != nil {
				return err
			}
			taken[l.ProductID] = inc
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return taken, nil
}

// Take takes the stock of every line, all or nothing, as Reserve does,
// but records no reservation: it is for a transaction that writes the
// order too (orders.Transactor), whose rollback gives the stock back.
// Unbound, it runs in a transaction of its own.
func (s *Store) Take(ctx context.Context, lines []products.Line) (products.Taken, error) {
	lines = products.MergeLines(lines)
	taken := make(products.Taken, len(lines))
	err := s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		for _, l := range lines {
			inc, err := takeLine(ctx, tx, "take stock", l)
			if err != nil {
				return err
			}
			taken[l.ProductID] = inc
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return taken, nil
}

// takeLine takes one line's stock and returns the incarnation it took it
// from, or says why it cannot: a *products.NotFoundError or
// *products.OutOfStockError as it is, any other error after what.
func takeLine(ctx context.Context, tx *sqlx.Tx, what string, l products.Line) (string, error) {
	var inc string
	err := tx.GetContext(ctx, &inc, sqlTakeStock, l.ProductID, l.Quantity, l.Incarnation)
	if errors.Is(err, sql.ErrNoRows) {
		var available int64
		err := tx.GetContext(ctx, &available, sqlStockOf, l.ProductID, l.Incarnation)
		if errors.Is(err, sql.ErrNoRows) {
			return "", &products.NotFoundError{ID: l.ProductID}
		}
		if err != nil {
			return "", fmt.Errorf("%s: product %s: %w", what, l.ProductID, sqlite.Classify(err))
		}
		return "", &products.OutOfStockError{ID: l.ProductID, Requested: l.Quantity, Available: available}
	}
	if err != nil {
		return "", fmt.Errorf("%s: product %s: %w", what, l.ProductID, sqlite.Classify(err))
	}
	return inc, nil
}

// reserveLine takes one line's stock and holds it under the reservation,
// and returns the incarnation it took it from, or says why it cannot.
func reserveLine(ctx context.Context, tx *sqlx.Tx, reservationID string, l products.Line) (string, error) {
	inc, err := takeLine(ctx, tx, "reserve "+reservationID, l)
	if err != nil {
		return "", err
	}
	res, err := tx.ExecContext(ctx, sqlHold, reservationID, l.ProductID, l.Quantity)
	if err != nil {
		return "", fmt.Errorf("reserve %s: hold on %s: %w", reservationID, l.ProductID, sqlite.Classify(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return "", fmt.Errorf("reserve %s: hold on %s: %w", reservationID, l.ProductID, sqlite.Classify(err))
	} else if n != 1 {
		return "", fmt.Errorf("reserve %s: hold on %s: %d rows written, 1 expected (a trigger in the database?)",
			reservationID, l.ProductID, n)
	}
	return inc, nil
}

// Commit forgets a reservation whose order committed.
func (s *Store) Commit(ctx context.Context, r products.Reservation) error {
	return s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, sqlDropHolds, r.ID); err != nil {
			return fmt.Errorf("commit reservation %s: %w", r.ID, sqlite.Classify(err))
		}
		if _, err := tx.ExecContext(ctx, sqlDropReservation, r.ID); err != nil {
			return fmt.Errorf("commit reservation %s: %w", r.ID, sqlite.Classify(err))
		}
		return nil
	})
}

// Release returns the held stock of a reservation to the products that
// still exist and forgets it. It works from the holds recorded under r.ID,
// so r.Lines is not needed and a repeated call returns nothing.
func (s *Store) Release(ctx context.Context, r products.Reservation) error {
	return s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		for _, q := range []string{sqlReturnHolds, sqlDropHolds, sqlDropReservation} {
			if _, err := tx.ExecContext(ctx, q, r.ID); err != nil {
				return fmt.Errorf("release reservation %s: %w", r.ID, sqlite.Classify(err))
			}
		}
		return nil
	})
}

// Expired returns up to limit reservations whose deadline is before now,
// earliest deadline first.
func (s *Store) Expired(ctx context.Context, now time.Time, limit int) ([]products.Reservation, error) {
	var rows []struct {
		ID         string `db:"id"`
		Lines      string `db:"lines"`
		DeadlineMS int64  `db:"deadline_ms"`
	}
	if err := sqlx.SelectContext(ctx, s.conn.Q(), &rows, sqlExpired, now.UnixMilli(), limit); err != nil {
		return nil, fmt.Errorf("expired reservations: %w", sqlite.Classify(err))
	}
	if len(rows) == 0 {
		return nil, nil
	}
	out := make([]products.Reservation, 0, len(rows))
	for _, row := range rows {
		lines, err := products.DecodeRecord([]byte(row.Lines))
		if err != nil {
			return nil, fmt.Errorf("reservation %s: unreadable record: %w", row.ID, err)
		}
		out = append(out, products.Reservation{ID: row.ID, Lines: lines, Deadline: time.UnixMilli(row.DeadlineMS)})
	}
	return out, nil
}

// Restock gives stock back to the products that still exist, each line to
// its own incarnation. A marker per call id, kept for a week, makes a
// repeated call a no-op.
func (s *Store) Restock(ctx context.Context, id string, lines []products.Line) error {
	return s.conn.InTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, sqlRestockMarker, id)
		if err != nil {
			return fmt.Errorf("restock %s: %w", id, sqlite.Classify(err))
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("restock %s: %w", id, sqlite.Classify(err))
		} else if n == 0 { // done before
			return mustExist(ctx, tx, sqlRestocked, id, "restock "+id+": its marker")
		}
		for _, l := range products.MergeLines(lines) {
			if _, err := tx.ExecContext(ctx, sqlGiveStock, l.ProductID, l.Quantity, l.Incarnation); err != nil {
				return fmt.Errorf("restock %s: product %s: %w", id, l.ProductID, sqlite.Classify(err))
			}
		}
		cutoff := time.Now().Add(-products.RestockMemory).UTC().Format(sqlTimeFormat)
		if _, err := tx.ExecContext(ctx, sqlPruneRestocks, cutoff); err != nil {
			return fmt.Errorf("restock %s: prune markers: %w", id, sqlite.Classify(err))
		}
		return nil
	})
}

// mustExist checks that a row an insert ... ON CONFLICT DO NOTHING left
// alone is there: if it is not, the insert was swallowed (a trigger in
// the database), and the call must fail rather than act as if the row had
// been written before.
func mustExist(ctx context.Context, tx *sqlx.Tx, query, id, what string) error {
	var ok bool
	if err := tx.GetContext(ctx, &ok, query, id); err != nil {
		return fmt.Errorf("%s: %w", what, sqlite.Classify(err))
	}
	if !ok {
		return fmt.Errorf("%s was neither written nor there (a trigger in the database?)", what)
	}
	return nil
}

// sqlTimeFormat is how the sqlite migrations write timestamps
// (strftime('%Y-%m-%dT%H:%M:%fZ')), so that they compare as strings.
const sqlTimeFormat = "2006-01-02T15:04:05.000Z"

// jsonIDs encodes ids as a JSON array for json_each.
func jsonIDs(ids []string) string {
	b, _ := json.Marshal(ids) // a []string always encodes
	return string(b)
}
