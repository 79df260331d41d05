package sqlstore

// Orders as records with every stored field: what an airship dump holds
// (airship export), and what loading one writes (airship import, airship
// seed), with their ids, so that a shop moves from one store to another
// unchanged.

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/orders"
)

// Records returns up to limit orders with id > after, oldest first, with
// every stored field.
func (s *Store) Records(ctx context.Context, after int64, limit int) ([]orders.Record, error) {
	rs, err := s.q().QueryContext(ctx, s.d.stmt.records, after, limit)
	if err != nil {
		return nil, fmt.Errorf("order records: %w", s.d.classify(err))
	}
	found, err := scanRecords(rs)
	if err != nil {
		return nil, fmt.Errorf("order records: %w", s.d.classify(err))
	}
	return found, nil
}

// Load writes the records of a batch that are not there, with their ids,
// in one transaction (or the one the store is bound to); see
// orders.LoadResult. A batch with a conflict writes nothing. The id
// sequences are not moved: MoveIDsPast does that, before or after.
func (s *Store) Load(ctx context.Context, batch []orders.Record) (orders.LoadResult, error) {
	var res orders.LoadResult
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		ids := make([]int64, len(batch))
		for i, r := range batch {
			ids[i] = r.ID
		}
		rs, err := tx.QueryContext(ctx, s.d.stmt.recordsOf, s.d.ids(ids))
		if err != nil {
			return fmt.Errorf("load orders: %w", err)
		}
		there, err := scanRecords(rs)
		if err != nil {
			return fmt.Errorf("load orders: %w", err)
		}
		var write []orders.Record
		write, res = loadPlan(batch, there)
		if len(write) == 0 || res.Conflicts != nil {
			return nil
		}
		taken := map[int64]int64{}
		lrows, err := tx.QueryContext(ctx, s.d.stmt.takenLines, s.d.ids(lineIDs(write)))
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
		if err := s.d.load(ctx, tx, write); err != nil {
			return err
		}
		res.Created = len(write)
		return nil
	})
	if err != nil {
		return orders.LoadResult{}, err
	}
	return res, nil
}

// LastIDs returns the highest order and line ids the database handed out
// (0 if none); it never hands them out again.
func (s *Store) LastIDs(ctx context.Context) (order, line int64, err error) {
	return s.d.lastIDs(ctx, s.q())
}

// MoveIDsPast moves the id sequences of orders and lines past every id in
// the tables and past the given last ids, so that new orders continue
// after loaded ones and ids another store handed out are not handed out
// again; a sequence already further on stays where it is. It runs in the
// bound transaction or in one of its own.
func (s *Store) MoveIDsPast(ctx context.Context, lastOrder, lastLine int64) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		return s.d.moveIDsPast(ctx, tx, lastOrder, lastLine)
	})
}

// timeValue scans a timestamp as either database returns it
// (PostgreSQL: time.Time; SQLite: text in liteTimeFormat), in UTC; NULL
// leaves it invalid.
type timeValue struct {
	t     time.Time
	valid bool
}

func (tv *timeValue) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*tv = timeValue{}
		return nil
	case time.Time:
		tv.t, tv.valid = v.UTC(), true
		return nil
	case string:
		return tv.parse(v)
	case []byte:
		return tv.parse(string(v))
	default:
		return fmt.Errorf("timestamp: unexpected %T", v)
	}
}

func (tv *timeValue) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("timestamp %q: %w", s, err)
	}
	tv.t, tv.valid = t.UTC(), true
	return nil
}

// millis is the timestamp to the precision of records.
func (tv timeValue) millis() time.Time { return tv.t.Truncate(orders.TimePrecision) }

// scanRecords reads rows of recordColumns, sorted by order then line,
// the line columns NULL for an order without lines, and closes them.
func scanRecords(rs *sql.Rows) ([]orders.Record, error) {
	defer rs.Close()
	var out []orders.Record
	for rs.Next() {
		var (
			id                   int64
			created, updated     timeValue
			lineID, qty          sql.NullInt64
			product, incarnation sql.NullString
			price                decimal.NullDecimal
			lcreated, lupdated   timeValue
		)
		if err := rs.Scan(&id, &created, &updated, &lineID, &product, &price, &qty, &incarnation, &lcreated, &lupdated); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].ID != id {
			out = append(out, orders.Record{ID: id, CreatedAt: created.millis(), UpdatedAt: updated.millis()})
		}
		if !lineID.Valid {
			continue
		}
		r := &out[len(out)-1]
		r.Lines = append(r.Lines, orders.RecordLine{
			Line: orders.Line{ID: lineID.Int64, ProductID: product.String, Price: price.Decimal, Quantity: qty.Int64,
				Incarnation: incarnation.String},
			CreatedAt: lcreated.millis(), UpdatedAt: lupdated.millis(),
		})
	}
	return out, rs.Err()
}

// loadPlan sorts a batch of records against the orders already there
// with their ids: those to write, and the result so far.
func loadPlan(batch []orders.Record, there []orders.Record) (write []orders.Record, res orders.LoadResult) {
	byID := make(map[int64]orders.Record, len(there))
	for _, r := range there {
		byID[r.ID] = r
	}
	for _, r := range batch {
		cur, ok := byID[r.ID]
		switch {
		case !ok:
			write = append(write, r)
		case cur.Equal(r):
			res.Equal++
		default:
			res.Conflicts = append(res.Conflicts, fmt.Sprintf("order %d: an order with this id is here and differs", r.ID))
		}
	}
	return write, res
}

// takenLines describes the lines of records whose ids another order
// here has (taken maps a line id to its order), or that two records of
// the batch share; nothing of such a batch may be written.
func takenLines(records []orders.Record, taken map[int64]int64) []string {
	var out []string
	in := map[int64]int64{}
	for _, r := range records {
		for _, l := range r.Lines {
			switch other, ok := taken[l.ID]; {
			case ok:
				out = append(out, fmt.Sprintf("order %d: line id %d belongs to order %d here", r.ID, l.ID, other))
			case in[l.ID] != 0:
				out = append(out, fmt.Sprintf("order %d: line id %d is also a line of order %d", r.ID, l.ID, in[l.ID]))
			}
			in[l.ID] = r.ID
		}
	}
	return out
}

// lineIDs are the ids of the lines of records.
func lineIDs(records []orders.Record) []int64 {
	var out []int64
	for _, r := range records {
		for _, l := range r.Lines {
			out = append(out, l.ID)
		}
	}
	return out
}
