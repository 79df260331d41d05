package productsrpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.uber.org/goleak"

	productsv1 "github.com/airshipltd/airship/api/airship/products/v1"
	"github.com/airshipltd/airship/api/airship/products/v1/productsv1connect"
	"github.com/airshipltd/airship/internal/errs"
	"github.com/airshipltd/airship/internal/rpc"
	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/orders/orderstest"
	"github.com/airshipltd/airship/orders/sqlstore"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/productsrpc"
	"github.com/airshipltd/airship/products/productstest"
	"github.com/airshipltd/airship/products/redisstore"
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

// serve runs the products module's handler on store behind a real
// listener and returns a client of it.
func serve(t *testing.T, store products.Store, opts ...func(*http.Server)) *productsrpc.Client {
	t.Helper()
	// Dials get 10 s: the suites' storms open hundreds of connections at
	// once, which a busy machine accepts slowly.
	hc := rpc.NewHTTPClient(10*time.Second, 64)
	t.Cleanup(hc.CloseIdleConnections)
	return productsrpc.NewClient(hc, serveURL(t, store, opts...), rpc.ClientOptions(nil)...)
}

// serveURL runs the products module's handler on store behind a real
// listener and returns its URL.
func serveURL(t *testing.T, store products.Store, opts ...func(*http.Server)) string {
	t.Helper()
	path, h := productsrpc.NewHandler(store)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rpc.Mux(openServer, map[string]http.Handler{path: h}), Protocols: rpc.Protocols()}
	for _, o := range opts {
		o(srv)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// The products contract suite, unchanged, through the remote client: the
// module's handler on the Redis store behind a real listener. (The
// embedded store cannot be split: it shares one file and one transaction
// with the orders.)
func TestRemoteRedisStore(t *testing.T) {
	productstest.Run(t, func(t *testing.T) products.Store {
		rdb, prefix := testbackend.Redis(t)
		return serve(t, redisstore.New(rdb, prefix))
	})
}

// The orders contract suite with its stock taken through the remote
// client, as the orders module does when products runs in another process.
func TestOrdersOnRemoteStock(t *testing.T) {
	orderstest.Run(t, func(t *testing.T) orderstest.Stores {
		rdb, prefix := testbackend.Redis(t)
		return orderstest.Stores{
			Orders:   sqlstore.NewPostgres(testbackend.Postgres(t)),
			Products: serve(t, redisstore.New(rdb, prefix)),
		}
	})
}

// deadlineStore records the deadline each Get runs under and fails the
// first fails calls as if Redis were down.
type deadlineStore struct {
	products.Store
	deadline atomic.Int64
	calls    atomic.Int32
	fails    int32
}

func (s *deadlineStore) Get(ctx context.Context, id string) (products.Product, error) {
	if d, ok := ctx.Deadline(); ok {
		s.deadline.Store(d.UnixMilli())
	}
	if s.calls.Add(1) <= s.fails {
		return products.Product{}, products.ErrUnavailable
	}
	return products.Product{ID: id, Title: "T"}, nil
}

func (s *deadlineStore) Create(context.Context, products.Product) error {
	s.calls.Add(1)
	return products.ErrUnavailable
}

// TestRemoteDeadlineAndRetries: the caller's deadline reaches the module;
// the module's Unavailable comes back as products.ErrUnavailable; an
// idempotent call (Get) is retried, one that is not (Create) is not.
func TestRemoteDeadlineAndRetries(t *testing.T) {
	store := &deadlineStore{fails: 1}
	c := serve(t, store)
	deadline := time.Now().Add(time.Minute)
	ctx, cancel := context.WithDeadline(t.Context(), deadline)
	defer cancel()

	if _, err := c.Get(ctx, "a"); !errors.Is(err, products.ErrUnavailable) {
		t.Fatalf("Get while the store is down: %v; want ErrUnavailable", err)
	}
	if got := store.calls.Load(); got != 1 {
		t.Fatalf("the store saw %d Get calls; a module error is an answer, not retried", got)
	}
	if got := time.UnixMilli(store.deadline.Load()); got.Sub(deadline).Abs() > time.Second {
		t.Fatalf("the module ran under deadline %v; want the caller's %v", got, deadline)
	}
	if p, err := c.Get(ctx, "a"); err != nil || p.ID != "a" {
		t.Fatalf("Get = %+v, %v", p, err)
	}
	store.calls.Store(0)
	if err := c.Create(ctx, products.Product{ID: "a", Title: "A"}); !errors.Is(err, products.ErrUnavailable) || store.calls.Load() != 1 {
		t.Fatalf("Create = %v after %d calls; want ErrUnavailable after 1", err, store.calls.Load())
	}
}

// TestRemoteUnreachable: a module that does not answer is Unavailable;
// idempotent calls are retried (with backoff) before giving up, others are
// not.
func TestRemoteUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var calls atomic.Int32
	hc := rpc.NewHTTPClient(time.Second, 4)
	defer hc.CloseIdleConnections()
	c := productsrpc.NewClient(hc, "http://"+addr, rpc.ClientOptions(func(string) { calls.Add(1) })...)
	ctx := t.Context()
	if _, err := c.Get(ctx, "a"); !errors.Is(err, products.ErrUnavailable) {
		t.Fatalf("Get from a module that is down: %v; want ErrUnavailable", err)
	}
	if got := calls.Load(); got != 1+rpc.Retries {
		t.Fatalf("Get was tried %d times; want %d", got, 1+rpc.Retries)
	}
	calls.Store(0)
	if err := c.Delete(ctx, "a"); !errors.Is(err, products.ErrUnavailable) || calls.Load() != 1 {
		t.Fatalf("Delete = %v after %d tries; want ErrUnavailable after 1", err, calls.Load())
	}
	if err := c.Ready(ctx); !errors.Is(err, products.ErrUnavailable) {
		t.Fatalf("Ready = %v; want ErrUnavailable", err)
	}
}

