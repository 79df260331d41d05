package sqlstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/shopspring/decimal"

	"go.uber.org/goleak"

	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/orders/orderstest"
	"github.com/airshipltd/airship/orders/sqlstore"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/redisstore"
	"github.com/airshipltd/airship/products/sqlitestore"
)

// TestPostgres runs the contract suite on PostgreSQL, with the stock in
// Redis and events on (the outbox tests cover events off).
func TestPostgres(t *testing.T) {
	orderstest.Run(t, func(t *testing.T) orderstest.Stores {
		rdb, prefix := testbackend.Redis(t)
		db := testbackend.Postgres(t)
		store := sqlstore.NewPostgres(db, sqlstore.WithEvents())
		return orderstest.Stores{
			Orders:   store,
			Products: redisstore.New(rdb, prefix),
			Swallow:  orderstest.PostgresSwallow(db),
			Records:  store,
			Outbox:   store,
		}
	})
}

// TestSQLite runs the contract suite on the embedded database as airship
// serve opens it: the stock in the same database, reads on its read pool,
// events on.
func TestSQLite(t *testing.T) {
	orderstest.Run(t, func(t *testing.T) orderstest.Stores {
		db := testbackend.SQLite(t)
		reads := testbackend.SQLiteReads(t, db)
		store := sqlstore.NewSQLite(db, sqlstore.WithEvents(), sqlstore.WithReads(reads))
		return orderstest.Stores{Orders: store, Products: sqlitestore.New(db, sqlitestore.WithReads(reads)), Tx: store.Transactor(sqliteStock(db)),
			Swallow: orderstest.SQLiteSwallow(db), Records: store, Outbox: store}
	})
}

// sqliteStock is the stock of the embedded database, bound to a
// transaction of the orders store.
func sqliteStock(db *sqlx.DB) func(tx *sqlx.Tx) orders.Stock {
	return func(tx *sqlx.Tx) orders.Stock { return sqlitestore.New(db).WithTx(tx) }
}

// TestMain fails the package if a test leaves goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// gatedStock holds every Commit until the gate opens.
type gatedStock struct {
	orders.Stock
	gate    chan struct{}
	commits chan struct{} // one value per Commit that began
}

func (g gatedStock) Commit(ctx context.Context, r products.Reservation) error {
	g.commits <- struct{}{}
	<-g.gate
	return g.Stock.Commit(ctx, r)
}

// TestCommitInBackground: with CommitInBackground, Place answers while
// the reservation's commit is still under way, and Wait waits for it;
// once Wait returns, every reservation is committed and the stock is what
// the orders took.
func TestCommitInBackground(t *testing.T) {
	ctx := t.Context()
	rdb, prefix := testbackend.Redis(t)
	redisStock := redisstore.New(rdb, prefix)
	const n = 20
	stock := gatedStock{Stock: redisStock, gate: make(chan struct{}), commits: make(chan struct{}, n)}
	svc := orders.NewService(sqlstore.NewPostgres(testbackend.Postgres(t)), stock,
		slog.New(slog.NewTextHandler(io.Discard, nil)), orders.Config{HoldFor: time.Minute, CommitInBackground: true})
	if err := redisStock.Create(ctx, products.Product{ID: "a", Title: "A", InStock: 50}); err != nil {
		t.Fatal(err)
	}
	opened := false
	defer func() {
		if !opened { // a failure below: let the commits end with the test
			close(stock.gate)
		}
	}()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := svc.Place(ctx, []orders.NewLine{{ProductID: "a", Price: decimal.RequireFromString("1.00"), Quantity: 2}}); err != nil {
				t.Errorf("Place: %v", err)
			}
		})
	}
	answered := make(chan struct{})
	go func() { wg.Wait(); close(answered) }()
	select { // no commit can finish yet
	case <-answered:
	case <-time.After(30 * time.Second):
		t.Fatal("Place did not answer within 30 s while its commit was held")
	}
	waited := make(chan struct{})
	go func() { svc.Wait(); close(waited) }()
	for range n {
		select {
		case <-stock.commits:
		case <-time.After(30 * time.Second):
			t.Fatal("Place answered, but not every commit began within 30 s")
		}
	}
	select {
	case <-waited:
		t.Fatal("Wait returned while the commits were held")
	case <-time.After(100 * time.Millisecond):
	}
	close(stock.gate)
	opened = true
	<-waited
	if left, err := redisStock.Expired(ctx, time.Now().Add(time.Hour), 100); err != nil || len(left) != 0 {
		t.Fatalf("reservations left after Wait: %d, %v", len(left), err)
	}
	if p, _ := redisStock.Get(ctx, "a"); p.InStock != 10 {
		t.Fatalf("stock %d; want 10", p.InStock)
	}
}

// countingStock counts the calls of the stock that places an order.
type countingStock struct {
	orders.Stock
	reserves *int
}

func (c countingStock) Reserve(ctx context.Context, r products.Reservation) (products.Taken, error) {
	*c.reserves++
	return c.Stock.Reserve(ctx, r)
}

// takingStock is a countingStock that can also take stock outright.
type takingStock struct {
	countingStock
	takes *int
}

func (c takingStock) Take(ctx context.Context, lines []products.Line) (products.Taken, error) {
	*c.takes++
	return c.Stock.(orders.Taker).Take(ctx, lines)
}

// TestPlaceInOneTransaction: in the embedded store, where the order and
// the stock commit in one transaction, an order is placed with Take when
// the stock offers it (no reservation recorded), and with Reserve and
// Commit otherwise; either way the stock is taken once and no reservation
// is left.
func TestPlaceInOneTransaction(t *testing.T) {
	for _, taker := range []bool{true, false} {
		t.Run(fmt.Sprintf("taker=%v", taker), func(t *testing.T) {
			ctx := t.Context()
			db := testbackend.SQLite(t)
			store := sqlstore.NewSQLite(db)
			var reserves, takes int
			tx := store.Transactor(func(tx *sqlx.Tx) orders.Stock {
				c := countingStock{Stock: sqlitestore.New(db).WithTx(tx), reserves: &reserves}
				if taker {
					return takingStock{countingStock: c, takes: &takes}
				}
				return c
			})
			stock := sqlitestore.New(db)
			svc := orders.NewService(store, stock, slog.New(slog.NewTextHandler(io.Discard, nil)),
				orders.Config{HoldFor: time.Minute, Tx: tx})
			if err := stock.Create(ctx, products.Product{ID: "a", Title: "A", InStock: 5}); err != nil {
				t.Fatal(err)
			}
			o, err := svc.Place(ctx, []orders.NewLine{{ProductID: "a", Price: decimal.RequireFromString("1.00"), Quantity: 2}})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := store.Get(ctx, o.ID); err != nil || len(got.Lines) != 1 {
				t.Fatalf("the order: %+v, %v", got, err)
			}
			want := [2]int{0, 1} // reserves, takes
			if !taker {
				want = [2]int{1, 0}
			}
			if got := [2]int{reserves, takes}; got != want {
				t.Fatalf("Reserve called %d times, Take %d; want %d and %d", got[0], got[1], want[0], want[1])
			}
			if p, err := stock.Get(ctx, "a"); err != nil || p.InStock != 3 {
				t.Fatalf("stock %d, %v; want 3", p.InStock, err)
			}
			if left, err := stock.Expired(ctx, time.Now().Add(time.Hour), 10); err != nil || len(left) != 0 {
				t.Fatalf("reservations left: %d, %v; want none", len(left), err)
			}
		})
	}
}
