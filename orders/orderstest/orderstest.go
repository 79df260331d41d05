// Package orderstest is the contract suite of orders.Store, run through
// orders.Service with the products store it is deployed with: the same
// cases, with the same expectations, against every implementation.
package orderstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/events"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// Stores are an orders store, the products store that holds its stock,
// and, when the two share one database, what runs a change to both in one
// transaction.
type Stores struct {
	Orders   orders.Store
	Products products.Store
	Tx       orders.Transactor
	// Swallow, when set, makes the orders store's database skip writes
	// while reporting success (see Swallow); the cases that need it are
	// skipped without it.
	Swallow Swallow
	// Records, when set, is the orders store as the commands read and
	// load it; Outbox, when set, is its outbox, and the store writes an
	// event with each change. The cases that need them are skipped
	// without them.
	Records Records
	Outbox  events.Outbox
}

// holdFor is the reservation timeout of the suite's services: short, so
// that recovery cases need not wait long.
const holdFor = 50 * time.Millisecond

// Run runs the suite. newStores returns empty stores for each case.
func Run(t *testing.T, newStores func(t *testing.T) Stores) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s Stores)
	}{
		{"PlaceGet", testPlaceGet},
		{"GetNotFound", testGetNotFound},
		{"ListKeyset", testListKeyset},
		{"PlaceOutOfStock", testPlaceOutOfStock},
		{"PlaceNotFound", testPlaceNotFound},
		{"OrderIDsEnd", testOrderIDsEnd},
		{"LineIDsEnd", testLineIDsEnd},
		{"RollbackWhenWriteFails", testRollback},
		{"Update", testUpdate},
		{"UpdateOutOfStock", testUpdateOutOfStock},
		{"UpdateUnknownLine", testUpdateUnknownLine},
		{"Delete", testDelete},
		{"DeleteAfterProductDeleted", testDeleteAfterProductDeleted},
		{"StockStaysWithItsIncarnation", testStockStaysWithItsIncarnation},
		{"RecoverCrashBeforeCommit", testRecoverBeforeCommit},
		{"RecoverCrashAfterCommit", testRecoverAfterCommit},
		{"VoidReservationCannotCommit", testVoidReservation},
		{"SettleRacesCreate", testSettleRace},
		{"RecoverPendingRestock", testRecoverRestock},
		{"ParallelNoOversell", testParallelNoOversell},
		{"ConcurrentLedger", testConcurrentLedger},
		{"SwallowedDeleteOfTheOrder", func(t *testing.T, s Stores) { testSwallowedDelete(t, s, "DELETE", "orders") }},
		{"SwallowedDeleteOfItsLines", func(t *testing.T, s Stores) { testSwallowedDelete(t, s, "DELETE", "order_details") }},
		{"SwallowedRestockOfADelete", func(t *testing.T, s Stores) { testSwallowedDelete(t, s, "INSERT", "stock_returns") }},
		{"SwallowedLineUpdate", func(t *testing.T, s Stores) { testSwallowedReduce(t, s, "UPDATE", "order_details") }},
		{"SwallowedOrderUpdate", func(t *testing.T, s Stores) { testSwallowedReduce(t, s, "UPDATE", "orders") }},
		{"SwallowedRestockOfAReduction", func(t *testing.T, s Stores) { testSwallowedReduce(t, s, "INSERT", "stock_returns") }},
		{"SwallowedClaimOfARaise", testSwallowedClaimOfARaise},
		{"SwallowedClaimOfAnOrder", testSwallowedClaimOfAnOrder},
		{"RecordsRoundTrip", testRecordsRoundTrip},
		{"UpdateRewritesOnlyChangedLines", testUpdateRewritesOnlyChangedLines},
		{"TimestampsAgree", testTimestampsAgree},
		{"LinesGoWithTheirOrder", testLinesGoWithTheirOrder},
		{"Outbox", testOutbox},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStores(t)) })
	}
}

func service(s Stores) *orders.Service {
	return orders.NewService(s.Orders, s.Products, slog.New(slog.NewTextHandler(io.Discard, nil)),
		orders.Config{HoldFor: holdFor, Tx: s.Tx})
}

func create(t *testing.T, s Stores, id string, stock int64) {
	t.Helper()
	p := products.Product{ID: id, Title: "The " + id, PassengerCapacity: 10, MaximumSpeed: 5, InStock: stock}
	if err := s.Products.Create(t.Context(), p); err != nil {
		t.Fatalf("create product %s: %v", id, err)
	}
}

func stockOf(t *testing.T, s Stores, id string) int64 {
	t.Helper()
	p, err := s.Products.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("get product %s: %v", id, err)
	}
	return p.InStock
}

