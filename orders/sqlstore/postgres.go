package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/airshipltd/airship/events"
	"github.com/airshipltd/airship/internal/errs"
	"github.com/airshipltd/airship/orders"
)

// postgresDialect is the dialect of PostgreSQL. Several replicas share the
// database: a change locks the rows of its order (FOR UPDATE), and relays
// lock the events they publish (FOR UPDATE SKIP LOCKED, so relays never
// wait for each other and never take the same event), publish them, and
// mark them published in the same transaction once the broker confirmed
// them. If a relay dies, its transaction rolls back and another relay
// takes the events; if the mark is lost after the confirm, the events are
// published again (at least once, same message id).
var postgresDialect = dialect{
	now: `now()`,
	lock: `
FOR UPDATE`,
	inIDs:    `= ANY($1)`,
	ids:      func(ids []int64) any { return pq.Array(ids) },
	timeArg:  func(t time.Time) any { return t },
	classify: pgErr,
	prepare:  true,
	lockPending: `
FOR UPDATE OF e SKIP LOCKED`,
	create:      pgCreate,
	load:        pgLoad,
	lastIDs:     pgLastIDs,
	moveIDsPast: pgMoveIDsPast,
}

func init() {
	postgresDialect.stmt = newStatements(&postgresDialect, pgListOrders, pgRecords, `ANALYZE orders, order_details`)
	postgresDialect.stmt.createOrder, postgresDialect.stmt.createOrderAndEvent = createOrder, createOrderAndEvent
}

