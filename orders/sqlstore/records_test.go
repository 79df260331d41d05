package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/orders/sqlstore"
)

// recordStore is a store that loads records and reads them back.
type recordStore interface {
	Load(ctx context.Context, batch []orders.Record) (orders.LoadResult, error)
	Records(ctx context.Context, after int64, limit int) ([]orders.Record, error)
}

var recordStores = []struct {
	name string
	new  func(t *testing.T) recordStore
}{
	{"postgres", func(t *testing.T) recordStore {
		return sqlstore.NewPostgres(testbackend.Postgres(t))
	}},
	{"embedded", func(t *testing.T) recordStore { return sqlstore.NewSQLite(testbackend.SQLite(t)) }},
}

func record(id int64, lineIDs ...int64) orders.Record {
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	r := orders.Record{ID: id, CreatedAt: at, UpdatedAt: at}
	for _, l := range lineIDs {
		r.Lines = append(r.Lines, orders.RecordLine{Line: orders.Line{ID: l, ProductID: "p", Price: decimal.RequireFromString("1.50"), Quantity: 1}, CreatedAt: at, UpdatedAt: at})
	}
	return r
}

// TestLoadNeverDropsALine: a line id taken (by another order of the same
// batch, or by an order already there) is a conflict that stops the
// load; it is never skipped while the load reports success.
func TestLoadNeverDropsALine(t *testing.T) {
	for _, st := range recordStores {
		t.Run(st.name, func(t *testing.T) {
			ctx := t.Context()
			s := st.new(t)
			if res, err := s.Load(ctx, []orders.Record{record(1, 1, 2)}); err != nil || res.Conflicts != nil || res.Created != 1 {
				t.Fatalf("load order 1: %+v, %v", res, err)
			}
			for _, c := range []struct {
				name  string
				batch []orders.Record
			}{
				{"two orders of a batch with one line id", []orders.Record{record(2, 5), record(3, 5, 6)}},
				{"a line id of an order already there", []orders.Record{record(4, 2, 7)}},
			} {
				res, err := s.Load(ctx, c.batch)
				if err == nil && res.Conflicts == nil {
					t.Errorf("%s: loaded with %+v and no conflict", c.name, res)
				} else {
					t.Logf("%s: %+v, %v", c.name, res.Conflicts, err)
				}
			}
			got, err := s.Records(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, r := range got {
				ids = append(ids, r.ID)
			}
			// Conflicting batches are the caller's to roll back; what is
			// there must at least be whole: no order without its lines.
			loaded := map[int64][]int64{1: {1, 2}, 2: {5}, 3: {5, 6}, 4: {2, 7}}
			for _, r := range got {
				for _, want := range loaded[r.ID] {
					if !hasLine(r, want) {
						t.Errorf("order %d is there without its line %d (orders %v)", r.ID, want, ids)
					}
				}
			}
		})
	}
}

func hasLine(r orders.Record, id int64) bool {
	for _, l := range r.Lines {
		if l.ID == id {
			return true
		}
	}
	return false
}