// TestModuleRefusesWhatTheAPIRefuses: a caller of the products module's
// port other than the gateway is held to the same rules as the API's
// requests: every call that breaks one is refused as invalid (400
// VALIDATION_ERROR at the gateway), and the store is left as it was.
func TestModuleRefusesWhatTheAPIRefuses(t *testing.T) {
	ctx := t.Context()
	rdb, prefix := testbackend.Redis(t)
	url := serveURL(t, redisstore.New(rdb, prefix))
	hc := rpc.NewHTTPClient(time.Second, 4)
	t.Cleanup(hc.CloseIdleConnections)
	c := productsrpc.NewClient(hc, url, rpc.ClientOptions(nil)...)
	odyssey := products.Product{ID: "the_odyssey", Title: "The Odyssey", PassengerCapacity: 101, MaximumSpeed: 5, InStock: 10}
	if err := c.Create(ctx, odyssey); err != nil {
		t.Fatal(err)
	}
	with := func(change func(*products.Product)) products.Product {
		p := products.Product{ID: "new", Title: "New", PassengerCapacity: 1, MaximumSpeed: 1, InStock: 1}
		change(&p)
		return p
	}
	n := func(v int64) *int64 { return &v }
	s := func(v string) *string { return &v }
	soon := time.Now().Add(time.Minute)
	lines := func(n int) []products.Line {
		out := make([]products.Line, n)
		for i := range out {
			out[i] = products.Line{ProductID: fmt.Sprintf("p%d", i), Quantity: 1}
		}
		return out
	}
	reserve := func(id string, deadline time.Time, l ...products.Line) func() error {
		return func() error {
			_, err := c.Reserve(ctx, products.Reservation{ID: id, Deadline: deadline, Lines: l})
			return err
		}
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"create empty id", func() error { return c.Create(ctx, with(func(p *products.Product) { p.ID = "" })) }},
		{"create id a}b{c", func() error { return c.Create(ctx, with(func(p *products.Product) { p.ID = "a}b{c" })) }},
		{"create id *", func() error { return c.Create(ctx, with(func(p *products.Product) { p.ID = "*" })) }},
		{"create id of 5000", func() error {
			return c.Create(ctx, with(func(p *products.Product) { p.ID = strings.Repeat("a", 5000) }))
		}},
		{"create blank title", func() error { return c.Create(ctx, with(func(p *products.Product) { p.Title = " " })) }},
		{"create negative stock", func() error { return c.Create(ctx, with(func(p *products.Product) { p.InStock = -1 })) }},
		{"create stock too large", func() error {
			return c.Create(ctx, with(func(p *products.Product) { p.PassengerCapacity = products.MaxCount + 1 }))
		}},
		{"update stock -50", func() error {
			_, err := c.Update(ctx, "the_odyssey", products.Patch{InStock: n(-50)})
			return err
		}},
		{"update blank title", func() error {
			_, err := c.Update(ctx, "the_odyssey", products.Patch{Title: s("")})
			return err
		}},
		{"update nothing", func() error {
			_, err := c.Update(ctx, "the_odyssey", products.Patch{})
			return err
		}},
		{"update bad id", func() error {
			_, err := c.Update(ctx, "a b", products.Patch{InStock: n(5)})
			return err
		}},
		{"delete empty id", func() error { return c.Delete(ctx, "") }},
		{"get bad id", func() error { _, err := c.Get(ctx, "*"); return err }},
		{"exists bad id", func() error { _, err := c.Exists(ctx, "a}b"); return err }},
		{"list limit 0", func() error { _, err := c.List(ctx, "", 0); return err }},
		{"list limit 5000", func() error { _, err := c.List(ctx, "", 5000); return err }},
		{"reserve negative", reserve("r1", soon, products.Line{ProductID: "the_odyssey", Quantity: -5})},
		{"reserve zero", reserve("r2", soon, products.Line{ProductID: "the_odyssey", Quantity: 0})},
		{"reserve bad product id", reserve("r3", soon, products.Line{ProductID: "*", Quantity: 1})},
		{"reserve no lines", reserve("r4", soon)},
		{"reserve 101 lines", reserve("r5", soon, lines(101)...)},
		{"reserve no deadline", reserve("r6", time.Time{}, products.Line{ProductID: "the_odyssey", Quantity: 1})},
		{"reserve no id", reserve("", soon, products.Line{ProductID: "the_odyssey", Quantity: 1})},
		{"commit bad line", func() error {
			return c.Commit(ctx, products.Reservation{ID: "r7", Lines: []products.Line{{ProductID: "", Quantity: 1}}})
		}},
		{"release negative", func() error {
			return c.Release(ctx, products.Reservation{ID: "r8", Lines: []products.Line{{ProductID: "the_odyssey", Quantity: -1}}})
		}},
		{"restock negative", func() error {
			return c.Restock(ctx, "s1", []products.Line{{ProductID: "the_odyssey", Quantity: -50}})
		}},
		{"restock no id", func() error {
			return c.Restock(ctx, "", []products.Line{{ProductID: "the_odyssey", Quantity: 1}})
		}},
		{"restock too many lines", func() error { return c.Restock(ctx, "s2", lines(products.MaxRestockLines+1)) }},
		{"expired limit 0", func() error { _, err := c.Expired(ctx, time.Now(), 0); return err }},
		{"expired limit 1000000", func() error { _, err := c.Expired(ctx, time.Now(), 1_000_000); return err }},
	}
	for _, call := range calls {
		if err := call.call(); errs.Of(err) != errs.Invalid {
			t.Errorf("%s: %v (kind %q); want it refused as invalid", call.name, err, errs.Of(err))
		}
	}
	page, err := c.List(ctx, "", products.MaxPage)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Products) != 1 || page.Products[0] != (products.Product{ID: "the_odyssey", Title: "The Odyssey",
		PassengerCapacity: 101, MaximumSpeed: 5, InStock: 10, Incarnation: page.Products[0].Incarnation}) {
		var held []string
		for _, p := range page.Products {
			held = append(held, fmt.Sprintf("%.20q (title %q, in stock %d)", p.ID, p.Title, p.InStock))
		}
		t.Errorf("after the refused calls the store holds %s; want the_odyssey unchanged", strings.Join(held, ", "))
	}
	if r, err := c.Expired(ctx, time.Now().Add(time.Hour), products.MaxExpired); err != nil || len(r) != 0 {
		t.Errorf("after the refused calls the store holds reservations %+v (%v); want none", r, err)
	}

	// The refusal crosses the wire as InvalidArgument, with the portable
	// error the gateway maps to 400 VALIDATION_ERROR.
	raw := productsv1connect.NewProductServiceClient(hc, url)
	_, err = raw.Create(ctx, connect.NewRequest(&productsv1.CreateRequest{Product: &productsv1.Product{Title: "x"}}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("a bare Connect client's Create of an empty id: %v; want InvalidArgument", err)
	}
	// What the API takes, the module takes: the largest values included.
	if err := c.Create(ctx, with(func(p *products.Product) {
		p.ID = strings.Repeat("z", products.MaxIDLength)
		p.InStock = products.MaxCount
	})); err != nil {
		t.Errorf("create the largest product: %v", err)
	}
	big := make([]string, products.MaxPage+1)
	for i := range big {
		big[i] = fmt.Sprintf("id-%d", i)
	}
	big[len(big)-1] = "the_odyssey"
	if found, err := c.GetMany(ctx, append(big, "not an id")); err != nil || len(found) != 1 {
		t.Errorf("GetMany of %d ids (one bad): %d found, %v; want the_odyssey", len(big)+1, len(found), err)
	}
}

