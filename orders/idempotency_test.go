package orders_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// TestIdempotencyStore runs the key lifecycle on both databases,
// including recovery of a key whose request died after its order
// committed, and of one whose request died before.
func TestIdempotencyStore(t *testing.T) {
	setups := map[string]func(t *testing.T) (*sqlx.DB, orders.Store, products.Store){
		"postgres": func(t *testing.T) (*sqlx.DB, orders.Store, products.Store) {
			pg := testbackend.Postgres(t)
			rdb, prefix := testbackend.Redis(t)
			return pg, orders.NewPGStore(pg), products.NewRedisStore(rdb, prefix)
		},
		"embedded": func(t *testing.T) (*sqlx.DB, orders.Store, products.Store) {
			db := testbackend.SQLite(t)
			return db, orders.NewSQLStore(db), products.NewSQLStore(db)
		},
	}
	for name, setup := range setups {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, ord, prod := setup(t)
			if err := prod.Create(ctx, products.Product{ID: "a", Title: "A", InStock: 10}); err != nil {
				t.Fatal(err)
			}
			svc := orders.NewService(ord, prod, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Minute)
			// Two views of the same table: one where a running request is never
			// stale, one where it is stale at once (its owner died).
			keys := orders.NewIdempotencyStore(db, time.Hour, time.Hour)
			after := orders.NewIdempotencyStore(db, time.Hour, 0)
			lines := []orders.NewLine{{ProductID: "a", Price: decimal.RequireFromString("1"), Quantity: 1}}

			state, _, err := keys.Begin(ctx, "k", "h1", "r1")
			if err != nil || state != orders.KeyStarted {
				t.Fatalf("first Begin = %v, %v; want started", state, err)
			}
			if state, _, _ := keys.Begin(ctx, "k", "h1", "r2"); state != orders.KeyBusy {
				t.Fatalf("Begin while running = %v; want busy", state)
			}
			if state, _, _ := keys.Begin(ctx, "k", "h2", "r2"); state != orders.KeyReused {
				t.Fatalf("Begin with another hash = %v; want reused", state)
			}
			// The request places its order, then its process dies before
			// completing the key.
			placed, err := svc.PlaceAs(ctx, "r1", lines)
			if err != nil {
				t.Fatal(err)
			}
			state, rec, err := after.Begin(ctx, "k", "h1", "r2")
			if err != nil || state != orders.KeyStale || rec.ReservationID != "r1" {
				t.Fatalf("Begin after the owner died = %v %+v, %v; want stale on r1", state, rec, err)
			}
			id, committed, err := svc.Outcome(ctx, "r1")
			if err != nil || !committed || id != placed.ID {
				t.Fatalf("Outcome(r1) = %d, %v, %v; want order %d", id, committed, err, placed.ID)
			}
			if err := keys.Complete(ctx, "k", "r1", 200, []byte(`{"id":1}`)); err != nil {
				t.Fatal(err)
			}
			state, rec, _ = keys.Begin(ctx, "k", "h1", "r3")
			if state != orders.KeyDone || rec.Status.Int64 != 200 || string(rec.Body) != `{"id":1}` {
				t.Fatalf("Begin after Complete = %v %+v; want done with the stored response", state, rec)
			}

			// A request that died before its order: its reservation is
			// voided and the key is taken over.
			if state, _, _ := keys.Begin(ctx, "k2", "h", "r4"); state != orders.KeyStarted {
				t.Fatalf("Begin k2 = %v", state)
			}
			state, rec, _ = after.Begin(ctx, "k2", "h", "r5")
			if state != orders.KeyStale || rec.ReservationID != "r4" {
				t.Fatalf("Begin k2 after its owner died = %v %+v", state, rec)
			}
			if _, committed, err := svc.Outcome(ctx, "r4"); err != nil || committed {
				t.Fatalf("Outcome(r4) = %v, %v; want void", committed, err)
			}
			if _, err := svc.PlaceAs(ctx, "r4", lines); err == nil {
				t.Fatal("an order committed on a voided reservation")
			}
			if ok, err := keys.TakeOver(ctx, "k2", "r4", "r5"); err != nil || !ok {
				t.Fatalf("TakeOver = %v, %v", ok, err)
			}
			if ok, _ := keys.TakeOver(ctx, "k2", "r4", "r6"); ok {
				t.Fatal("a second TakeOver from the same reservation succeeded")
			}
			// Yield makes the key stale at once.
			if err := keys.Yield(ctx, "k2", "r5"); err != nil {
				t.Fatal(err)
			}
			if state, _, _ := keys.Begin(ctx, "k2", "h", "r7"); state != orders.KeyStale {
				t.Fatalf("Begin after Yield = %v; want stale", state)
			}
			if p, _ := prod.Get(ctx, "a"); p.InStock != 9 {
				t.Fatalf("stock %d; want 9 (one order)", p.InStock)
			}

			// Expired keys start afresh and are purged.
			short := orders.NewIdempotencyStore(db, time.Millisecond, time.Hour)
			short.Begin(ctx, "k3", "h", "r8")
			time.Sleep(5 * time.Millisecond)
			if state, _, _ := short.Begin(ctx, "k3", "other", "r9"); state != orders.KeyStarted {
				t.Fatalf("Begin on an expired key = %v; want started", state)
			}
			time.Sleep(5 * time.Millisecond)
			if err := short.Purge(ctx); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.Get(&n, "SELECT count(*) FROM idempotency_keys WHERE key = 'k3'"); err != nil || n != 0 {
				t.Fatalf("%d expired keys left after Purge (%v)", n, err)
			}
		})
	}
}
