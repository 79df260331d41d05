package orders

// Orders as records with every stored field: what an airship dump holds
// (airship export), and what loading one writes (airship import), with
// their ids, so that a shop moves from one store to another unchanged.

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Record is an order with its timestamps and its lines'. Timestamps are
// kept to the millisecond, in UTC. Orders the old shop wrote may have no
// lines.
type Record struct {
	ID                   int64
	CreatedAt, UpdatedAt time.Time
	Lines                []RecordLine
}

// RecordLine is a line of a Record.
type RecordLine struct {
	Line
	CreatedAt, UpdatedAt time.Time
}

// Equal reports whether r and o are the same order: the same id,
// timestamps and lines.
func (r Record) Equal(o Record) bool {
	if r.ID != o.ID || !r.CreatedAt.Equal(o.CreatedAt) || !r.UpdatedAt.Equal(o.UpdatedAt) || len(r.Lines) != len(o.Lines) {
		return false
	}
	for i, l := range r.Lines {
		m := o.Lines[i]
		if l.ID != m.ID || l.ProductID != m.ProductID || !l.Price.Equal(m.Price) || l.Quantity != m.Quantity ||
			l.Incarnation != m.Incarnation || !l.CreatedAt.Equal(m.CreatedAt) || !l.UpdatedAt.Equal(m.UpdatedAt) {
			return false
		}
	}
	return true
}

// LoadResult is what loading a batch of records did.
type LoadResult struct {
	// Created counts the orders written; Equal those already there, the
	// same.
	Created, Equal int
	// Conflicts describes each record that could not be written: an order
	// with its id is there and differs, or another order (here or in the
	// batch) has one of its line ids. Then nothing of the batch was
	// written, and the caller rolls the load back.
	Conflicts []string
}

// Millis is the precision of the timestamps of records.
const Millis = time.Millisecond

// recordTime scans a timestamp as either store returns it (PostgreSQL:
// time.Time; the embedded store: text in liteTimeFormat), to the
// millisecond, in UTC.
type recordTime struct {
	t     time.Time
	valid bool
}

func (rt *recordTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*rt = recordTime{}
		return nil
	case time.Time:
		rt.t = v
	case string:
		return rt.parse(v)
	case []byte:
		return rt.parse(string(v))
	default:
		return fmt.Errorf("timestamp: unexpected %T", v)
	}
	rt.t, rt.valid = rt.t.UTC().Truncate(Millis), true
	return nil
}

func (rt *recordTime) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("timestamp %q: %w", s, err)
	}
	rt.t, rt.valid = t.UTC().Truncate(Millis), true
	return nil
}

// scanRecords reads rows of (order id, created_at, updated_at, line id,
// product id, price, quantity, incarnation, created_at, updated_at),
// sorted by order then line, the line columns NULL for an order without
// lines, and closes them.
func scanRecords(rs *sql.Rows) ([]Record, error) {
	defer rs.Close()
	var out []Record
	for rs.Next() {
		var (
			id                   int64
			created, updated     recordTime
			lineID, qty          sql.NullInt64
			product, incarnation sql.NullString
			price                decimal.NullDecimal
			lcreated, lupdated   recordTime
		)
		if err := rs.Scan(&id, &created, &updated, &lineID, &product, &price, &qty, &incarnation, &lcreated, &lupdated); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].ID != id {
			out = append(out, Record{ID: id, CreatedAt: created.t, UpdatedAt: updated.t})
		}
		if !lineID.Valid {
			continue
		}
		r := &out[len(out)-1]
		r.Lines = append(r.Lines, RecordLine{
			Line: Line{ID: lineID.Int64, ProductID: product.String, Price: price.Decimal, Quantity: qty.Int64,
				Incarnation: incarnation.String},
			CreatedAt: lcreated.t, UpdatedAt: lupdated.t,
		})
	}
	return out, rs.Err()
}

// loadPlan sorts a batch of records against the orders already there
// with their ids: those to write, and the result so far.
func loadPlan(batch []Record, there []Record) (write []Record, res LoadResult) {
	byID := make(map[int64]Record, len(there))
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
func takenLines(records []Record, taken map[int64]int64) []string {
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
func lineIDs(records []Record) []int64 {
	var out []int64
	for _, r := range records {
		for _, l := range r.Lines {
			out = append(out, l.ID)
		}
	}
	return out
}

// idList is ids as a JSON array (the embedded store's parameter form).
func idList(rs []Record) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(r.ID, 10))
	}
	b.WriteByte(']')
	return b.String()
}
