package ordersrpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/shopspring/decimal"
	"go.uber.org/goleak"

	ordersv1 "github.com/airshipltd/airship/api/airship/orders/v1"
	"github.com/airshipltd/airship/api/airship/orders/v1/ordersv1connect"
	"github.com/airshipltd/airship/gateway"
	"github.com/airshipltd/airship/internal/errs"
	"github.com/airshipltd/airship/internal/rpc"
	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/orders/ordersrpc"
	"github.com/airshipltd/airship/orders/orderstest"
	"github.com/airshipltd/airship/orders/sqlstore"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/redisstore"
	"github.com/airshipltd/airship/transfer/dump"
)

// TestMain fails the package if a test leaves goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// A server that answered before reading a large body waits 500 ms
		// for the client to close (net/http), after the test is over.
		goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

// openServer serves a module to every caller, as module_auth optional
// does to callers without a token (the module token is the split
// deployment's, tested in app).
var openServer = rpc.Server{
	Ready: func(context.Context) error { return nil },
	Auth:  rpc.Auth{Optional: true},
	Log:   slog.New(slog.DiscardHandler),
}

// module is the orders module served behind a real listener, on
// PostgreSQL and its stock in Redis.
type module struct {
	url   string
	store *sqlstore.Store
	stock *redisstore.Store
	hc    *http.Client
}

func serve(t *testing.T) module {
	t.Helper()
	rdb, prefix := testbackend.Redis(t)
	m := module{store: sqlstore.NewPostgres(testbackend.Postgres(t)), stock: redisstore.New(rdb, prefix)}
	svc := orders.NewService(m.store, m.stock, slog.New(slog.DiscardHandler), orders.Config{HoldFor: time.Minute})
	path, h := ordersrpc.NewHandler(svc)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rpc.Mux(openServer, map[string]http.Handler{path: h}), Protocols: rpc.Protocols()}
	go srv.Serve(ln)
	m.hc = rpc.NewHTTPClient(time.Second, 4)
	t.Cleanup(func() {
		srv.Close()
		m.hc.CloseIdleConnections()
		svc.Wait()
	})
	m.url = "http://" + ln.Addr().String()
	return m
}