// zeros is an endless body of zero bytes, made as it is read.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestModuleRefusesLargeRequests: a request larger than the products
// module's limit is refused with ResourceExhausted, in the Connect and the
// gRPC protocol, before it is read whole: a 128 MiB body costs the module
// a few MiB, not 128.
func TestModuleRefusesLargeRequests(t *testing.T) {
	ctx := t.Context()
	rdb, prefix := testbackend.Redis(t)
	url := serveURL(t, redisstore.New(rdb, prefix))
	hc := rpc.NewHTTPClient(time.Second, 4)
	t.Cleanup(hc.CloseIdleConnections)
	huge := &productsv1.Product{Id: "huge", Title: strings.Repeat("x", productsrpc.Limits.Request+1), InStock: 1}
	for name, opts := range map[string][]connect.ClientOption{"connect": nil, "grpc": {connect.WithGRPC()}} {
		raw := productsv1connect.NewProductServiceClient(hc, url, opts...)
		_, err := raw.Create(ctx, connect.NewRequest(&productsv1.CreateRequest{Product: huge}))
		if connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Errorf("%s: Create of %d bytes: %v; want ResourceExhausted", name, len(huge.Title), err)
		}
	}
	// The client holds its own calls to the limit.
	c := productsrpc.NewClient(hc, url, rpc.ClientOptions(nil)...)
	if err := c.Create(ctx, products.Product{ID: "huge", Title: huge.Title}); !errors.Is(err, products.ErrUnavailable) {
		t.Errorf("client Create of %d bytes: %v; want it refused (unavailable)", len(huge.Title), err)
	}

	// A chunked body that never ends, as a stranger could send it.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+productsv1connect.ProductServiceCreateProcedure,
		io.LimitReader(zeros{}, 128<<20))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/proto")
	resp, err := hc.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("a chunked body of 128 MiB: %s; want it refused", resp.Status)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 48<<20 {
		t.Errorf("a chunked body of 128 MiB cost %d MiB of allocations; want the module to stop at its limit of %d MiB",
			grew>>20, productsrpc.Limits.Request>>20)
	}
	if ok, err := c.Exists(ctx, "huge"); ok || err != nil {
		t.Errorf("huge exists: %v, %v; want it never created", ok, err)
	}
}
