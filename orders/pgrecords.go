package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// pgRecords reads a page of orders with their lines (none for an order
// without lines), each order's lines through the order_details (order_id)
// index (see listOrders for the OFFSET 0).
const pgRecords = `
SELECT o.id, o.created_at, o.updated_at, d.id, d.product_id, d.price, d.quantity, d.product_incarnation, d.created_at, d.updated_at
FROM (SELECT id, created_at, updated_at FROM orders WHERE id > $1 ORDER BY id LIMIT $2) o
LEFT JOIN LATERAL (
    SELECT d.id, d.product_id, d.price, d.quantity, d.product_incarnation, d.created_at, d.updated_at
    FROM order_details d WHERE d.order_id = o.id OFFSET 0
) d ON true
ORDER BY o.id, d.id`

// Records returns up to limit orders with id > after, oldest first, with
// every stored field.
func (s *PGStore) Records(ctx context.Context, after int64, limit int) ([]Record, error) {
	rs, err := s.db.QueryContext(ctx, pgRecords, after, limit)
	if err != nil {
		return nil, fmt.Errorf("order records: %w", pgErr(err))
	}
	found, err := scanRecords(rs)
	if err != nil {
		return nil, fmt.Errorf("order records: %w", pgErr(err))
	}
	return found, nil
}

// PGLoader loads records into PostgreSQL inside a transaction that its
// caller commits or rolls back.
type PGLoader struct{ tx *sqlx.Tx }

// NewPGLoader returns a loader that writes in tx.
func NewPGLoader(tx *sqlx.Tx) *PGLoader { return &PGLoader{tx: tx} }

const (
	pgRecordsOf = `
SELECT o.id, o.created_at, o.updated_at, d.id, d.product_id, d.price, d.quantity, d.product_incarnation, d.created_at, d.updated_at
FROM orders o LEFT JOIN order_details d ON d.order_id = o.id
WHERE o.id = ANY($1)
ORDER BY o.id, d.id`
	pgTakenLines = `SELECT id, order_id FROM order_details WHERE id = ANY($1)`
	// The inserts have no ON CONFLICT: an id taken since the checks
	// (by an order placed meanwhile) fails the load, it is never skipped.
	pgLoadOrders = `INSERT INTO orders (id, created_at, updated_at)
SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::timestamptz[])`
	pgLoadLines = `INSERT INTO order_details (id, order_id, product_id, price, quantity, product_incarnation, created_at, updated_at)
SELECT * FROM unnest($1::int[], $2::int[], $3::text[], $4::numeric[], $5::int[], $6::text[], $7::timestamptz[], $8::timestamptz[])`
)

// Load writes the records of a batch that are not there, with their
// ids, in two statements; see LoadResult. A batch with a conflict writes
// nothing.
func (l *PGLoader) Load(ctx context.Context, batch []Record) (LoadResult, error) {
	ids := make([]int64, len(batch))
	for i, r := range batch {
		ids[i] = r.ID
	}
	rs, err := l.tx.QueryContext(ctx, pgRecordsOf, pq.Array(ids))
	if err != nil {
		return LoadResult{}, fmt.Errorf("load orders: %w", pgErr(err))
	}
	there, err := scanRecords(rs)
	if err != nil {
		return LoadResult{}, fmt.Errorf("load orders: %w", pgErr(err))
	}
	write, res := loadPlan(batch, there)
	if len(write) == 0 || res.Conflicts != nil {
		return res, nil
	}
	taken := map[int64]int64{}
	lrows, err := l.tx.QueryContext(ctx, pgTakenLines, pq.Array(lineIDs(write)))
	if err != nil {
		return LoadResult{}, fmt.Errorf("load orders: %w", pgErr(err))
	}
	defer lrows.Close()
	for lrows.Next() {
		var id, order int64
		if err := lrows.Scan(&id, &order); err != nil {
			return LoadResult{}, fmt.Errorf("load orders: %w", pgErr(err))
		}
		taken[id] = order
	}
	if err := lrows.Err(); err != nil {
		return LoadResult{}, fmt.Errorf("load orders: %w", pgErr(err))
	}
	if res.Conflicts = takenLines(write, taken); res.Conflicts != nil {
		return res, nil
	}
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
	if _, err := l.tx.ExecContext(ctx, pgLoadOrders, pq.Array(oids), pq.Array(ocreated), pq.Array(oupdated)); err != nil {
		return LoadResult{}, loadError("orders", err)
	}
	if len(lids) > 0 {
		if _, err := l.tx.ExecContext(ctx, pgLoadLines, pq.Array(lids), pq.Array(lorders), pq.Array(products), pq.Array(prices),
			pq.Array(qtys), pq.Array(incarnations), pq.Array(lcreated), pq.Array(lupdated)); err != nil {
			return LoadResult{}, loadError("order lines", err)
		}
	}
	res.Created = len(write)
	return res, nil
}

// loadError explains a failed insert of a load: an id taken since Load
// checked (an order placed meanwhile) is named.
func loadError(what string, err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" {
		return fmt.Errorf("load %s: an id of the dump was taken here meanwhile (%s)", what, pqErr.Detail)
	}
	return fmt.Errorf("load %s: %w", what, pgErr(err))
}

// LastIDs returns the highest order and line ids the database's
// sequences handed out (0 if none).
func (s *PGStore) LastIDs(ctx context.Context) (order, line int64, err error) {
	ids := [2]int64{}
	for i, table := range idTables {
		seq, err := sequenceOf(ctx, s.db, table)
		if err != nil {
			return 0, 0, err
		}
		if err := s.db.QueryRowContext(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM `+seq).Scan(&ids[i]); err != nil {
			return 0, 0, fmt.Errorf("sequence %s: %w", seq, pgErr(err))
		}
	}
	return ids[0], ids[1], nil
}

// idTables are the tables whose ids orders keep, in the order of LastIDs.
var idTables = [2]string{"orders", "order_details"}

func sequenceOf(ctx context.Context, q sqlx.QueryerContext, table string) (string, error) {
	var seq string
	if err := q.QueryRowxContext(ctx, `SELECT pg_get_serial_sequence($1, 'id')`, table).Scan(&seq); err != nil {
		return "", fmt.Errorf("sequence of %s: %w", table, pgErr(err))
	}
	return seq, nil // from the catalog, quoted as an identifier
}

// Finish moves the sequences of order and line ids past every id in the
// tables and past the given last ids, so that new orders continue after
// the loaded ones and ids the source handed out are not handed out
// again; a sequence already further on stays where it is.
func (l *PGLoader) Finish(ctx context.Context, lastOrder, lastLine int64) error {
	return moveSequences(ctx, l.tx, lastOrder, lastLine)
}

// MoveIDsPast moves the sequences of order and line ids past every id in
// the tables and past the given last ids (see PGLoader.Finish), at once:
// PostgreSQL never takes back what a sequence handed out.
func (s *PGStore) MoveIDsPast(ctx context.Context, lastOrder, lastLine int64) error {
	return moveSequences(ctx, s.db, lastOrder, lastLine)
}

func moveSequences(ctx context.Context, q sqlx.ExtContext, lastOrder, lastLine int64) error {
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