// TestModuleRefusesWhatTheAPIRefuses: a caller of the orders module's port
// other than the gateway is held to the same rules as the API's requests
// (lines, prices, quantities, product ids, idempotency keys): every call
// that breaks one is refused as invalid (400 VALIDATION_ERROR at the
// gateway), and no order is written and no stock moves.
func TestModuleRefusesWhatTheAPIRefuses(t *testing.T) {
	ctx := t.Context()
	m := serve(t)
	c := ordersrpc.NewClient(m.hc, m.url, rpc.ClientOptions(nil)...)
	if err := m.stock.Create(ctx, products.Product{ID: "the_odyssey", Title: "The Odyssey", InStock: 10}); err != nil {
		t.Fatal(err)
	}
	placed, err := c.Place(ctx, []orders.NewLine{{ProductID: "the_odyssey", Price: decimal.RequireFromString("1.50"), Quantity: 1}})
	if err != nil {
		t.Fatal(err)
	}

	// A raw client, to send what the client of the orders module would
	// never write (a price as text).
	raw := ordersv1connect.NewOrderServiceClient(m.hc, m.url)
	line := func(product, price string, quantity int64) *ordersv1.NewLine {
		return &ordersv1.NewLine{ProductId: product, Price: price, Quantity: quantity}
	}
	ok := line("the_odyssey", "1.00", 1)
	place := func(lines ...*ordersv1.NewLine) func() error {
		return func() error {
			_, err := raw.Place(ctx, connect.NewRequest(&ordersv1.PlaceRequest{Lines: lines}))
			return err
		}
	}
	placeOnce := func(key string, lines ...*ordersv1.NewLine) func() error {
		return func() error {
			_, err := raw.PlaceOnce(ctx, connect.NewRequest(&ordersv1.PlaceOnceRequest{Key: key, Lines: lines}))
			return err
		}
	}
	str := func(s string) *string { return &s }
	num := func(n int64) *int64 { return &n }
	update := func(id int64, updates ...*ordersv1.LineUpdate) func() error {
		return func() error {
			_, err := raw.Update(ctx, connect.NewRequest(&ordersv1.UpdateRequest{Id: id, Updates: updates}))
			return err
		}
	}
	lineID := placed.Lines[0].ID
	many := make([]*ordersv1.NewLine, orders.MaxLines+1)
	for i := range many {
		many[i] = ok
	}
	calls := []struct {
		name string
		call func() error
		kind errs.Kind
	}{
		{"place no lines", place(), errs.Invalid},
		{"place 101 lines", place(many...), errs.Invalid},
		{"place price 0.004", place(line("the_odyssey", "0.004", 1)), errs.Invalid},
		{"place negative price", place(line("the_odyssey", "-1.00", 1)), errs.Invalid},
		{"place price of 17 digits", place(line("the_odyssey", "10000000000000000", 1)), errs.Invalid},
		{"place price with an exponent", place(line("the_odyssey", "1e2", 1)), errs.Invalid},
		{"place negative quantity", place(line("the_odyssey", "1.00", -3)), errs.Invalid},
		{"place quantity 0", place(line("the_odyssey", "1.00", 0)), errs.Invalid},
		{"place quantity too large", place(line("the_odyssey", "1.00", products.MaxCount+1)), errs.Invalid},
		{"place empty product id", place(line("", "1.00", 1)), errs.Invalid},
		{"place product id a}b{c", place(line("a}b{c", "1.00", 1)), errs.Invalid},
		{"place second line bad", place(ok, line("the_odyssey", "1.001", 1)), errs.Invalid},
		{"place once empty key", placeOnce("", ok), errs.Invalid},
		{"place once key with a space", placeOnce("a key", ok), errs.Invalid},
		{"place once key too long", placeOnce(strings.Repeat("k", orders.MaxKeyLength+1), ok), errs.Invalid},
		{"place once no lines", placeOnce("k1"), errs.Invalid},
		{"place once price 0.004", placeOnce("k2", line("the_odyssey", "0.004", 1)), errs.Invalid},
		{"update price 0.004", update(placed.ID, &ordersv1.LineUpdate{Id: lineID, Price: str("0.004")}), errs.Invalid},
		{"update negative quantity", update(placed.ID, &ordersv1.LineUpdate{Id: lineID, Quantity: num(-1)}), errs.Invalid},
		{"update sets nothing", update(placed.ID, &ordersv1.LineUpdate{Id: lineID}), errs.Invalid},
		{"update a line twice", update(placed.ID, &ordersv1.LineUpdate{Id: lineID, Quantity: num(2)},
			&ordersv1.LineUpdate{Id: lineID, Quantity: num(3)}), errs.Invalid},
		{"update no lines", update(placed.ID), errs.Invalid},
		{"update order -1", update(-1, &ordersv1.LineUpdate{Id: lineID, Quantity: num(2)}), errs.OrderNotFound},
		{"get order 0", func() error { _, err := c.Get(ctx, 0); return err }, errs.OrderNotFound},
		{"delete order -1", func() error { return c.Delete(ctx, -1) }, errs.OrderNotFound},
		{"delete order past the last id", func() error { return c.Delete(ctx, products.MaxCount+1) }, errs.OrderNotFound},
		{"list limit 0", func() error { _, err := c.List(ctx, 0, 0); return err }, errs.Invalid},
		{"list limit 100000", func() error { _, err := c.List(ctx, 0, 100000); return err }, errs.Invalid},
		{"list after -5", func() error { _, err := c.List(ctx, -5, 10); return err }, errs.Invalid},
	}
	for _, call := range calls {
		err := call.call()
		var ce *connect.Error
		if errors.As(err, &ce) { // a raw client's error: as the client reads it
			if call.kind == errs.Invalid && ce.Code() != connect.CodeInvalidArgument {
				t.Errorf("%s: code %v; want InvalidArgument", call.name, ce.Code())
			}
			err = rpc.ClientError(err, orders.ErrUnavailable)
		}
		if got := errs.Of(err); got != call.kind {
			t.Errorf("%s: %v (kind %q); want it refused as %s", call.name, err, got, call.kind)
		}
	}

	list, err := m.store.List(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || len(list[0].Lines) != 1 || list[0].Lines[0].Quantity != 1 || !list[0].Lines[0].Price.Equal(decimal.RequireFromString("1.50")) {
		t.Errorf("after the refused calls the orders are %+v; want the one order placed, unchanged", list)
	}
	if p, err := m.stock.Get(ctx, "the_odyssey"); err != nil || p.InStock != 9 {
		t.Errorf("after the refused calls the_odyssey has %d in stock (%v); want 9", p.InStock, err)
	}

	// What the API takes, the module takes: the largest values included.
	if _, err := c.Place(ctx, []orders.NewLine{{ProductID: "the_odyssey", Price: decimal.RequireFromString("9999999999999999.99"), Quantity: 9}}); err != nil {
		t.Errorf("place the largest price: %v", err)
	}
	// (the_odyssey is sold out now: the refusal is the key's outcome)
	if _, err := c.PlaceOnce(ctx, strings.Repeat("k", orders.MaxKeyLength),
		[]orders.NewLine{{ProductID: "the_odyssey", Price: decimal.Zero, Quantity: 1}}); errs.Of(err) != errs.OutOfStock {
		t.Errorf("place once with the longest key and price 0: %v; want out of stock", err)
	}
	if _, err := c.List(ctx, 0, orders.MaxPage+1); err != nil {
		t.Errorf("list one more than a page (what the gateway asks): %v", err)
	}
}

// TestLineRulesAgree: the order-line rules are the orders module's
// (orders.LineProblems), and the three edges that take lines from outside
// hold them to it with the same messages: the REST API, the module's
// Connect server and the dump reader (each names the line its own way:
// order_details[0]. and lines[0].).
func TestLineRulesAgree(t *testing.T) {
	m := serve(t)
	raw := ordersv1connect.NewOrderServiceClient(m.hc, m.url)
	api := gateway.New(nil, nil, func(context.Context) error { return nil },
		gateway.Config{BodyLimit: 1 << 20, RequestTimeout: time.Second}, slog.New(slog.DiscardHandler))

	for _, l := range []struct {
		product, price string
		quantity       int64
	}{
		{"", "1.00", 1},
		{"a}b{c", "1.00", 1},
		{strings.Repeat("x", 300), "1.00", 1},
		{"x", "0.004", 1},
		{"x", "-1.00", 1},
		{"x", "1e2", 1},
		{"x", "10000000000000000.00", 1},
		{"x", "1.00", 0},
		{"x", "1.00", -3},
		{"x", "1.00", products.MaxCount + 1},
		{"", "0.001", 0},
	} {
		name := fmt.Sprintf("%q %q %d", l.product, l.price, l.quantity)

		// The API.
		body := fmt.Sprintf(`{"order_details": [{"product_id": %q, "price": %q, "quantity": %d}]}`, l.product, l.price, l.quantity)
		req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		var apiErr struct{ Error, Message string }
		if err := json.Unmarshal(rec.Body.Bytes(), &apiErr); err != nil || rec.Code != http.StatusBadRequest || apiErr.Error != "VALIDATION_ERROR" {
			t.Errorf("%s: the API answered %d %s; want 400 VALIDATION_ERROR", name, rec.Code, rec.Body)
			continue
		}
		want := problemsOf(apiErr.Message, "order_details[0].")

		// The module.
		_, err := raw.Place(t.Context(), connect.NewRequest(&ordersv1.PlaceRequest{
			Lines: []*ordersv1.NewLine{{ProductId: l.product, Price: l.price, Quantity: l.quantity}}}))
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument {
			t.Errorf("%s: the module answered %v; want InvalidArgument", name, err)
		} else if got := problemsOf(ce.Message(), "order_details[0]."); !slices.Equal(got, want) {
			t.Errorf("%s: the module says %q; the API %q", name, got, want)
		}

		// The dump reader.
		const at = `"created_at":"2023-11-14T22:13:20.000Z","updated_at":"2023-11-14T22:13:20.000Z"`
		text := `{"airship_dump":{"version":2}}` + "\n" +
			fmt.Sprintf(`{"order":{"id":1,%s,"lines":[{"id":1,"product_id":%q,"price":%q,"quantity":%d,"incarnation":"1",%s}]}}`,
				at, l.product, l.price, l.quantity, at) + "\n"
		rd, err := dump.NewReader(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		_, err = rd.Next()
		if err == nil {
			t.Errorf("%s: the dump reader took the line", name)
		} else if got := problemsOf(err.Error(), "lines[0]."); !slices.Equal(got, want) {
			t.Errorf("%s: the dump reader says %q; the API %q", name, got, want)
		}
	}
}

// problemsOf returns the "field: problem" parts of msg that follow
// prefix, each up to the next "; ".
func problemsOf(msg, prefix string) []string {
	var out []string
	for _, part := range strings.Split(msg, prefix)[1:] {
		p, _, _ := strings.Cut(part, "; ")
		out = append(out, p)
	}
	return out
}

// TestModulePort: the orders module's port, the gateway's Orders, keeps
// its contract in this process (the service) and over Connect (the
// client, the server and the service behind it).
func TestModulePort(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		orderstest.RunModule(t, func(t *testing.T) orderstest.Module {
			rdb, prefix := testbackend.Redis(t)
			stock := redisstore.New(rdb, prefix)
			svc := orders.NewService(sqlstore.NewPostgres(testbackend.Postgres(t)), stock, slog.New(slog.DiscardHandler), orders.Config{HoldFor: time.Minute})
			t.Cleanup(svc.Wait)
			return orderstest.Module{Orders: svc, Stock: stock}
		})
	})
	t.Run("connect", func(t *testing.T) {
		orderstest.RunModule(t, func(t *testing.T) orderstest.Module {
			m := serve(t)
			return orderstest.Module{Orders: ordersrpc.NewClient(m.hc, m.url, rpc.ClientOptions(nil)...), Stock: m.stock}
		})
	})
}
