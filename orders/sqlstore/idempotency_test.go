package sqlstore_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/internal/errs"
	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/orders/sqlstore"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/redisstore"
	"github.com/airshipltd/airship/products/sqlitestore"
)

// keyStores are the stores PlaceOnce is tested on, per database.
var keyStores = map[string]func(t *testing.T) (*sqlx.DB, orders.Store, products.Store, orders.Transactor){
	"postgres": func(t *testing.T) (*sqlx.DB, orders.Store, products.Store, orders.Transactor) {
		pg := testbackend.Postgres(t)
		rdb, prefix := testbackend.Redis(t)
		return pg, sqlstore.NewPostgres(pg), redisstore.New(rdb, prefix), nil
	},
	"embedded": func(t *testing.T) (*sqlx.DB, orders.Store, products.Store, orders.Transactor) {
		db := testbackend.SQLite(t)
		store := sqlstore.NewSQLite(db)
		return db, store, sqlitestore.New(db), store.Transactor(sqliteStock(db))
	},
}

// crashing is an orders store whose CompleteKey fails once armed, as a
// process that dies after placing its order but before recording it.
type crashing struct {
	orders.Store
	mu    sync.Mutex
	armed bool
}

func (c *crashing) CompleteKey(ctx context.Context, key, reservationID string, orderID int64, refusal *errs.Portable) error {
	c.mu.Lock()
	armed := c.armed
	c.mu.Unlock()
	if armed {
		return errors.New("process died")
	}
	return c.Store.CompleteKey(ctx, key, reservationID, orderID, refusal)
}

// downStock is a stock that cannot be reached.
type downStock struct{ orders.Stock }

func (downStock) Reserve(context.Context, products.Reservation) (products.Taken, error) {
	return nil, products.ErrUnavailable
}

// TestPlaceOnce runs the idempotency protocol on both databases: replay,
// reuse, concurrent duplicates, stored refusals, a request that died after
// its order committed, one that failed before, a key in use, expiry.
func TestPlaceOnce(t *testing.T) {
	for name, setup := range keyStores {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			db, ord, prod, tx := setup(t)
			if err := prod.Create(ctx, products.Product{ID: "a", Title: "A", InStock: 10}); err != nil {
				t.Fatal(err)
			}
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			cfg := orders.Config{HoldFor: time.Minute, KeyStaleAfter: time.Hour, Tx: tx}
			svc := orders.NewService(ord, prod, log, cfg)
			one := []orders.NewLine{{ProductID: "a", Price: decimal.RequireFromString("1"), Quantity: 1}}
			stock := func() int64 {
				p, err := prod.Get(ctx, "a")
				if err != nil {
					t.Fatal(err)
				}
				return p.InStock
			}

			first, err := svc.PlaceOnce(ctx, "k1", one)
			if err != nil || first.Replayed || first.OrderID == 0 {
				t.Fatalf("first PlaceOnce = %+v, %v", first, err)
			}
			again, err := svc.PlaceOnce(ctx, "k1", []orders.NewLine{{ProductID: "a", Price: decimal.RequireFromString("1.00"), Quantity: 1}})
			if err != nil || !again.Replayed || again.OrderID != first.OrderID {
				t.Fatalf("retry = %+v, %v; want a replay of order %d", again, err, first.OrderID)
			}
			var reused *orders.KeyReusedError
			if _, err := svc.PlaceOnce(ctx, "k1", []orders.NewLine{{ProductID: "a", Price: decimal.RequireFromString("1"), Quantity: 2}}); !errors.As(err, &reused) || reused.Key != "k1" {
				t.Fatalf("reuse with other lines: %v; want KeyReusedError", err)
			}
			if got := stock(); got != 9 {
				t.Fatalf("stock %d; want 9 (one order)", got)
			}

			// Concurrent duplicates: one order, one answer.
			var wg sync.WaitGroup
			ids := make([]int64, 16)
			for i := range ids {
				wg.Go(func() {
					p, err := svc.PlaceOnce(ctx, "k2", one)
					if err != nil {
						t.Errorf("concurrent duplicate: %v", err)
					}
					ids[i] = p.OrderID
				})
			}
			wg.Wait()
			for _, id := range ids {
				if id != ids[0] || id == 0 {
					t.Fatalf("concurrent duplicates got orders %v", ids)
				}
			}
			if got := stock(); got != 8 {
				t.Fatalf("stock %d after 16 duplicates; want 8", got)
			}

			// A refusal is an outcome: replayed even after the stock changed.
			big := []orders.NewLine{{ProductID: "a", Price: decimal.RequireFromString("1"), Quantity: 100}}
			_, err = svc.PlaceOnce(ctx, "k3", big)
			var oos *products.OutOfStockError
			if !errors.As(err, &oos) || oos.Available != 8 {
				t.Fatalf("order of 100: %v; want OutOfStockError with 8 available", err)
			}
			restocked := int64(1000)
			if _, err := prod.Update(ctx, "a", products.Patch{InStock: &restocked}); err != nil {
				t.Fatal(err)
			}
			replayed, err := svc.PlaceOnce(ctx, "k3", big)
			if !replayed.Replayed || !errors.As(err, &oos) || oos.Requested != 100 || oos.Available != 8 {
				t.Fatalf("retry of a refusal = %+v, %v; want the same OutOfStockError, replayed", replayed, err)
			}

			// The request dies after its order committed: the next one with
			// the key finds the order and answers with it.
			died := &crashing{Store: ord, armed: true}
			dying := orders.NewService(died, prod, log, orders.Config{HoldFor: time.Minute, KeyStaleAfter: time.Millisecond, Tx: tx})
			if _, err := dying.PlaceOnce(ctx, "k4", one); err == nil {
				t.Fatal("the crash was not reported")
			}
			time.Sleep(5 * time.Millisecond)
			recovered, err := orders.NewService(ord, prod, log, orders.Config{HoldFor: time.Minute, KeyStaleAfter: time.Millisecond, Tx: tx}).
				PlaceOnce(ctx, "k4", one)
			if err != nil || !recovered.Replayed {
				t.Fatalf("after the crash = %+v, %v; want the committed order, replayed", recovered, err)
			}
			if _, err := ord.Get(ctx, recovered.OrderID); err != nil {
				t.Fatalf("recovered order %d: %v", recovered.OrderID, err)
			}
			if got := stock(); got != 999 {
				t.Fatalf("stock %d; want 999 (the crashed request's order, once)", got)
			}

			// The request fails with a backend down: the key is yielded, and
			// the retry voids the old reservation and places the order.
			down := orders.NewService(ord, downStock{prod}, log, orders.Config{HoldFor: time.Minute, KeyStaleAfter: time.Hour})
			if _, err := down.PlaceOnce(ctx, "k5", one); errs.Of(err) != errs.Unavailable {
				t.Fatalf("with the stock down: %v; want unavailable", err)
			}
			retried, err := svc.PlaceOnce(ctx, "k5", one)
			if err != nil || retried.Replayed || retried.OrderID == 0 {
				t.Fatalf("retry after an outage = %+v, %v; want a new order", retried, err)
			}
			if got := stock(); got != 998 {
				t.Fatalf("stock %d; want 998", got)
			}

			// Expired keys start afresh and are purged.
			short := orders.NewService(ord, prod, log, orders.Config{HoldFor: time.Minute, KeyTTL: time.Millisecond, Tx: tx})
			if _, err := short.PlaceOnce(ctx, "k8", one); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
			if p, err := short.PlaceOnce(ctx, "k8", big); errors.As(err, &reused) || p.Replayed {
				t.Fatalf("an expired key was still remembered: %+v, %v", p, err)
			}
			time.Sleep(5 * time.Millisecond)
			if err := short.PurgeKeys(ctx); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.Get(&n, "SELECT count(*) FROM idempotency_keys WHERE key = 'k8'"); err != nil || n != 0 {
				t.Fatalf("%d expired keys left after PurgeKeys (%v)", n, err)
			}

			// Run purges them in the background from the start, and returns
			// when its context ends.
			if _, err := short.PlaceOnce(ctx, "k9", one); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
			runCtx, stop := context.WithCancel(ctx)
			ran := make(chan struct{})
			go func() { short.Run(runCtx, time.Hour); close(ran) }()
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if err := db.Get(&n, "SELECT count(*) FROM idempotency_keys WHERE key = 'k9'"); err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("Run left an expired key for 30 s")
				}
			}
			stop()
			<-ran
		})
	}
}

