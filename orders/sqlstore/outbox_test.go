package sqlstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/events"
	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/orders/orderstest"
	"github.com/airshipltd/airship/orders/sqlstore"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/redisstore"
	"github.com/airshipltd/airship/products/sqlitestore"
)

// outboxStore is an orders store with its outbox.
type outboxStore interface {
	orders.Store
	DispatchEvents(ctx context.Context, limit int, publish events.DispatchFunc) (int, error)
	EventBacklog(ctx context.Context) (int, time.Time, error)
	PurgeEvents(ctx context.Context, before time.Time) (int64, error)
	Records(ctx context.Context, after int64, limit int) ([]orders.Record, error)
}

// outboxStores are the stores the outbox is tested on, with events on
// or off.
var outboxStores = map[string]func(t *testing.T, opts ...sqlstore.Option) (outboxStore, products.Store, orders.Transactor){
	"postgres": func(t *testing.T, opts ...sqlstore.Option) (outboxStore, products.Store, orders.Transactor) {
		rdb, prefix := testbackend.Redis(t)
		return sqlstore.NewPostgres(testbackend.Postgres(t), opts...), redisstore.New(rdb, prefix), nil
	},
	"embedded": func(t *testing.T, opts ...sqlstore.Option) (outboxStore, products.Store, orders.Transactor) {
		db := testbackend.SQLite(t)
		store := sqlstore.NewSQLite(db, opts...)
		return store, sqlitestore.New(db), store.Transactor(sqliteStock(db))
	},
}

func quietService(o orders.Store, p products.Store, tx orders.Transactor) *orders.Service {
	return orders.NewService(o, p, slog.New(slog.NewTextHandler(io.Discard, nil)),
		orders.Config{HoldFor: time.Minute, Tx: tx})
}

func newProduct(t *testing.T, p products.Store, id string, stock int64) {
	t.Helper()
	if err := p.Create(t.Context(), products.Product{ID: id, Title: "The " + id, InStock: stock}); err != nil {
		t.Fatal(err)
	}
}

func line(id, price string, q int64) orders.NewLine {
	return orders.NewLine{ProductID: id, Price: decimal.RequireFromString(price), Quantity: q}
}

// recorder is a publisher that confirms everything and keeps it.
type recorder struct {
	mu     sync.Mutex
	events []events.Event
}

func (r *recorder) publish(_ context.Context, evs []events.Event) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, evs...)
	return len(evs), nil
}

// drain dispatches until the outbox is empty and returns what was published.
func drain(t *testing.T, s outboxStore, limit int) []events.Event {
	t.Helper()
	r := &recorder{}
	for {
		n, err := s.DispatchEvents(t.Context(), limit, r.publish)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return r.events
		}
	}
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("body %s is not JSON: %v", b, err)
	}
	return out.String()
}

// TestOutbox: every order change writes one event in its transaction,
// with the old system's body; nothing is written with events off or for
// a change that did not commit; the relay's reads keep each order's
// events in order and mark only what was confirmed; published events are
// purged after the retention, pending ones never.
func TestOutbox(t *testing.T) {
	for name, open := range outboxStores {
		t.Run(name, func(t *testing.T) {
			t.Run("EventWithEachChange", func(t *testing.T) { testEventWithEachChange(t, open) })
			t.Run("NoEventsWhenOff", func(t *testing.T) { testNoEventsWhenOff(t, open) })
			t.Run("NoEventWithoutCommit", func(t *testing.T) { testNoEventWithoutCommit(t, open) })
			t.Run("OnlyConfirmedMarked", func(t *testing.T) { testOnlyConfirmedMarked(t, open) })
			t.Run("PurgeKeepsPending", func(t *testing.T) { testPurgeKeepsPending(t, open) })
			t.Run("NoEventForAnUnchangedOrder", func(t *testing.T) { testNoEventForAnUnchangedOrder(t, open) })
		})
	}
}

