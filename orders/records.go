package orders

// Orders as records with every stored field: what an airship dump holds
// (airship export), and what loading one writes (airship import), with
// their ids, so that a shop moves from one store to another unchanged.

import (
	"time"
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

// TimePrecision is the precision of the timestamps of records.
const TimePrecision = time.Millisecond
