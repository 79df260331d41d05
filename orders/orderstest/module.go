package orderstest

import (
	"testing"

	"github.com/airshipltd/airship/gateway"
	"github.com/airshipltd/airship/internal/errs"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// Orders is the orders module as its callers use it, the gateway's port:
// the service in this process, or a client of it in another.
type Orders = gateway.Orders

// Module is an orders module under test, and the products store it
// takes stock from (stock moves synchronously: no commit in the
// background).
type Module struct {
	Orders Orders
	Stock  products.Store
}

// RunModule runs the contract suite of the orders module's port: what
// the gateway relies on, whichever side of a wire the module is on.
func RunModule(t *testing.T, newModule func(t *testing.T) Module) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, m Module)
	}{
		{"Lifecycle", testModuleLifecycle},
		{"Refusals", testModuleRefusals},
		{"PlaceOnce", testModulePlaceOnce},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newModule(t)) })
	}
}

func moduleStock(t *testing.T, m Module, id string) int64 {
	t.Helper()
	return stockOf(t, Stores{Products: m.Stock}, id)
}

func mustCreate(t *testing.T, m Module, id string, stock int64) {
	t.Helper()
	if err := m.Stock.Create(t.Context(), products.Product{ID: id, Title: id, InStock: stock}); err != nil {
		t.Fatal(err)
	}
}

// testModuleLifecycle: an order placed, read, listed, changed and
// deleted, with the stock following each step.
func testModuleLifecycle(t *testing.T, m Module) {
	ctx := t.Context()
	mustCreate(t, m, "hindenburg", 10)
	placed, err := m.Orders.Place(ctx, []orders.NewLine{{ProductID: "hindenburg", Price: price("100000.99"), Quantity: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(placed.Lines) != 1 || placed.Lines[0].Quantity != 2 || !placed.Lines[0].Price.Equal(price("100000.99")) {
		t.Fatalf("placed %+v", placed)
	}
	if n := moduleStock(t, m, "hindenburg"); n != 8 {
		t.Errorf("stock after placing 2 of 10: %d", n)
	}
	got, err := m.Orders.Get(ctx, placed.ID)
	if err != nil || got.ID != placed.ID || len(got.Lines) != 1 || got.Lines[0].ID != placed.Lines[0].ID {
		t.Fatalf("get %d: %+v, %v", placed.ID, got, err)
	}
	list, err := m.Orders.List(ctx, placed.ID-1, 10)
	if err != nil || len(list) != 1 || list[0].ID != placed.ID {
		t.Fatalf("list after %d: %+v, %v", placed.ID-1, list, err)
	}
	five := int64(5)
	changed, err := m.Orders.Update(ctx, placed.ID, []orders.LineUpdate{{ID: placed.Lines[0].ID, Quantity: &five}})
	if err != nil || changed.Lines[0].Quantity != 5 {
		t.Fatalf("update to 5: %+v, %v", changed, err)
	}
	if n := moduleStock(t, m, "hindenburg"); n != 5 {
		t.Errorf("stock after changing the line to 5: %d", n)
	}
	if err := m.Orders.Delete(ctx, placed.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Orders.Get(ctx, placed.ID); errs.Of(err) != errs.OrderNotFound {
		t.Errorf("get a deleted order: %v; want order_not_found", err)
	}
	if n := moduleStock(t, m, "hindenburg"); n != 10 {
		t.Errorf("stock after deleting the order: %d; want 10", n)
	}
}

// testModuleRefusals: what the module refuses, of which kind, and that a
// refusal moves no stock.
func testModuleRefusals(t *testing.T, m Module) {
	ctx := t.Context()
	mustCreate(t, m, "graf_zeppelin", 3)
	one := []orders.NewLine{{ProductID: "graf_zeppelin", Price: price("1.00"), Quantity: 1}}
	placed, err := m.Orders.Place(ctx, one)
	if err != nil {
		t.Fatal(err)
	}
	nine, lineID := int64(9), placed.Lines[0].ID
	for _, c := range []struct {
		name string
		err  error
		want errs.Kind
	}{
		{"place more than the stock", second(m.Orders.Place(ctx, []orders.NewLine{{ProductID: "graf_zeppelin", Price: price("1.00"), Quantity: 3}})), errs.OutOfStock},
		{"place an unknown product", second(m.Orders.Place(ctx, []orders.NewLine{{ProductID: "no_such_ship", Price: price("1.00"), Quantity: 1}})), errs.ProductNotFound},
		{"place no lines", second(m.Orders.Place(ctx, nil)), errs.Invalid},
		{"get an unknown order", second(m.Orders.Get(ctx, placed.ID+1000)), errs.OrderNotFound},
		{"update beyond the stock", second(m.Orders.Update(ctx, placed.ID, []orders.LineUpdate{{ID: lineID, Quantity: &nine}})), errs.OutOfStock},
		{"update an unknown line", second(m.Orders.Update(ctx, placed.ID, []orders.LineUpdate{{ID: lineID + 1000, Quantity: &nine}})), errs.LineNotFound},
		{"delete an unknown order", m.Orders.Delete(ctx, placed.ID+1000), errs.OrderNotFound},
	} {
		if got := errs.Of(c.err); got != c.want {
			t.Errorf("%s: %v (kind %q); want %s", c.name, c.err, got, c.want)
		}
	}
	if n := moduleStock(t, m, "graf_zeppelin"); n != 2 {
		t.Errorf("stock after the refusals: %d; want 2", n)
	}
}

// testModulePlaceOnce: a key places one order; the same key and lines
// replay it, other lines under the key are refused.
func testModulePlaceOnce(t *testing.T, m Module) {
	ctx := t.Context()
	mustCreate(t, m, "r101", 5)
	lines := []orders.NewLine{{ProductID: "r101", Price: price("2.50"), Quantity: 1}}
	first, err := m.Orders.PlaceOnce(ctx, "key-1", lines)
	if err != nil || first.Replayed {
		t.Fatalf("first place once: %+v, %v", first, err)
	}
	again, err := m.Orders.PlaceOnce(ctx, "key-1", lines)
	if err != nil || !again.Replayed || again.OrderID != first.OrderID {
		t.Fatalf("the same key and lines again: %+v, %v; want order %d replayed", again, err, first.OrderID)
	}
	other := []orders.NewLine{{ProductID: "r101", Price: price("2.50"), Quantity: 2}}
	if _, err := m.Orders.PlaceOnce(ctx, "key-1", other); errs.Of(err) != errs.KeyReused {
		t.Errorf("the key with other lines: %v; want idempotency_key_reused", err)
	}
	if n := moduleStock(t, m, "r101"); n != 4 {
		t.Errorf("stock after one order placed once: %d; want 4", n)
	}
}

func second[T any](_ T, err error) error { return err }