func price(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func nl(id, p string, q int64) orders.NewLine {
	return orders.NewLine{ProductID: id, Price: price(p), Quantity: q}
}

func countOrders(t *testing.T, s Stores) int {
	t.Helper()
	list, err := s.Orders.List(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func testPlaceGet(t *testing.T, s Stores) {
	ctx := t.Context()
	create(t, s, "a", 10)
	create(t, s, "b", 10)
	svc := service(s)
	placed, err := svc.Place(ctx, []orders.NewLine{
		nl("a", "100000.99", 1), nl("b", "9999999999999999.99", 2), nl("a", "0.1", 3),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc.Get(ctx, placed.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a 100000.99 1", "b 9999999999999999.99 2", "a 0.10 3"}
	if len(got.Lines) != len(want) {
		t.Fatalf("order has %d lines; want %d", len(got.Lines), len(want))
	}
	for i, l := range got.Lines {
		if s := fmt.Sprintf("%s %s %d", l.ProductID, l.Price.StringFixed(2), l.Quantity); s != want[i] {
			t.Errorf("line %d = %s; want %s", i, s, want[i])
		}
		if l.ID != placed.Lines[i].ID || (i > 0 && l.ID <= got.Lines[i-1].ID) {
			t.Errorf("line ids %v not ascending or not those Place returned", got.Lines)
		}
	}
	if a, b := stockOf(t, s, "a"), stockOf(t, s, "b"); a != 6 || b != 8 {
		t.Fatalf("stock = %d, %d; want 6, 8", a, b)
	}
	if exp, _ := s.Products.Expired(ctx, time.Now().Add(time.Hour), 10); len(exp) != 0 {
		t.Fatalf("reservations left after Place: %+v", exp)
	}
}

func testGetNotFound(t *testing.T, s Stores) {
	_, err := s.Orders.Get(t.Context(), 424242)
	var nf *orders.NotFoundError
	if !errors.As(err, &nf) || nf.ID != 424242 {
		t.Fatalf("Get error = %v; want NotFoundError{424242}", err)
	}
}

func testListKeyset(t *testing.T, s Stores) {
	ctx := t.Context()
	create(t, s, "a", 100)
	svc := service(s)
	var ids []int64
	for i := range 7 {
		o, err := svc.Place(ctx, []orders.NewLine{nl("a", "1.00", 1), nl("a", fmt.Sprint(i), 1)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID)
	}
	var got []int64
	after := int64(0)
	for {
		page, err := s.Orders.List(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page {
			if len(o.Lines) != 2 {
				t.Fatalf("listed order %d with %d lines; want 2", o.ID, len(o.Lines))
			}
			got = append(got, o.ID)
		}
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].ID
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("listed %v; want %v, oldest first", got, ids)
	}
}

func testPlaceOutOfStock(t *testing.T, s Stores) {
	ctx := t.Context()
	create(t, s, "a", 5)
	create(t, s, "b", 1)
	_, err := service(s).Place(ctx, []orders.NewLine{nl("a", "1", 2), nl("b", "1", 2)})
	var oos *products.OutOfStockError
	if !errors.As(err, &oos) || oos.ID != "b" {
		t.Fatalf("Place error = %v; want OutOfStockError naming b", err)
	}
	if a, b := stockOf(t, s, "a"), stockOf(t, s, "b"); a != 5 || b != 1 {
		t.Fatalf("stock = %d, %d; want 5, 1 (unchanged)", a, b)
	}
	if n := countOrders(t, s); n != 0 {
		t.Fatalf("%d orders written; want 0", n)
	}
}

func testPlaceNotFound(t *testing.T, s Stores) {
	ctx := t.Context()
	create(t, s, "a", 5)
	_, err := service(s).Place(ctx, []orders.NewLine{nl("a", "1", 2), nl("ghost", "1", 1)})
	var nf *products.NotFoundError
	if !errors.As(err, &nf) || nf.ID != "ghost" {
		t.Fatalf("Place error = %v; want NotFoundError naming ghost", err)
	}
	if got := stockOf(t, s, "a"); got != 5 {
		t.Fatalf("stock = %d; want 5 (unchanged)", got)
	}
	if n := countOrders(t, s); n != 0 {
		t.Fatalf("%d orders written; want 0", n)
	}
}

// idMover is a store whose id sequences can be moved on, as an import
// moves them past a dump's ids.
type idMover interface {
	MoveIDsPast(ctx context.Context, lastOrder, lastLine int64) error
}

// placeAtTheEnd moves the id sequences of s past lastOrder and lastLine
// and returns a function that places an order of lines and checks that
// it fails with ErrIDsExhausted, takes no stock and writes nothing.
func placeAtTheEnd(t *testing.T, s Stores, lastOrder, lastLine int64) (*orders.Service, func(lines ...orders.NewLine)) {
	t.Helper()
	ctx := t.Context()
	mover, ok := s.Orders.(idMover)
	if !ok {
		t.Fatalf("%T cannot move its id sequences", s.Orders)
	}
	if err := mover.MoveIDsPast(ctx, lastOrder, lastLine); err != nil {
		t.Fatal(err)
	}
	create(t, s, "a", 10)
	svc := service(s)
	return svc, func(lines ...orders.NewLine) {
		t.Helper()
		n, before := countOrders(t, s), stockOf(t, s, "a")
		if o, err := svc.Place(ctx, lines); !errors.Is(err, orders.ErrIDsExhausted) {
			t.Fatalf("Place past the last id = %+v, %v; want ErrIDsExhausted", o, err)
		}
		if got := stockOf(t, s, "a"); got != before {
			t.Fatalf("stock = %d; want %d: a refused order takes none", got, before)
		}
		if got := countOrders(t, s); got != n {
			t.Fatalf("%d orders; want %d: a refused order writes nothing", got, n)
		}
	}
}

// testOrderIDsEnd: order ids end at orders.MaxID, the API's range, in
// every store: the last one is handed out, read and deleted; then placing
// an order fails with ErrIDsExhausted.
func testOrderIDsEnd(t *testing.T, s Stores) {
	ctx := t.Context()
	svc, exhausted := placeAtTheEnd(t, s, orders.MaxID-1, 1000)
	placed, err := svc.Place(ctx, []orders.NewLine{nl("a", "1", 1)})
	if err != nil || placed.ID != orders.MaxID {
		t.Fatalf("Place of the last order id = %+v, %v; want order %d", placed, err, orders.MaxID)
	}
	if got, err := svc.Get(ctx, orders.MaxID); err != nil || len(got.Lines) != 1 {
		t.Fatalf("Get(%d) = %+v, %v", orders.MaxID, got, err)
	}
	exhausted(nl("a", "1", 1))
	if err := svc.Delete(ctx, orders.MaxID); err != nil {
		t.Fatalf("Delete(%d): %v", orders.MaxID, err)
	}
	exhausted(nl("a", "1", 1))
}

// testLineIDsEnd: line ids end at orders.MaxID too: once the last is
// handed out, an order is not written, whatever its order id.
func testLineIDsEnd(t *testing.T, s Stores) {
	ctx := t.Context()
	svc, exhausted := placeAtTheEnd(t, s, 1000, orders.MaxID-1)
	placed, err := svc.Place(ctx, []orders.NewLine{nl("a", "1", 1)})
	if err != nil || placed.Lines[0].ID != orders.MaxID {
		t.Fatalf("Place of the last line id = %+v, %v; want line %d", placed, err, orders.MaxID)
	}
	exhausted(nl("a", "1", 1))
	exhausted(nl("a", "1", 1), nl("a", "2", 1))
}

// failingCreate fails every Create, as a database failing between the
// reservation and the commit would.
type failingCreate struct{ orders.Store }

var errInjected = errors.New("injected write failure")

func (failingCreate) Create(context.Context, string, []orders.NewLine) (orders.Order, error) {
	return orders.Order{}, errInjected
}

func testRollback(t *testing.T, s Stores) {
	ctx := t.Context()
	create(t, s, "a", 5)
	svc := service(Stores{Orders: failingCreate{s.Orders}, Products: s.Products})
	if _, err := svc.Place(ctx, []orders.NewLine{nl("a", "1", 2)}); !errors.Is(err, errInjected) {
		t.Fatalf("Place error = %v; want the injected failure", err)
	}
	if got := stockOf(t, s, "a"); got != 5 {
		t.Fatalf("stock = %d; want 5: a failed write must give the stock back", got)
	}
	if n := countOrders(t, s); n != 0 {
		t.Fatalf("%d orders written; want 0", n)
	}
	if exp, _ := s.Products.Expired(ctx, time.Now().Add(time.Hour), 10); len(exp) != 0 {
		t.Fatalf("reservations left: %+v", exp)
	}
}

func testUpdate(t *testing.T, s Stores) {
	ctx := t.Context()
	create(t, s, "a", 10)
	create(t, s, "b", 10)
	svc := service(s)
	o, err := svc.Place(ctx, []orders.NewLine{nl("a", "1.00", 2), nl("b", "2.00", 5)})
	if err != nil {
		t.Fatal(err)
	}
	q3, q1, p := int64(3), int64(1), price("9.99")
	updated, err := svc.Update(ctx, o.ID, []orders.LineUpdate{
		{ID: o.Lines[0].ID, Quantity: &q3, Price: &p},
		{ID: o.Lines[1].ID, Quantity: &q1},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := svc.Get(ctx, o.ID)
	for _, x := range []orders.Order{updated, got} {
		if x.Lines[0].Quantity != 3 || x.Lines[0].Price.StringFixed(2) != "9.99" ||
			x.Lines[1].Quantity != 1 || x.Lines[1].Price.StringFixed(2) != "2.00" {
			t.Fatalf("order after Update = %+v", x)
		}
	}
	if a, b := stockOf(t, s, "a"), stockOf(t, s, "b"); a != 7 || b != 9 {
		t.Fatalf("stock = %d, %d; want 7 (10-3), 9 (10-1)", a, b)
	}
}

func testUpdateOutOfStock(t *testing.T, s Stores) {
	ctx := t.Context()
	create(t, s, "a", 3)
	svc := service(s)
	o, err := svc.Place(ctx, []orders.NewLine{nl("a", "1.00", 2)})
	if err != nil {
		t.Fatal(err)
	}
	q := int64(4) // needs 2 more, 1 left
	_, err = svc.Update(ctx, o.ID, []orders.LineUpdate{{ID: o.Lines[0].ID, Quantity: &q}})
	if !errors.Is(err, products.ErrOutOfStock) {
		t.Fatalf("Update error = %v; want ErrOutOfStock", err)
	}
	got, _ := svc.Get(ctx, o.ID)
	if got.Lines[0].Quantity != 2 || stockOf(t, s, "a") != 1 {
		t.Fatalf("after refused Update: quantity %d, stock %d; want 2, 1", got.Lines[0].Quantity, stockOf(t, s, "a"))
	}
}

func testUpdateUnknownLine(t *testing.T, s Stores) {
	ctx := t.Context()
	create(t, s, "a", 3)
	svc := service(s)
	o, err := svc.Place(ctx, []orders.NewLine{nl("a", "1.00", 1)})
	if err != nil {
		t.Fatal(err)
	}
	q := int64(2)
	_, err = svc.Update(ctx, o.ID, []orders.LineUpdate{{ID: o.Lines[0].ID + 1000, Quantity: &q}})
	if !errors.Is(err, orders.ErrLineNotFound) {
		t.Fatalf("Update error = %v; want ErrLineNotFound", err)
	}
	if _, err := svc.Update(ctx, 999999, []orders.LineUpdate{{ID: 1, Quantity: &q}}); !errors.Is(err, orders.ErrNotFound) {
		t.Fatalf("Update of a missing order error = %v; want ErrNotFound", err)
	}
	if got := stockOf(t, s, "a"); got != 2 {
		t.Fatalf("stock = %d; want 2", got)
	}
}

func testDelete(t *testing.T, s Stores) {
	ctx := t.Context()
	create(t, s, "a", 10)
	svc := service(s)
	o, err := svc.Place(ctx, []orders.NewLine{nl("a", "1.00", 2), nl("a", "1.00", 3)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, s, "a"); got != 10 {
		t.Fatalf("stock after Delete = %d; want 10", got)
	}
	if _, err := svc.Get(ctx, o.ID); !errors.Is(err, orders.ErrNotFound) {
		t.Fatalf("Get after Delete error = %v; want ErrNotFound", err)
	}
	if err := svc.Delete(ctx, o.ID); !errors.Is(err, orders.ErrNotFound) {
		t.Fatalf("second Delete error = %v; want ErrNotFound", err)
	}
	if pending, _ := s.Orders.PendingRestocks(ctx, time.Now().Add(time.Hour), 10); len(pending) != 0 {
		t.Fatalf("restocks left pending: %+v", pending)
	}
}

func testDeleteAfterProductDeleted(t *testing.T, s Stores) {
	ctx := t.Context()
	create(t, s, "a", 10)
	create(t, s, "b", 10)
	svc := service(s)
	o, err := svc.Place(ctx, []orders.NewLine{nl("a", "1.00", 2), nl("b", "1.00", 3)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Products.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, s, "a"); got != 10 {
		t.Fatalf("stock of a = %d; want 10", got)
	}
	if ok, _ := s.Products.Exists(ctx, "b"); ok {
		t.Fatal("deleting the order brought product b back")
	}
}

// testRecoverBeforeCommit: the process took the stock, then died before
// writing the order. The sweep gives the stock back.
func testRecoverBeforeCommit(t *testing.T, s Stores) {
	ctx := t.Context()
	create(t, s, "a", 10)
	r := products.Reservation{ID: "crashed-before-commit", Lines: []products.Line{{ProductID: "a", Quantity: 4}},
		Deadline: time.Now().Add(-time.Millisecond)}
	if _, err := s.Products.Reserve(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, s, "a"); got != 6 {
		t.Fatalf("stock after Reserve = %d; want 6", got)
	}
	svc := service(s)
	for range 2 { // a second sweep (another replica) changes nothing
		if err := svc.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		if got := stockOf(t, s, "a"); got != 10 {
			t.Fatalf("stock after Recover = %d; want 10", got)
		}
	}
	// The order can no longer commit on that reservation.
	if _, err := s.Orders.Create(ctx, r.ID, []orders.NewLine{nl("a", "1", 4)}); !errors.Is(err, orders.ErrReservationVoid) {
		t.Fatalf("Create on a voided reservation error = %v; want ErrReservationVoid", err)
	}
}

// testRecoverAfterCommit: the order committed, then the process died before
// forgetting the reservation. The sweep keeps the stock taken.
func testRecoverAfterCommit(t *testing.T, s Stores) {
	ctx := t.Context()
	create(t, s, "a", 10)
	r := products.Reservation{ID: "crashed-after-commit", Lines: []products.Line{{ProductID: "a", Quantity: 4}},
		Deadline: time.Now().Add(-time.Millisecond)}
	if _, err := s.Products.Reserve(ctx, r); err != nil {
		t.Fatal(err)
	}
	o, err := s.Orders.Create(ctx, r.ID, []orders.NewLine{nl("a", "1", 4)})
	if err != nil {
		t.Fatal(err)
	}
	if err := service(s).Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, s, "a"); got != 6 {
		t.Fatalf("stock after Recover = %d; want 6 (the order stands)", got)
	}
	if _, err := s.Orders.Get(ctx, o.ID); err != nil {
		t.Fatalf("order gone after Recover: %v", err)
	}
	if exp, _ := s.Products.Expired(ctx, time.Now().Add(time.Hour), 10); len(exp) != 0 {
		t.Fatalf("reservations left after Recover: %+v", exp)
	}
	id, committed, err := s.Orders.Settle(ctx, r.ID)
	if err != nil || !committed || id != o.ID {
		t.Fatalf("Settle = %d, %v, %v; want %d, true", id, committed, err, o.ID)
	}
}

func testVoidReservation(t *testing.T, s Stores) {
	ctx := t.Context()
	create(t, s, "a", 10)
	if _, committed, err := s.Orders.Settle(ctx, "never-claimed"); err != nil || committed {
		t.Fatalf("Settle = %v, %v; want void", committed, err)
	}
	if _, committed, err := s.Orders.Settle(ctx, "never-claimed"); err != nil || committed {
		t.Fatalf("second Settle = %v, %v; want void again", committed, err)
	}
	if _, err := s.Orders.Create(ctx, "never-claimed", []orders.NewLine{nl("a", "1", 1)}); !errors.Is(err, orders.ErrReservationVoid) {
		t.Fatalf("Create error = %v; want ErrReservationVoid", err)
	}
	if n := countOrders(t, s); n != 0 {
		t.Fatalf("%d orders written; want 0", n)
	}
}

// testRecoverRestock: an order was deleted, then the process died before
// giving the stock back. The sweep replays the restock, once.
func testRecoverRestock(t *testing.T, s Stores) {
	ctx := t.Context()
	create(t, s, "a", 10)
	svc := service(s)
	o, err := svc.Place(ctx, []orders.NewLine{nl("a", "1", 4)})
	if err != nil {
		t.Fatal(err)
	}
	c := orders.Change{Expect: o.Lines, RestockID: "restock-1", Restock: []products.Line{{ProductID: "a", Quantity: 4}}}
	if err := s.Orders.Delete(ctx, o.ID, c); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, s, "a"); got != 6 {
		t.Fatalf("stock before Recover = %d; want 6", got)
	}
	time.Sleep(2 * holdFor)
	for range 2 {
		if err := svc.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		if got := stockOf(t, s, "a"); got != 10 {
			t.Fatalf("stock after Recover = %d; want 10", got)
		}
	}
}

func testParallelNoOversell(t *testing.T, s Stores) {
	ctx := t.Context()
	const stock, clients = 100, 300
	create(t, s, "a", stock)
	svc := service(s)
	var ok, short atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			_, err := svc.Place(ctx, []orders.NewLine{nl("a", "100000.99", 1)})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, products.ErrOutOfStock):
				short.Add(1)
			default:
				t.Errorf("Place: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != stock || short.Load() != clients-stock {
		t.Fatalf("%d orders placed, %d out of stock; want %d and %d", ok.Load(), short.Load(), stock, clients-stock)
	}
	if got := stockOf(t, s, "a"); got != 0 {
		t.Fatalf("stock = %d; want 0", got)
	}
	if n := countOrders(t, s); n != stock {
		t.Fatalf("%d orders written; want %d", n, stock)
	}
}

// testConcurrentLedger places, updates and deletes orders at random from
// many goroutines; at the end, for every product, the stock plus the
// quantities of the orders that exist equals the initial stock, and no
// stock is negative.
func testConcurrentLedger(t *testing.T, s Stores) {
	ctx := t.Context()
	ids := []string{"a", "b", "c"}
	const initial = 40
	for _, id := range ids {
		create(t, s, id, initial)
	}
	svc := service(s)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			var mine []orders.Order
			for range 30 {
				switch op := rng.IntN(10); {
				case op < 5 || len(mine) == 0:
					n := 1 + rng.IntN(2)
					lines := make([]orders.NewLine, n)
					for i := range lines {
						lines[i] = nl(ids[rng.IntN(len(ids))], "10.00", int64(1+rng.IntN(4)))
					}
					o, err := svc.Place(ctx, lines)
					if err == nil {
						mine = append(mine, o)
					} else if !errors.Is(err, products.ErrOutOfStock) {
						t.Errorf("Place: %v", err)
					}
				case op < 8:
					o := mine[rng.IntN(len(mine))]
					q := int64(1 + rng.IntN(5))
					_, err := svc.Update(ctx, o.ID, []orders.LineUpdate{{ID: o.Lines[rng.IntN(len(o.Lines))].ID, Quantity: &q}})
					if err != nil && !errors.Is(err, products.ErrOutOfStock) {
						t.Errorf("Update: %v", err)
					}
				default:
					i := rng.IntN(len(mine))
					if err := svc.Delete(ctx, mine[i].ID); err != nil {
						t.Errorf("Delete: %v", err)
					}
					mine = append(mine[:i], mine[i+1:]...)
				}
			}
		})
	}
	wg.Wait()
	held := map[string]int64{}
	list, err := s.Orders.List(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list {
		for _, l := range o.Lines {
			held[l.ProductID] += l.Quantity
		}
	}
	for _, id := range ids {
		stock := stockOf(t, s, id)
		if stock < 0 || stock+held[id] != initial {
			t.Errorf("product %s: stock %d + ordered %d = %d; want %d", id, stock, held[id], stock+held[id], initial)
		}
	}
	if len(list) == 0 {
		t.Error("no orders survived; the test exercised nothing")
	}
}

// testSettleRace runs Create and Settle on the same reservations at once:
// each reservation ends either claimed by the order that was written or
// void with no order, never both.
func testSettleRace(t *testing.T, st Stores) {
	s := st.Orders
	ctx := t.Context()
	const n = 32
	type outcome struct {
		created   orders.Order
		createErr error
		settledID int64
		committed bool
		settleErr error
	}
	out := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		id := fmt.Sprintf("race-%d", i)
		wg.Go(func() {
			out[i].created, out[i].createErr = s.Create(ctx, id, []orders.NewLine{{ProductID: "a", Price: price("1"), Quantity: 1}})
		})
		wg.Go(func() {
			out[i].settledID, out[i].committed, out[i].settleErr = s.Settle(ctx, id)
		})
	}
	wg.Wait()
	written := 0
	for i, o := range out {
		if o.settleErr != nil {
			t.Fatalf("settle %d: %v", i, o.settleErr)
		}
		switch {
		case o.createErr == nil:
			written++
			if !o.committed || o.settledID != o.created.ID {
				t.Fatalf("reservation %d: order %d written but settled as %d, %v", i, o.created.ID, o.settledID, o.committed)
			}
		case errors.Is(o.createErr, orders.ErrReservationVoid):
			if o.committed {
				t.Fatalf("reservation %d: void create but settled as committed", i)
			}
		default:
			t.Fatalf("create %d: %v", i, o.createErr)
		}
	}
	if list, err := s.List(ctx, 0, 2*n); err != nil || len(list) != written {
		t.Fatalf("list: %d orders, %v; want %d", len(list), err, written)
	}
}

// testStockStaysWithItsIncarnation: a product deleted and created again
// under the same id is another product. Stock that an order took from the
// first never goes to the second: not when the order is deleted, not when
// a line is reduced, not when the recovery sweep replays a restock; and an
// order line of the first cannot take stock from the second.
func testStockStaysWithItsIncarnation(t *testing.T, s Stores) {
	ctx := t.Context()
	svc := service(s)
	recreate := func(id string) {
		t.Helper()
		if err := s.Products.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		create(t, s, id, 10)
	}

	create(t, s, "rc1", 10)
	deleted, err := svc.Place(ctx, []orders.NewLine{nl("rc1", "1", 3)})
	if err != nil {
		t.Fatal(err)
	}
	recreate("rc1")
	if err := svc.Delete(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, s, "rc1"); got != 10 {
		t.Fatalf("stock of the re-created rc1 after deleting an order of the old one = %d; want 10", got)
	}

	create(t, s, "rc2", 10)
	reduced, err := svc.Place(ctx, []orders.NewLine{nl("rc2", "1", 3)})
	if err != nil {
		t.Fatal(err)
	}
	recreate("rc2")
	one := int64(1)
	if _, err := svc.Update(ctx, reduced.ID, []orders.LineUpdate{{ID: reduced.Lines[0].ID, Quantity: &one}}); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, s, "rc2"); got != 10 {
		t.Fatalf("stock of the re-created rc2 after reducing a line of the old one = %d; want 10", got)
	}
	five := int64(5)
	_, err = svc.Update(ctx, reduced.ID, []orders.LineUpdate{{ID: reduced.Lines[0].ID, Quantity: &five}})
	if !errors.Is(err, products.ErrNotFound) {
		t.Fatalf("raising a line of a deleted incarnation: error %v; want ErrNotFound", err)
	}
	if got := stockOf(t, s, "rc2"); got != 10 {
		t.Fatalf("stock of the re-created rc2 after a refused raise = %d; want 10", got)
	}

	// The process dies after deleting the order, before giving the stock
	// back; the product is re-created before the sweep replays the restock.
	create(t, s, "rc3", 10)
	swept, err := svc.Place(ctx, []orders.NewLine{nl("rc3", "1", 4)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc.Get(ctx, swept.ID)
	if err != nil {
		t.Fatal(err)
	}
	give := []products.Line{{ProductID: "rc3", Quantity: 4, Incarnation: got.Lines[0].Incarnation}}
	if err := s.Orders.Delete(ctx, swept.ID, orders.Change{Expect: got.Lines, RestockID: "swept-1", Restock: give}); err != nil {
		t.Fatal(err)
	}
	recreate("rc3")
	time.Sleep(2 * holdFor)
	if err := svc.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, s, "rc3"); got != 10 {
		t.Fatalf("stock of the re-created rc3 after the sweep replayed a restock of the old one = %d; want 10", got)
	}
}

// swallowing places an order of 3 units of a product stocked 10, then
// makes the database swallow op on table.
func swallowing(t *testing.T, s Stores, op, table string) orders.Order {
	t.Helper()
	if s.Swallow == nil {
		t.Skip("these stores cannot make their database swallow writes (Stores.Swallow)")
	}
	create(t, s, "a", 10)
	o, err := service(s).Place(t.Context(), []orders.NewLine{nl("a", "1.00", 3)})
	if err != nil {
		t.Fatal(err)
	}
	s.Swallow(t, op, table)
	return o
}

// unchanged checks that the order still has its one line of 3 units, the
// product's stock is 7 and no restock is pending: a refused change left
// nothing behind.
func unchanged(t *testing.T, s Stores, o orders.Order) {
	t.Helper()
	ctx := t.Context()
	got, err := s.Orders.Get(ctx, o.ID)
	if err != nil || len(got.Lines) != 1 || got.Lines[0].Quantity != 3 {
		t.Errorf("order after the refused change: %+v, %v; want its line of 3 units", got, err)
	}
	if stock := stockOf(t, s, "a"); stock != 7 {
		t.Errorf("stock %d after the refused change; want 7 (nothing given back or taken)", stock)
	}
	if pending, err := s.Orders.PendingRestocks(ctx, time.Now().Add(time.Hour), 10); err != nil || len(pending) != 0 {
		t.Errorf("pending restocks %+v, %v; want none", pending, err)
	}
}

// testSwallowedDelete: when the database swallows a write of a delete
// (the order's row, its lines, the restock record), the delete fails,
// the order stays whole and its stock is not given back. (A rule ON
// DELETE TO orders DO INSTEAD NOTHING made DELETE /orders/{id} answer
// 204, give the stock back and keep the order.)
func testSwallowedDelete(t *testing.T, s Stores, op, table string) {
	o := swallowing(t, s, op, table)
	err := service(s).Delete(t.Context(), o.ID)
	if err == nil || errors.Is(err, orders.ErrNotFound) {
		t.Fatalf("Delete with %s on %s swallowed: %v; want an error (the order exists)", op, table, err)
	}
	unchanged(t, s, o)
}

// testSwallowedReduce: when the database swallows a write of a change
// that reduces a line (the line, the order's updated_at, the restock
// record), the change fails and nothing moves.
func testSwallowedReduce(t *testing.T, s Stores, op, table string) {
	o := swallowing(t, s, op, table)
	one := int64(1)
	if _, err := service(s).Update(t.Context(), o.ID, []orders.LineUpdate{{ID: o.Lines[0].ID, Quantity: &one}}); err == nil {
		t.Fatalf("Update with %s on %s swallowed succeeded; want an error", op, table)
	}
	unchanged(t, s, o)
}

// testSwallowedClaimOfARaise: a change that raises a line claims the
// reservation of the extra stock with the change; if the database
// swallows the claim, the change fails.
func testSwallowedClaimOfARaise(t *testing.T, s Stores) {
	o := swallowing(t, s, "INSERT", "stock_reservations")
	five := int64(5)
	if _, err := service(s).Update(t.Context(), o.ID, []orders.LineUpdate{{ID: o.Lines[0].ID, Quantity: &five}}); err == nil {
		t.Fatal("Update with the claim of its reservation swallowed succeeded; want an error")
	}
	got, err := s.Orders.Get(t.Context(), o.ID)
	if err != nil || got.Lines[0].Quantity != 3 {
		t.Fatalf("order after the refused raise: %+v, %v; want its line of 3 units", got, err)
	}
}

// testSwallowedClaimOfAnOrder: an order is written with the claim of its
// reservation; if the database swallows the claim, no order is placed.
func testSwallowedClaimOfAnOrder(t *testing.T, s Stores) {
	o := swallowing(t, s, "INSERT", "stock_reservations")
	if placed, err := service(s).Place(t.Context(), []orders.NewLine{nl("a", "1.00", 2)}); err == nil {
		t.Fatalf("Place with the claim swallowed placed order %d; want an error", placed.ID)
	}
	list, err := s.Orders.List(t.Context(), 0, 10)
	if err != nil || len(list) != 1 || list[0].ID != o.ID {
		t.Fatalf("orders after the refused Place: %+v, %v; want only order %d", list, err, o.ID)
	}
}

// Records is how the commands (export, import, seed) read and write an
// orders store: orders as records with every stored field, and the id
// sequences.
type Records interface {
	Records(ctx context.Context, after int64, limit int) ([]orders.Record, error)
	Load(ctx context.Context, batch []orders.Record) (orders.LoadResult, error)
	LastIDs(ctx context.Context) (order, line int64, err error)
	MoveIDsPast(ctx context.Context, lastOrder, lastLine int64) error
}

func needRecords(t *testing.T, s Stores) Records {
	t.Helper()
	if s.Records == nil {
		t.Skip("these stores have no records (Stores.Records)")
	}
	return s.Records
}

func recordsOf(t *testing.T, r Records) []orders.Record {
	t.Helper()
	got, err := r.Records(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func recordOf(t *testing.T, r Records, id int64) orders.Record {
	t.Helper()
	for _, rec := range recordsOf(t, r) {
		if rec.ID == id {
			return rec
		}
	}
	t.Fatalf("no record of order %d", id)
	return orders.Record{}
}

// testRecordsRoundTrip: Records returns what was placed, with every
// field; loading it again changes nothing; a record that differs is a
// conflict and writes nothing; a new record is written as it is, with
// its ids, and orders placed afterwards take ids past the moved
// sequences.
func testRecordsRoundTrip(t *testing.T, s Stores) {
	r := needRecords(t, s)
	ctx := t.Context()
	create(t, s, "a", 10)
	svc := service(s)
	o, err := svc.Place(ctx, []orders.NewLine{nl("a", "100000.99", 1), nl("a", "0.1", 2)})
	if err != nil {
		t.Fatal(err)
	}
	recs := recordsOf(t, r)
	if len(recs) != 1 || recs[0].ID != o.ID || len(recs[0].Lines) != 2 {
		t.Fatalf("records %+v; want order %d with its 2 lines", recs, o.ID)
	}
	for i, l := range recs[0].Lines {
		if l.Line.ID != o.Lines[i].ID || l.ProductID != "a" || l.Price.StringFixed(2) != o.Lines[i].Price.StringFixed(2) ||
			l.Quantity != o.Lines[i].Quantity || l.Incarnation != o.Lines[i].Incarnation || l.CreatedAt.IsZero() {
			t.Errorf("record line %d = %+v; want %+v", i, l, o.Lines[i])
		}
	}
	if res, err := r.Load(ctx, recs); err != nil || res.Created != 0 || res.Equal != 1 || res.Conflicts != nil {
		t.Fatalf("loading the records that are there = %+v, %v; want 1 equal", res, err)
	}
	differs := recs[0]
	differs.Lines = append([]orders.RecordLine(nil), differs.Lines...)
	differs.Lines[0].Quantity++
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	fresh := orders.Record{ID: o.ID + 100, CreatedAt: at, UpdatedAt: at.Add(time.Hour), Lines: []orders.RecordLine{
		{Line: orders.Line{ID: o.Lines[1].ID + 100, ProductID: "gone", Price: price("7.5"), Quantity: 3, Incarnation: "x"},
			CreatedAt: at, UpdatedAt: at.Add(time.Minute)},
	}}
	if res, err := r.Load(ctx, []orders.Record{fresh, differs}); err != nil || len(res.Conflicts) != 1 || res.Created != 0 {
		t.Fatalf("loading a record that differs = %+v, %v; want 1 conflict, nothing written", res, err)
	}
	if got := recordsOf(t, r); len(got) != 1 || !got[0].Equal(recs[0]) {
		t.Fatalf("records after a refused load: %+v", got)
	}
	if res, err := r.Load(ctx, []orders.Record{fresh}); err != nil || res.Created != 1 || res.Conflicts != nil {
		t.Fatalf("loading a new record = %+v, %v; want it created", res, err)
	}
	if got := recordOf(t, r, fresh.ID); !got.Equal(fresh) {
		t.Fatalf("loaded record reads back as %+v; want %+v", got, fresh)
	}
	if err := r.MoveIDsPast(ctx, fresh.ID+5, fresh.Lines[0].ID+5); err != nil {
		t.Fatal(err)
	}
	lastOrder, lastLine, err := r.LastIDs(ctx)
	if err != nil || lastOrder != fresh.ID+5 || lastLine != fresh.Lines[0].ID+5 {
		t.Fatalf("LastIDs = %d, %d, %v; want %d, %d", lastOrder, lastLine, err, fresh.ID+5, fresh.Lines[0].ID+5)
	}
	next, err := svc.Place(ctx, []orders.NewLine{nl("a", "1", 1)})
	if err != nil || next.ID != lastOrder+1 || next.Lines[0].ID != lastLine+1 {
		t.Fatalf("order placed after the load = %+v, %v; want order %d, line %d", next, err, lastOrder+1, lastLine+1)
	}
}

// loadOld loads an order of two lines of product "a" (which holds
// stock 10) written long ago, as an import would, and returns its record.
func loadOld(t *testing.T, s Stores, r Records) orders.Record {
	t.Helper()
	create(t, s, "a", 10)
	p, err := s.Products.Get(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	old := orders.Record{ID: 50, CreatedAt: at, UpdatedAt: at, Lines: []orders.RecordLine{
		{Line: orders.Line{ID: 70, ProductID: "a", Price: price("1.00"), Quantity: 1, Incarnation: p.Incarnation}, CreatedAt: at, UpdatedAt: at},
		{Line: orders.Line{ID: 71, ProductID: "a", Price: price("2.00"), Quantity: 1, Incarnation: p.Incarnation}, CreatedAt: at, UpdatedAt: at},
	}}
	if res, err := r.Load(t.Context(), []orders.Record{old}); err != nil || res.Created != 1 {
		t.Fatalf("load = %+v, %v", res, err)
	}
	if err := r.MoveIDsPast(t.Context(), old.ID, 71); err != nil {
		t.Fatal(err)
	}
	return old
}

// testUpdateRewritesOnlyChangedLines: an update writes the lines it
// changes, with the order's updated_at; a line it names but leaves as it
// was, and a line it does not name, keep their updated_at.
func testUpdateRewritesOnlyChangedLines(t *testing.T, s Stores) {
	r := needRecords(t, s)
	old := loadOld(t, s, r)
	p, same := price("5.00"), price("2.00")
	if _, err := service(s).Update(t.Context(), old.ID, []orders.LineUpdate{
		{ID: 70, Price: &p}, {ID: 71, Price: &same},
	}); err != nil {
		t.Fatal(err)
	}
	got := recordOf(t, r, old.ID)
	if !got.UpdatedAt.After(old.UpdatedAt) || !got.CreatedAt.Equal(old.CreatedAt) {
		t.Errorf("order timestamps after the update: created %s, updated %s; want created %s, updated later",
			got.CreatedAt, got.UpdatedAt, old.CreatedAt)
	}
	if l := got.Lines[0]; l.Price.StringFixed(2) != "5.00" || !l.UpdatedAt.Equal(got.UpdatedAt) || !l.CreatedAt.Equal(old.CreatedAt) {
		t.Errorf("changed line %+v; want price 5.00, updated_at %s (the order's)", l, got.UpdatedAt)
	}
	if l := got.Lines[1]; !l.UpdatedAt.Equal(old.Lines[1].UpdatedAt) {
		t.Errorf("line the update left as it was has updated_at %s; want %s (not rewritten)", l.UpdatedAt, old.Lines[1].UpdatedAt)
	}
}

// testTimestampsAgree: an order placed has one time: its created_at and
// updated_at and those of every line are the same; an update gives the
// order and the lines it changes one new updated_at.
func testTimestampsAgree(t *testing.T, s Stores) {
	r := needRecords(t, s)
	ctx := t.Context()
	create(t, s, "a", 10)
	svc := service(s)
	o, err := svc.Place(ctx, []orders.NewLine{nl("a", "1", 1), nl("a", "2", 1), nl("a", "3", 1)})
	if err != nil {
		t.Fatal(err)
	}
	placed := recordOf(t, r, o.ID)
	if !placed.UpdatedAt.Equal(placed.CreatedAt) {
		t.Errorf("order placed: created %s, updated %s; want one time", placed.CreatedAt, placed.UpdatedAt)
	}
	for i, l := range placed.Lines {
		if !l.CreatedAt.Equal(placed.CreatedAt) || !l.UpdatedAt.Equal(placed.CreatedAt) {
			t.Errorf("line %d placed: created %s, updated %s; want the order's %s", i, l.CreatedAt, l.UpdatedAt, placed.CreatedAt)
		}
	}
	p := price("9")
	for i := range 2 {
		if _, err := svc.Update(ctx, o.ID, []orders.LineUpdate{{ID: o.Lines[i].ID, Price: &p}}); err != nil {
			t.Fatal(err)
		}
	}
	got := recordOf(t, r, o.ID)
	if l := got.Lines[1]; !l.UpdatedAt.Equal(got.UpdatedAt) {
		t.Errorf("line changed last: updated %s; want the order's %s", l.UpdatedAt, got.UpdatedAt)
	}
	if l := got.Lines[2]; !l.UpdatedAt.Equal(placed.UpdatedAt) {
		t.Errorf("line never changed: updated %s; want %s", l.UpdatedAt, placed.UpdatedAt)
	}
}

// testLinesGoWithTheirOrder: deleting an order deletes its lines: their
// ids are free for an order loaded afterwards, and no record names them.
func testLinesGoWithTheirOrder(t *testing.T, s Stores) {
	r := needRecords(t, s)
	old := loadOld(t, s, r)
	if err := service(s).Delete(t.Context(), old.ID); err != nil {
		t.Fatal(err)
	}
	if got := recordsOf(t, r); len(got) != 0 {
		t.Fatalf("records after the delete: %+v; want none", got)
	}
	again := old
	again.ID = old.ID + 1
	if res, err := r.Load(t.Context(), []orders.Record{again}); err != nil || res.Created != 1 || res.Conflicts != nil {
		t.Fatalf("loading an order with the deleted order's line ids = %+v, %v; want it created (the lines went with their order)", res, err)
	}
}

func needOutbox(t *testing.T, s Stores) events.Outbox {
	t.Helper()
	if s.Outbox == nil {
		t.Skip("these stores have no outbox (Stores.Outbox)")
	}
	return s.Outbox
}

// testOutbox: each change writes its event, published in order, once;
// the backlog counts what waits; published events are purged.
func testOutbox(t *testing.T, s Stores) {
	box := needOutbox(t, s)
	ctx := t.Context()
	create(t, s, "a", 10)
	svc := service(s)
	o, err := svc.Place(ctx, []orders.NewLine{nl("a", "1", 1)})
	if err != nil {
		t.Fatal(err)
	}
	two := int64(2)
	if _, err := svc.Update(ctx, o.ID, []orders.LineUpdate{{ID: o.Lines[0].ID, Quantity: &two}}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	if n, oldest, err := box.EventBacklog(ctx); err != nil || n != 3 || oldest.IsZero() {
		t.Fatalf("backlog = %d, %s, %v; want 3 events", n, oldest, err)
	}
	var got []events.Event
	publish := func(_ context.Context, evs []events.Event) (int, error) {
		got = append(got, evs...)
		return len(evs), nil
	}
	for range 10 {
		n, err := box.DispatchEvents(ctx, 100, publish)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	want := []string{events.OrderCreated, events.OrderUpdated, events.OrderDeleted}
	if len(got) != len(want) {
		t.Fatalf("published %+v; want %v", got, want)
	}
	for i, e := range got {
		if e.Type != want[i] || e.OrderID != o.ID || e.SchemaVersion != events.SchemaVersion || e.MessageID == "" || len(e.Body) == 0 {
			t.Errorf("event %d = %+v; want %s of order %d", i, e, want[i], o.ID)
		}
	}
	if n, _, err := box.EventBacklog(ctx); err != nil || n != 0 {
		t.Fatalf("backlog after publishing = %d, %v; want 0", n, err)
	}
	if n, err := box.PurgeEvents(ctx, time.Now().Add(time.Hour)); err != nil || n != 3 {
		t.Fatalf("purge = %d, %v; want the 3 published events", n, err)
	}
}