func testEventWithEachChange(t *testing.T, open func(*testing.T, ...sqlstore.Option) (outboxStore, products.Store, orders.Transactor)) {
	ctx := t.Context()
	s, p, tx := open(t, sqlstore.WithEvents())
	newProduct(t, p, "the_odyssey", 10)
	newProduct(t, p, "b", 10)
	svc := quietService(s, p, tx)
	o, err := svc.Place(ctx, []orders.NewLine{line("the_odyssey", "100000.99", 1), line("b", "5", 2)})
	if err != nil {
		t.Fatal(err)
	}
	q := int64(3)
	pr := decimal.RequireFromString("9.9")
	if _, err := svc.Update(ctx, o.ID, []orders.LineUpdate{{ID: o.Lines[1].ID, Quantity: &q, Price: &pr}}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	if n, oldest, err := s.EventBacklog(ctx); err != nil || n != 3 || time.Since(oldest) > time.Hour || time.Since(oldest) < -time.Hour {
		t.Fatalf("backlog = %d, oldest %s, %v; want 3 events written just now", n, oldest, err)
	}
	l0, l1 := o.Lines[0].ID, o.Lines[1].ID
	before := fmt.Sprintf(`{"order":{"id":%d,"order_details":[{"id":%d,"product_id":"the_odyssey","price":"100000.99","quantity":1},{"id":%d,"product_id":"b","price":"5.00","quantity":2}]}}`, o.ID, l0, l1)
	after := fmt.Sprintf(`{"order":{"id":%d,"order_details":[{"id":%d,"product_id":"the_odyssey","price":"100000.99","quantity":1},{"id":%d,"product_id":"b","price":"9.90","quantity":3}]}}`, o.ID, l0, l1)
	want := []struct{ typ, body string }{{events.OrderCreated, before}, {events.OrderUpdated, after}, {events.OrderDeleted, after}}
	got := drain(t, s, 100)
	if len(got) != len(want) {
		t.Fatalf("%d events published; want %d: %+v", len(got), len(want), got)
	}
	ids := map[string]bool{}
	for i, e := range got {
		if e.Type != want[i].typ || compact(t, e.Body) != want[i].body {
			t.Errorf("event %d = %s %s; want %s %s", i, e.Type, e.Body, want[i].typ, want[i].body)
		}
		if e.OrderID != o.ID || e.SchemaVersion != events.SchemaVersion {
			t.Errorf("event %d: order %d, schema version %d", i, e.OrderID, e.SchemaVersion)
		}
		if _, err := uuid.Parse(e.MessageID); err != nil || ids[e.MessageID] {
			t.Errorf("event %d: message id %q is not a fresh UUID", i, e.MessageID)
		}
		ids[e.MessageID] = true
	}
	// The created event's body is the one events.Body builds (PostgreSQL
	// builds it in SQL).
	eo := events.Order{ID: o.ID}
	for _, l := range o.Lines {
		eo.Lines = append(eo.Lines, events.OrderLine{ID: l.ID, ProductID: l.ProductID, Price: l.Price, Quantity: l.Quantity})
	}
	created, _ := events.Body(eo)
	if compact(t, got[0].Body) != string(created) {
		t.Errorf("order_created body %s; events.Body gives %s", got[0].Body, created)
	}
	if n, _, _ := s.EventBacklog(ctx); n != 0 {
		t.Fatalf("backlog %d after every event was published", n)
	}
}

func testNoEventsWhenOff(t *testing.T, open func(*testing.T, ...sqlstore.Option) (outboxStore, products.Store, orders.Transactor)) {
	ctx := t.Context()
	s, p, tx := open(t)
	newProduct(t, p, "a", 10)
	svc := quietService(s, p, tx)
	o, err := svc.Place(ctx, []orders.NewLine{line("a", "1", 1)})
	if err != nil {
		t.Fatal(err)
	}
	q := int64(2)
	if _, err := svc.Update(ctx, o.ID, []orders.LineUpdate{{ID: o.Lines[0].ID, Quantity: &q}}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.EventBacklog(ctx); err != nil || n != 0 {
		t.Fatalf("backlog = %d, %v with events off; want no event written", n, err)
	}
	if got := drain(t, s, 10); len(got) != 0 {
		t.Fatalf("events off, yet %d events in the outbox", len(got))
	}
}

// testNoEventWithoutCommit: an order refused before it is written (out
// of stock, unknown product), an order whose write rolls back (its
// reservation was voided: the claim fails after the order, its lines and
// its event were written), and a change that conflicts leave no event.
func testNoEventWithoutCommit(t *testing.T, open func(*testing.T, ...sqlstore.Option) (outboxStore, products.Store, orders.Transactor)) {
	ctx := t.Context()
	s, p, tx := open(t, sqlstore.WithEvents())
	newProduct(t, p, "a", 1)
	svc := quietService(s, p, tx)
	if _, err := svc.Place(ctx, []orders.NewLine{line("a", "1", 2)}); !errors.Is(err, products.ErrOutOfStock) {
		t.Fatalf("Place = %v; want out of stock", err)
	}
	if _, err := svc.Place(ctx, []orders.NewLine{line("missing", "1", 1)}); !errors.Is(err, products.ErrNotFound) {
		t.Fatalf("Place = %v; want not found", err)
	}
	const res = "voided-reservation"
	if _, committed, err := s.Settle(ctx, res); err != nil || committed {
		t.Fatalf("Settle = %v, %v", committed, err)
	}
	if _, err := s.Create(ctx, res, []orders.NewLine{line("a", "1", 1)}); !errors.Is(err, orders.ErrReservationVoid) {
		t.Fatalf("Create on a void reservation = %v; want ErrReservationVoid", err)
	}
	o, err := svc.Place(ctx, []orders.NewLine{line("a", "1", 1)})
	if err != nil {
		t.Fatal(err)
	}
	stale := []orders.Line{{ID: o.Lines[0].ID, Quantity: 7}}
	if err := s.Delete(ctx, o.ID, orders.Change{Expect: stale}); !errors.Is(err, orders.ErrConflict) {
		t.Fatalf("Delete with stale expectations = %v; want ErrConflict", err)
	}
	got := drain(t, s, 10)
	if len(got) != 1 || got[0].Type != events.OrderCreated || got[0].OrderID != o.ID {
		t.Fatalf("events %+v; want only order_created of order %d", got, o.ID)
	}
}

// testNoEventForAnUnchangedOrder: an update whose lines keep their price
// and quantity (PUT with the stored values) writes nothing: no
// order_updated event, no updated_at moved, and the order comes back as
// it was; through the Service and straight to the store. An update that
// changes one line moves only that line's updated_at and the order's.
func testNoEventForAnUnchangedOrder(t *testing.T, open func(*testing.T, ...sqlstore.Option) (outboxStore, products.Store, orders.Transactor)) {
	ctx := t.Context()
	s, p, tx := open(t, sqlstore.WithEvents())
	newProduct(t, p, "a", 10)
	svc := quietService(s, p, tx)
	o, err := svc.Place(ctx, []orders.NewLine{line("a", "5", 2), line("a", "1.50", 1)})
	if err != nil {
		t.Fatal(err)
	}
	before := records(t, s)
	// Timestamps are kept to the millisecond: let the clock pass the
	// order's, so that a write would show.
	time.Sleep(10 * time.Millisecond)

	one, two, five := int64(1), int64(2), decimal.RequireFromString("5.0")
	same := []orders.LineUpdate{{ID: o.Lines[0].ID, Quantity: &two, Price: &five}, {ID: o.Lines[1].ID, Quantity: &one}}
	got, err := svc.Update(ctx, o.ID, same)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(o) {
		t.Errorf("Update that changes nothing returned %+v; want the order as it was, %+v", got, o)
	}
	if got, err = s.Update(ctx, o.ID, same, orders.Change{Expect: o.Lines}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(o) {
		t.Errorf("store Update that changes nothing returned %+v; want the order as it was, %+v", got, o)
	}
	if n, _, err := s.EventBacklog(ctx); err != nil || n != 1 {
		t.Errorf("backlog %d, %v after updates that change nothing; want 1 (order_created only)", n, err)
	}
	if after := records(t, s); !after[0].Equal(before[0]) {
		t.Errorf("order after updates that change nothing: %+v; want it as it was, %+v", after[0], before[0])
	}

	three := int64(3)
	if _, err := svc.Update(ctx, o.ID, []orders.LineUpdate{{ID: o.Lines[1].ID, Quantity: &three}}); err != nil {
		t.Fatal(err)
	}
	after := records(t, s)[0]
	if !after.Lines[0].UpdatedAt.Equal(before[0].Lines[0].UpdatedAt) {
		t.Errorf("line %d updated_at moved from %s to %s by a change of another line", o.Lines[0].ID,
			before[0].Lines[0].UpdatedAt, after.Lines[0].UpdatedAt)
	}
	if !after.Lines[1].UpdatedAt.After(before[0].Lines[1].UpdatedAt) || !after.UpdatedAt.After(before[0].UpdatedAt) {
		t.Errorf("the changed line's and the order's updated_at did not move: %+v, before %+v", after, before[0])
	}
	if n, _, err := s.EventBacklog(ctx); err != nil || n != 2 {
		t.Errorf("backlog %d, %v after a change; want 2", n, err)
	}
}

// records reads every order of s with its timestamps.
func records(t *testing.T, s outboxStore) []orders.Record {
	t.Helper()
	rs, err := s.Records(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// swallowingOutboxStores are the stores of outboxStores, events on, with
// what makes their database swallow writes (orderstest.Swallow).
var swallowingOutboxStores = map[string]func(t *testing.T) (outboxStore, products.Store, orders.Transactor, orderstest.Swallow){
	"postgres": func(t *testing.T) (outboxStore, products.Store, orders.Transactor, orderstest.Swallow) {
		rdb, prefix := testbackend.Redis(t)
		db := testbackend.Postgres(t)
		return sqlstore.NewPostgres(db, sqlstore.WithEvents()), redisstore.New(rdb, prefix), nil, orderstest.PostgresSwallow(db)
	},
	"embedded": func(t *testing.T) (outboxStore, products.Store, orders.Transactor, orderstest.Swallow) {
		db := testbackend.SQLite(t)
		store := sqlstore.NewSQLite(db, sqlstore.WithEvents())
		return store, sqlitestore.New(db), store.Transactor(sqliteStock(db)), orderstest.SQLiteSwallow(db)
	},
}

// TestOutboxWritesChecked: when the database swallows the write of an
// event, the change it reports fails and rolls back (no change without
// its event); when it swallows the mark of a published event, the mark
// fails and the event stays pending.
func TestOutboxWritesChecked(t *testing.T) {
	for name, open := range swallowingOutboxStores {
		t.Run(name, func(t *testing.T) {
			t.Run("EventSwallowed", func(t *testing.T) {
				ctx := t.Context()
				s, p, tx, swallow := open(t)
				newProduct(t, p, "a", 10)
				svc := quietService(s, p, tx)
				o, err := svc.Place(ctx, []orders.NewLine{line("a", "1", 3)})
				if err != nil {
					t.Fatal(err)
				}
				swallow(t, "INSERT", "outbox")
				if placed, err := svc.Place(ctx, []orders.NewLine{line("a", "1", 1)}); err == nil {
					t.Errorf("Place with its event swallowed placed order %d; want an error", placed.ID)
				}
				one := int64(1)
				if _, err := svc.Update(ctx, o.ID, []orders.LineUpdate{{ID: o.Lines[0].ID, Quantity: &one}}); err == nil {
					t.Error("Update with its event swallowed succeeded; want an error")
				}
				if err := svc.Delete(ctx, o.ID); err == nil {
					t.Error("Delete with its event swallowed succeeded; want an error")
				}
				rs := records(t, s)
				if len(rs) != 1 || rs[0].ID != o.ID || rs[0].Lines[0].Quantity != 3 {
					t.Errorf("orders after the refused changes: %+v; want order %d as placed", rs, o.ID)
				}
				if n, _, err := s.EventBacklog(ctx); err != nil || n != 1 {
					t.Errorf("backlog %d, %v; want 1 (order_created of order %d)", n, err, o.ID)
				}
			})
			t.Run("MarkSwallowed", func(t *testing.T) {
				ctx := t.Context()
				s, p, tx, swallow := open(t)
				newProduct(t, p, "a", 10)
				if _, err := quietService(s, p, tx).Place(ctx, []orders.NewLine{line("a", "1", 3)}); err != nil {
					t.Fatal(err)
				}
				swallow(t, "UPDATE", "outbox")
				r := &recorder{}
				if n, err := s.DispatchEvents(ctx, 10, r.publish); err == nil {
					t.Errorf("DispatchEvents with the mark swallowed = %d, nil; want an error", n)
				}
				if n, _, err := s.EventBacklog(ctx); err != nil || n != 1 {
					t.Errorf("backlog %d, %v; want the event still pending", n, err)
				}
			})
		})
	}
}

// flaky confirms only the first `confirm` events of each batch and fails
// the rest, as a broker connection cut mid-batch.
type flaky struct {
	confirm int
	seen    []events.Event
}

func (f *flaky) publish(_ context.Context, evs []events.Event) (int, error) {
	n := min(f.confirm, len(evs))
	f.seen = append(f.seen, evs...)
	if n < len(evs) {
		return n, errors.New("connection lost")
	}
	return n, nil
}

func testOnlyConfirmedMarked(t *testing.T, open func(*testing.T, ...sqlstore.Option) (outboxStore, products.Store, orders.Transactor)) {
	ctx := t.Context()
	s, p, tx := open(t, sqlstore.WithEvents())
	newProduct(t, p, "a", 100)
	svc := quietService(s, p, tx)
	var ids []int64
	for range 3 {
		o, err := svc.Place(ctx, []orders.NewLine{line("a", "1", 1)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID)
	}
	// Order 1 gets a second event: it must wait for the first.
	q := int64(2)
	first, _ := svc.Get(ctx, ids[0])
	if _, err := svc.Update(ctx, ids[0], []orders.LineUpdate{{ID: first.Lines[0].ID, Quantity: &q}}); err != nil {
		t.Fatal(err)
	}
	f := &flaky{confirm: 1}
	n, err := s.DispatchEvents(ctx, 10, f.publish)
	if n != 1 || err == nil {
		t.Fatalf("DispatchEvents = %d, %v; want 1 marked and the publisher's error", n, err)
	}
	if len(f.seen) != 3 {
		t.Fatalf("first round offered %d events; want 3 (one per order: order %d's update waits)", len(f.seen), ids[0])
	}
	rest := drain(t, s, 10)
	var got []string
	for _, e := range rest {
		got = append(got, fmt.Sprintf("%d %s", e.OrderID, e.Type))
	}
	want := []string{
		fmt.Sprintf("%d %s", ids[1], events.OrderCreated),
		fmt.Sprintf("%d %s", ids[2], events.OrderCreated),
		fmt.Sprintf("%d %s", ids[0], events.OrderUpdated),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the failed round: %v; want %v (the unconfirmed again, the update after its create)", got, want)
	}
}

func testPurgeKeepsPending(t *testing.T, open func(*testing.T, ...sqlstore.Option) (outboxStore, products.Store, orders.Transactor)) {
	ctx := t.Context()
	s, p, tx := open(t, sqlstore.WithEvents())
	newProduct(t, p, "a", 100)
	svc := quietService(s, p, tx)
	for range 3 {
		if _, err := svc.Place(ctx, []orders.NewLine{line("a", "1", 1)}); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, s, 10)
	if _, err := svc.Place(ctx, []orders.NewLine{line("a", "1", 1)}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeEvents(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("purge of events published over an hour ago = %d, %v; want 0", n, err)
	}
	if n, err := s.PurgeEvents(ctx, time.Now().Add(time.Hour)); err != nil || n != 3 {
		t.Fatalf("purge of everything published = %d, %v; want the 3 published", n, err)
	}
	if n, _, err := s.EventBacklog(ctx); err != nil || n != 1 {
		t.Fatalf("backlog after the purge = %d, %v; want the pending event kept", n, err)
	}
}

// TestConcurrentRelays: relays of one PostgreSQL outbox, running at once
// while orders change, publish every event exactly once and each order's
// events in order.
func TestConcurrentRelays(t *testing.T) {
	ctx := t.Context()
	s, p, _ := outboxStores["postgres"](t, sqlstore.WithEvents())
	newProduct(t, p, "a", 1_000_000)
	svc := quietService(s, p, nil)
	const relays, writers, perWriter = 4, 4, 30
	r := &recorder{}
	var (
		stop    = make(chan struct{})
		relayWG sync.WaitGroup
		writeWG sync.WaitGroup
	)
	for range relays {
		relayWG.Go(func() {
			for {
				n, err := s.DispatchEvents(ctx, 7, r.publish)
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
		})
	}
	for range writers {
		writeWG.Go(func() {
			for range perWriter {
				o, err := svc.Place(ctx, []orders.NewLine{line("a", "1", 1)})
				if err != nil {
					t.Error(err)
					return
				}
				q := int64(2)
				if _, err := svc.Update(ctx, o.ID, []orders.LineUpdate{{ID: o.Lines[0].ID, Quantity: &q}}); err != nil {
					t.Error(err)
					return
				}
				if err := svc.Delete(ctx, o.ID); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writeWG.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, _, err := s.EventBacklog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still pending after 30s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	relayWG.Wait()

	seen := map[string]bool{}
	next := map[int64]int{}
	sequence := []string{events.OrderCreated, events.OrderUpdated, events.OrderDeleted}
	for _, e := range r.events {
		if seen[e.MessageID] {
			t.Fatalf("event %s (%s of order %d) published twice", e.MessageID, e.Type, e.OrderID)
		}
		seen[e.MessageID] = true
		if i := next[e.OrderID]; i >= len(sequence) || e.Type != sequence[i] {
			t.Fatalf("order %d: %s published when %v were", e.OrderID, e.Type, sequence[:i])
		}
		next[e.OrderID]++
	}
	if len(r.events) != writers*perWriter*3 {
		t.Fatalf("%d events published; want %d", len(r.events), writers*perWriter*3)
	}
}
