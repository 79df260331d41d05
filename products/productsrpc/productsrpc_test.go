package productsrpc_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/airshipltd/airship/internal/rpc"
	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/orders/orderstest"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/productsrpc"
	"github.com/airshipltd/airship/products/productstest"
)

// TestMain fails the package if a test leaves goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// serve runs the products module's handler on store behind a real
// listener and returns a client of it.
func serve(t *testing.T, store products.Store, opts ...func(*http.Server)) *productsrpc.Client {
	t.Helper()
	path, h := productsrpc.NewHandler(store)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rpc.Mux(path, h, func(context.Context) error { return nil }), Protocols: rpc.Protocols()}
	for _, o := range opts {
		o(srv)
	}
	go srv.Serve(ln)
	hc := rpc.NewHTTPClient(time.Second, 64)
	t.Cleanup(func() {
		srv.Close()
		hc.CloseIdleConnections()
	})
	return productsrpc.NewClient(hc, "http://"+ln.Addr().String(), rpc.ClientOptions(nil)...)
}

// The products contract suite, unchanged, through the remote client: the
// module's handler on the Redis store behind a real listener. (The
// embedded store cannot be split: it shares one file and one transaction
// with the orders.)
func TestRemoteRedisStore(t *testing.T) {
	productstest.Run(t, func(t *testing.T) products.Store {
		rdb, prefix := testbackend.Redis(t)
		return serve(t, products.NewRedisStore(rdb, prefix))
	})
}

// The orders contract suite with its stock taken through the remote
// client, as the orders module does when products runs in another process.
func TestOrdersOnRemoteStock(t *testing.T) {
	orderstest.Run(t, func(t *testing.T) orderstest.Stores {
		rdb, prefix := testbackend.Redis(t)
		return orderstest.Stores{
			Orders:   orders.NewPGStore(testbackend.Postgres(t)),
			Products: serve(t, products.NewRedisStore(rdb, prefix)),
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
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
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
	if err := c.Create(ctx, products.Product{ID: "a"}); !errors.Is(err, products.ErrUnavailable) || store.calls.Load() != 1 {
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
	ctx := context.Background()
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