// createOrder writes the order, its lines and the claim of its reservation
// in one statement, hence one round trip and one implicit transaction.
// createOrderAndEvent also writes the order_created event to the outbox
// ($6 its message id, $7 the schema version), its body built as
// events.Body builds it: numeric(18,2) as text has exactly two decimals,
// and the relay compacts the whitespace json_build_object puts around
// colons.
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
    SELECT $6, o.id, '` + events.OrderCreated + `', $7, json_build_object('order', json_build_object(
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

// pgCreate writes an order with createOrder (or createOrderAndEvent).
func pgCreate(ctx context.Context, s *Store, reservationID string, lines []orders.NewLine) (orders.Order, error) {
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
		args = append(args, uuid.NewString(), events.SchemaVersion)
	}
	rs, err := s.query(ctx, &s.prepared.create, args...)
	if err == nil {
		func() {
			defer rs.Close()
			if !rs.Next() {
				err = rs.Err()
				if err == nil {
					err = sql.ErrNoRows
				}
				return
			}
			err = rs.Scan(&orderID, &lineIDs, &whole)
		}()
	}
	if isUniqueViolation(err) {
		return orders.Order{}, orders.ErrReservationVoid
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "22P02" && strings.Contains(pqErr.Message, "not written whole") {
		return orders.Order{}, fmt.Errorf("create order: the database did not write it whole (a rule or trigger?), "+
			"so the statement was rolled back: %w", err)
	}
	if err != nil {
		return orders.Order{}, fmt.Errorf("create order: %w", pgErr(err))
	}
	o := orders.Order{ID: orderID, Lines: make([]orders.Line, len(lines))}
	for i, l := range lines {
		o.Lines[i] = orders.Line{ID: lineIDs[i], ProductID: l.ProductID, Price: l.Price, Quantity: l.Quantity, Incarnation: l.Incarnation}
	}
	return o, nil
}

// pgListOrders reads each order's lines in a LATERAL subquery. Its
// OFFSET 0 keeps PostgreSQL from flattening the subquery into a join, so
// the lines can only be read order by order through the order_details
// (order_id) index, whatever the statistics say: as a plain join, stale
// statistics made it hash-join a sequential scan of every order line.
// (OFFSET 0 rather than an ORDER BY d.id inside: that adds a sort per
// order and measured 25% slower; the outer ORDER BY orders the lines.)
// pgRecords reads records the same way, with the orders without lines.
const (
	pgListOrders = `
SELECT o.id AS order_id, d.id, d.product_id, d.price, d.quantity, d.product_incarnation
FROM (SELECT id FROM orders WHERE id > $1 ORDER BY id LIMIT $2) o
CROSS JOIN LATERAL (
    SELECT d.id, d.product_id, d.price, d.quantity, d.product_incarnation
    FROM order_details d
    WHERE d.order_id = o.id
    OFFSET 0
) d
ORDER BY o.id, d.id`
	pgRecords = `
SELECT ` + recordColumns + `
FROM (SELECT id, created_at, updated_at FROM orders WHERE id > $1 ORDER BY id LIMIT $2) o
LEFT JOIN LATERAL (
    SELECT d.id, d.product_id, d.price, d.quantity, d.product_incarnation, d.created_at, d.updated_at
    FROM order_details d WHERE d.order_id = o.id OFFSET 0
) d ON true
ORDER BY o.id, d.id`
)

// The inserts of a load have no ON CONFLICT: an id taken since the checks
// (by an order placed meanwhile) fails the load, it is never skipped.
const (
	pgLoadOrders = `INSERT INTO orders (id, created_at, updated_at)
SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::timestamptz[])`
	pgLoadLines = `INSERT INTO order_details (id, order_id, product_id, price, quantity, product_incarnation, created_at, updated_at)
SELECT * FROM unnest($1::int[], $2::int[], $3::text[], $4::numeric[], $5::int[], $6::text[], $7::timestamptz[], $8::timestamptz[])`
)

// pgLoad inserts records in two statements, whatever their number.
func pgLoad(ctx context.Context, tx *sqlx.Tx, write []orders.Record) error {
	var (
		oids, lids, lorders, qtys              []int64
		ocreated, oupdated, lcreated, lupdated []string
		products, prices, incarnations         []string
	)
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	for _, r := range write {
		oids = append(oids, r.ID)
		ocreated, oupdated = append(ocreated, stamp(r.CreatedAt)), append(oupdated, stamp(r.UpdatedAt))
		for _, d := range r.Lines {
			lids, lorders, qtys = append(lids, d.ID), append(lorders, r.ID), append(qtys, d.Quantity)
			products, prices, incarnations = append(products, d.ProductID), append(prices, d.Price.StringFixed(2)), append(incarnations, d.Incarnation)
			lcreated, lupdated = append(lcreated, stamp(d.CreatedAt)), append(lupdated, stamp(d.UpdatedAt))
		}
	}
	if _, err := tx.ExecContext(ctx, pgLoadOrders, pq.Array(oids), pq.Array(ocreated), pq.Array(oupdated)); err != nil {
		return pgLoadError("orders", err)
	}
	if len(lids) > 0 {
		if _, err := tx.ExecContext(ctx, pgLoadLines, pq.Array(lids), pq.Array(lorders), pq.Array(products), pq.Array(prices),
			pq.Array(qtys), pq.Array(incarnations), pq.Array(lcreated), pq.Array(lupdated)); err != nil {
			return pgLoadError("order lines", err)
		}
	}
	return nil
}

// pgLoadError explains a failed insert of a load: an id taken since Load
// checked (an order placed meanwhile) is named.
func pgLoadError(what string, err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" {
		return fmt.Errorf("load %s: an id of the dump was taken here meanwhile (%s)", what, pqErr.Detail)
	}
	return fmt.Errorf("load %s: %w", what, pgErr(err))
}

// idTables are the tables whose ids orders keep, in the order of LastIDs.
var idTables = [2]string{"orders", "order_details"}

// pgLastIDs returns the last values of the id sequences (0 if none was
// handed out).
func pgLastIDs(ctx context.Context, q sqlx.QueryerContext) (order, line int64, err error) {
	ids := [2]int64{}
	for i, table := range idTables {
		seq, err := sequenceOf(ctx, q, table)
		if err != nil {
			return 0, 0, err
		}
		if err := q.QueryRowxContext(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM `+seq).Scan(&ids[i]); err != nil {
			return 0, 0, fmt.Errorf("sequence %s: %w", seq, pgErr(err))
		}
	}
	return ids[0], ids[1], nil
}

func sequenceOf(ctx context.Context, q sqlx.QueryerContext, table string) (string, error) {
	var seq string
	if err := q.QueryRowxContext(ctx, `SELECT pg_get_serial_sequence($1, 'id')`, table).Scan(&seq); err != nil {
		return "", fmt.Errorf("sequence of %s: %w", table, pgErr(err))
	}
	return seq, nil // from the catalog, quoted as an identifier
}

// pgMoveIDsPast moves each sequence to the highest of the ids in its
// table, its own last value and the given last id. PostgreSQL never takes
// back what a sequence handed out, even if the transaction rolls back.
func pgMoveIDsPast(ctx context.Context, q sqlx.ExtContext, lastOrder, lastLine int64) error {
	for i, table := range idTables {
		seq, err := sequenceOf(ctx, q, table)
		if err != nil {
			return err
		}
		_, err = q.ExecContext(ctx, `
SELECT setval($1, m) FROM (
    SELECT GREATEST((SELECT max(id) FROM `+table+`), (SELECT CASE WHEN is_called THEN last_value END FROM `+seq+`),
        NULLIF($2::bigint, 0)) AS m
) s WHERE m IS NOT NULL`, seq, [2]int64{lastOrder, lastLine}[i])
		if err != nil {
			return fmt.Errorf("move sequence %s: %w", seq, pgErr(err))
		}
	}
	return nil
}

func isUniqueViolation(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "23505"
}

// pgErr marks the errors that mean PostgreSQL could not be reached or used
// right now (a connection refused, reset or timed out, the server shutting
// down or short of resources) as orders.ErrUnavailable, by the error's
// type or SQLSTATE, and a sequence at its end as orders.ErrIDsExhausted;
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
		return fmt.Errorf("%w: %w", orders.ErrUnavailable, err)
	case errors.As(err, &pqErr) && pqErr.Code == "2200H": // a sequence reached its maximum
		return fmt.Errorf("%w: %w", orders.ErrIDsExhausted, err)
	case errors.As(err, &pqErr):
		// Class 08: connection exception; 53: insufficient resources;
		// 57P01-57P03: admin shutdown, crash shutdown, cannot connect now.
		if c := string(pqErr.Code); strings.HasPrefix(c, "08") || strings.HasPrefix(c, "53") ||
			c == "57P01" || c == "57P02" || c == "57P03" {
			return fmt.Errorf("%w: %w", orders.ErrUnavailable, err)
		}
	}
	return err
}

// StatementNames names the SQL statements the store runs on PostgreSQL,
// by their text, so that metrics and traces can tell them apart without
// the SQL itself.
func StatementNames() map[string]string {
	st := postgresDialect.stmt
	return map[string]string{
		st.createOrder: "create_order", st.createOrderAndEvent: "create_order",
		st.getOrder: "get_order", st.listOrders: "list_orders", st.lockLines: "lock_lines",
		st.updateLine: "update_line", st.touchOrder: "touch_order", st.deleteOrder: "delete_order",
		st.linesLeft: "lines_left", st.claim: "claim_reservation", st.void: "settle_reservation",
		st.reservationOwner: "reservation_owner", st.addReturn: "add_return",
		st.pendingReturns: "pending_returns", st.returnDone: "return_done",
		st.records: "order_records", st.recordsOf: "order_records_of", st.takenLines: "taken_lines",
		pgLoadOrders: "load_orders", pgLoadLines: "load_lines",
		insertKey: "insert_key", selectKey: "select_key", dropExpiredKey: "drop_expired_key",
		takeOverKey: "take_over_key", completeKey: "complete_key", yieldKey: "yield_key",
		purgeKeys: "purge_keys", insertEvent: "insert_event",
		st.pendingEvents: "outbox_pending", st.markPublished: "outbox_mark_published",
		backlog: "outbox_backlog", purgeEvents: "outbox_purge",
	}
}
