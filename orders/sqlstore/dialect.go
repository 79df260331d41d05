package sqlstore

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/orders"
)

// dialect is what differs between the databases a Store runs on. Both
// take $n placeholders.
type dialect struct {
	// now is the SQL expression of the current time, as the schema keeps
	// timestamps.
	now string
	// lock follows the query that reads an order for a change: it locks
	// the order's rows where the database locks rows (SQLite's
	// transactions hold the database's write lock instead).
	lock string
	// inIDs is the condition that a column is one of a list of ids given
	// as parameter $1, and ids that parameter's value.
	inIDs string
	ids   func([]int64) any
	// timeArg is a timestamp as a parameter compared with a timestamp
	// column.
	timeArg func(time.Time) any
	// classify marks the errors that mean the database is unavailable (or
	// out of ids) as such; domain errors pass through.
	classify func(error) error
	// prepare: prepare the statements of the hot paths once.
	prepare bool
	// lockPending follows the query of pending events: with it the relay
	// holds the transaction that locked the events while it publishes
	// them, and marks them in that transaction (many relays at once);
	// without it, one relay reads them, publishes them, and marks them
	// in a transaction of its own.
	lockPending string

	// create writes an order, its lines, the claim of its reservation
	// (and its event) atomically.
	create func(ctx context.Context, s *Store, reservationID string, lines []orders.NewLine) (orders.Order, error)
	// load inserts records, with their ids, in tx.
	load func(ctx context.Context, tx *sqlx.Tx, write []orders.Record) error
	// lastIDs returns the highest order and line ids handed out;
	// moveIDsPast moves the id sequences past every id in the tables and
	// the given ones.
	lastIDs     func(ctx context.Context, q sqlx.QueryerContext) (order, line int64, err error)
	moveIDsPast func(ctx context.Context, q sqlx.ExtContext, lastOrder, lastLine int64) error

	stmt statements
}

// statements are the SQL statements of a dialect, built once from the
// shared text and the dialect's parts (see newStatements).
type statements struct {
	createOrder, createOrderAndEvent string // PostgreSQL: one statement each
	getOrder, listOrders, lockLines  string
	touchOrder, updateLine           string
	deleteOrder, linesLeft           string
	claim, void, reservationOwner    string
	addReturn, pendingReturns        string
	returnDone                       string
	records, recordsOf, takenLines   string
	pendingEvents, markPublished     string
	analyze                          string
}

// The statements both dialects run as they are.
const (
	// getOrder returns an order's lines as scanOrders reads them; every
	// order has at least one line.
	getOrder = `
SELECT o.id AS order_id, d.id, d.product_id, d.price, d.quantity, d.product_incarnation
FROM orders o JOIN order_details d ON d.order_id = o.id
WHERE o.id = $1
ORDER BY d.id`
	deleteOrder = `DELETE FROM orders WHERE id = $1`
	linesLeft   = `SELECT count(*) FROM order_details WHERE order_id = $1`
	// updateLine gives the line the updated_at of its order, which the
	// change touched first: a change's timestamps are one.
	updateLine = `UPDATE order_details SET price = $3, quantity = $4,
    updated_at = (SELECT updated_at FROM orders WHERE id = $2)
WHERE id = $1 AND order_id = $2`
	claimReservation = `INSERT INTO stock_reservations (id, order_id) VALUES ($1, $2)
ON CONFLICT (id) DO NOTHING`
	voidReservation = `INSERT INTO stock_reservations (id, order_id) VALUES ($1, NULL)
ON CONFLICT (id) DO NOTHING`
	reservationOwner = `SELECT order_id FROM stock_reservations WHERE id = $1`
	addReturn        = `INSERT INTO stock_returns (id, lines) VALUES ($1, $2)`
	pendingReturns   = `SELECT id, lines FROM stock_returns
WHERE created_at < $1 ORDER BY created_at, id LIMIT $2`
	returnDone = `DELETE FROM stock_returns WHERE id = $1`
	// recordColumns are the columns scanRecords reads.
	recordColumns = `o.id, o.created_at, o.updated_at, d.id, d.product_id, d.price, d.quantity, d.product_incarnation, d.created_at, d.updated_at`
)

func newStatements(d *dialect, listOrders, records, analyze string) statements {
	return statements{
		getOrder:         getOrder,
		listOrders:       listOrders,
		lockLines:        getOrder + d.lock,
		touchOrder:       `UPDATE orders SET updated_at = ` + d.now + ` WHERE id = $1`,
		updateLine:       updateLine,
		deleteOrder:      deleteOrder,
		linesLeft:        linesLeft,
		claim:            claimReservation,
		void:             voidReservation,
		reservationOwner: reservationOwner,
		addReturn:        addReturn,
		pendingReturns:   pendingReturns,
		returnDone:       returnDone,
		records:          records,
		recordsOf: `
SELECT ` + recordColumns + `
FROM orders o LEFT JOIN order_details d ON d.order_id = o.id
WHERE o.id ` + d.inIDs + `
ORDER BY o.id, d.id`,
		takenLines:    `SELECT id, order_id FROM order_details WHERE id ` + d.inIDs,
		pendingEvents: pendingEvents + d.lockPending,
		markPublished: `UPDATE outbox SET published_at = ` + d.now + ` WHERE id ` + d.inIDs,
		analyze:       analyze,
	}
}