// blockingStock holds every Reserve until released.
type blockingStock struct {
	orders.Stock
	entered, release chan struct{}
}

func (b blockingStock) Reserve(ctx context.Context, r products.Reservation) (products.Taken, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Stock.Reserve(ctx, r)
}

// TestPlaceOnceKeyInUse: a duplicate that arrives while the first request
// runs waits for it, and gives up with KeyInUseError when its caller does;
// the first request then completes as if alone.
func TestPlaceOnceKeyInUse(t *testing.T) {
	for name, setup := range keyStores {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			_, ord, prod, _ := setup(t)
			if err := prod.Create(ctx, products.Product{ID: "a", Title: "A", InStock: 10}); err != nil {
				t.Fatal(err)
			}
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			cfg := orders.Config{HoldFor: time.Minute, KeyStaleAfter: time.Hour}
			held := blockingStock{Stock: prod, entered: make(chan struct{}), release: make(chan struct{})}
			one := []orders.NewLine{{ProductID: "a", Price: decimal.RequireFromString("1"), Quantity: 1}}
			done := make(chan orders.Placed, 1)
			go func() {
				p, err := orders.NewService(ord, held, log, cfg).PlaceOnce(ctx, "busy", one)
				if err != nil {
					t.Errorf("first request: %v", err)
				}
				done <- p
			}()
			<-held.entered
			// Long enough for the duplicate's own statements on a loaded
			// machine; it then waits for the first request until it gives up.
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			svc := orders.NewService(ord, prod, log, cfg)
			var inUse *orders.KeyInUseError
			if _, err := svc.PlaceOnce(wctx, "busy", one); !errors.As(err, &inUse) || inUse.Key != "busy" {
				t.Fatalf("duplicate of a running request: %v; want KeyInUseError", err)
			}
			close(held.release)
			first := <-done
			if again, err := svc.PlaceOnce(ctx, "busy", one); err != nil || !again.Replayed || again.OrderID != first.OrderID {
				t.Fatalf("after the first completed = %+v, %v; want a replay of %d", again, err, first.OrderID)
			}
		})
	}
}
