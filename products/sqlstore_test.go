package products_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/db"
	"github.com/airshipltd/airship/db/migrations"
	"github.com/airshipltd/airship/products"
)

// newSQLite opens a fresh, migrated SQLite database in a temporary
// directory (in a subdirectory that does not exist yet, which OpenSQLite
// must create).
func newSQLite(t *testing.T) *sqlx.DB {
	t.Helper()
	ctx := context.Background()
	sdb, err := db.OpenSQLite(ctx, filepath.Join(t.TempDir(), "data", "airship.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = sdb.Close() })
	if err := migrations.Up(ctx, sdb.DB, migrations.SQLite, nil); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return sdb
}

func TestSQLStore(t *testing.T) {
	testStore(t, func(t *testing.T) products.Store { return products.NewSQLStore(newSQLite(t)) })
}

// testStore is the contract every products.Store must meet; newStore
// returns an empty store.
func testStore(t *testing.T, newStore func(t *testing.T) products.Store) {
	t.Run("CRUD", func(t *testing.T) { testCRUD(t, newStore(t)) })
	t.Run("GetManyMissing", func(t *testing.T) { testGetManyMissing(t, newStore(t)) })
	t.Run("List", func(t *testing.T) { testList(t, newStore(t)) })
	t.Run("ReserveAllOrNothing", func(t *testing.T) { testReserveAllOrNothing(t, newStore(t)) })
	t.Run("ReserveConcurrent", func(t *testing.T) { testReserveConcurrent(t, newStore(t)) })
	t.Run("CommitRelease", func(t *testing.T) { testCommitRelease(t, newStore(t)) })
	t.Run("ReleaseDeleted", func(t *testing.T) { testReleaseDeleted(t, newStore(t)) })
	t.Run("Expired", func(t *testing.T) { testExpired(t, newStore(t)) })
	t.Run("Restock", func(t *testing.T) { testRestock(t, newStore(t)) })
}

func airship(id string, stock int64) products.Product {
	return products.Product{ID: id, Title: "The " + id, PassengerCapacity: 101, MaximumSpeed: 5, InStock: stock}
}

func mustCreate(t *testing.T, s products.Store, ps ...products.Product) {
	t.Helper()
	for _, p := range ps {
		if err := s.Create(context.Background(), p); err != nil {
			t.Fatalf("create %s: %v", p.ID, err)
		}
	}
}

func stockOf(t *testing.T, s products.Store, id string) int64 {
	t.Helper()
	p, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return p.InStock
}

func testCRUD(t *testing.T, s products.Store) {
	ctx := context.Background()
	p := airship("the_odyssey-0.8623041", 10)
	mustCreate(t, s, p)

	var exists *products.ExistsError
	if err := s.Create(ctx, p); !errors.As(err, &exists) || exists.ID != p.ID || !errors.Is(err, products.ErrExists) {
		t.Fatalf("create twice: got %v, want ExistsError", err)
	}
	got, err := s.Get(ctx, p.ID)
	if err != nil || got != p {
		t.Fatalf("get: got %+v, %v; want %+v", got, err, p)
	}
	if ok, err := s.Exists(ctx, p.ID); err != nil || !ok {
		t.Fatalf("exists: %v, %v", ok, err)
	}

	title, stock := "Odyssey II", int64(3)
	got, err = s.Update(ctx, p.ID, products.Patch{Title: &title, InStock: &stock})
	want := products.Patch{Title: &title, InStock: &stock}.Apply(p)
	if err != nil || got != want {
		t.Fatalf("update: got %+v, %v; want %+v", got, err, want)
	}
	if got, _ := s.Get(ctx, p.ID); got != want {
		t.Fatalf("get after update: got %+v, want %+v", got, want)
	}
	if got, err := s.Update(ctx, p.ID, products.Patch{}); err != nil || got != want {
		t.Fatalf("empty update: got %+v, %v", got, err)
	}
	var nf *products.NotFoundError
	if _, err := s.Update(ctx, "nope", products.Patch{Title: &title}); !errors.As(err, &nf) || nf.ID != "nope" {
		t.Fatalf("update missing: got %v, want NotFoundError", err)
	}

	if err := s.Delete(ctx, p.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.Get(ctx, p.ID); !errors.Is(err, products.ErrNotFound) {
		t.Fatalf("get deleted: got %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, p.ID); !errors.As(err, &nf) || nf.ID != p.ID {
		t.Fatalf("delete twice: got %v, want NotFoundError", err)
	}
	if ok, err := s.Exists(ctx, p.ID); err != nil || ok {
		t.Fatalf("exists after delete: %v, %v", ok, err)
	}
}

func testGetManyMissing(t *testing.T, s products.Store) {
	ctx := context.Background()
	a, b := airship("a", 1), airship("b", 2)
	mustCreate(t, s, a, b)

	got, err := s.GetMany(ctx, []string{"a", "x", "b"})
	if err != nil || len(got) != 2 || got["a"] != a || got["b"] != b {
		t.Fatalf("get many: got %v, %v", got, err)
	}
	if got, err := s.GetMany(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("get many of none: got %v, %v", got, err)
	}
	missing, err := s.Missing(ctx, []string{"x", "a", "y", "b"})
	if err != nil || fmt.Sprint(missing) != "[x y]" {
		t.Fatalf("missing: got %v, %v; want [x y]", missing, err)
	}
	if missing, err := s.Missing(ctx, []string{"a", "b"}); err != nil || len(missing) != 0 {
		t.Fatalf("missing of existing: got %v, %v", missing, err)
	}
}

func testList(t *testing.T, s products.Store) {
	ctx := context.Background()
	const n = 23
	want := make(map[string]bool, n)
	for i := range n {
		p := airship(fmt.Sprintf("ship-%02d.%d", i, i*7919%100), int64(i))
		mustCreate(t, s, p)
		want[p.ID] = true
	}

	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		page, err := s.List(ctx, cursor, 5)
		if err != nil {
			t.Fatalf("list page %d: %v", pages, err)
		}
		pages++
		if len(page.Products) > 5 {
			t.Fatalf("page %d has %d products, limit 5", pages, len(page.Products))
		}
		for _, p := range page.Products {
			if seen[p.ID] {
				t.Fatalf("product %s listed twice", p.ID)
			}
			seen[p.ID] = true
		}
		if page.Next == "" {
			break
		}
		if pages > n {
			t.Fatal("listing does not end")
		}
		cursor = page.Next
	}
	if len(seen) != n {
		t.Fatalf("listed %d products, want %d", len(seen), n)
	}
	for id := range want {
		if !seen[id] {
			t.Fatalf("product %s not listed", id)
		}
	}

	for _, bad := range []string{"!!!", "a b", "%%"} {
		if _, err := s.List(ctx, bad, 5); !errors.Is(err, products.ErrBadCursor) {
			t.Fatalf("list with cursor %q: got %v, want ErrBadCursor", bad, err)
		}
	}
}

func testReserveAllOrNothing(t *testing.T, s products.Store) {
	ctx := context.Background()
	mustCreate(t, s, airship("a", 5), airship("b", 1))
	deadline := time.Now().Add(time.Minute)

	// The second line cannot be served: nothing is taken.
	err := s.Reserve(ctx, products.Reservation{ID: "r1", Deadline: deadline, Lines: []products.Line{
		{ProductID: "a", Quantity: 2}, {ProductID: "b", Quantity: 2},
	}})
	var oos *products.OutOfStockError
	if !errors.As(err, &oos) || oos.ID != "b" || oos.Requested != 2 || oos.Available != 1 || !errors.Is(err, products.ErrOutOfStock) {
		t.Fatalf("reserve: got %v, want OutOfStockError for b (2 of 1)", err)
	}
	if got := stockOf(t, s, "a"); got != 5 {
		t.Fatalf("stock of a after failed reserve: %d, want 5", got)
	}

	// The first failing line in merged order is reported: a is asked twice
	// (3+3 > 5), before the unknown product.
	err = s.Reserve(ctx, products.Reservation{ID: "r2", Deadline: deadline, Lines: []products.Line{
		{ProductID: "a", Quantity: 3}, {ProductID: "ghost", Quantity: 1}, {ProductID: "a", Quantity: 3},
	}})
	if !errors.As(err, &oos) || oos.ID != "a" || oos.Requested != 6 {
		t.Fatalf("reserve merged: got %v, want OutOfStockError for a (6)", err)
	}
	err = s.Reserve(ctx, products.Reservation{ID: "r3", Deadline: deadline, Lines: []products.Line{
		{ProductID: "a", Quantity: 1}, {ProductID: "ghost", Quantity: 1},
	}})
	var nf *products.NotFoundError
	if !errors.As(err, &nf) || nf.ID != "ghost" {
		t.Fatalf("reserve unknown: got %v, want NotFoundError for ghost", err)
	}
	if got := stockOf(t, s, "a"); got != 5 {
		t.Fatalf("stock of a after failed reserves: %d, want 5", got)
	}
	if exp, err := s.Expired(ctx, deadline.Add(time.Hour), 10); err != nil || len(exp) != 0 {
		t.Fatalf("failed reservations left records: %v, %v", exp, err)
	}

	// Success takes everything; a repeat is a no-op.
	r := products.Reservation{ID: "r4", Deadline: deadline, Lines: []products.Line{
		{ProductID: "a", Quantity: 2}, {ProductID: "b", Quantity: 1}, {ProductID: "a", Quantity: 3},
	}}
	for range 2 {
		if err := s.Reserve(ctx, r); err != nil {
			t.Fatalf("reserve: %v", err)
		}
	}
	if a, b := stockOf(t, s, "a"), stockOf(t, s, "b"); a != 0 || b != 0 {
		t.Fatalf("stock after reserve: a=%d b=%d, want 0 0", a, b)
	}
}

func testReserveConcurrent(t *testing.T, s products.Store) {
	ctx := context.Background()
	const stock, clients = 20, 64
	mustCreate(t, s, airship("hot", stock))

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, oos  int
		failures []error
	)
	for i := range clients {
		wg.Go(func() {
			err := s.Reserve(ctx, products.Reservation{
				ID: fmt.Sprintf("c%d", i), Deadline: time.Now().Add(time.Minute),
				Lines: []products.Line{{ProductID: "hot", Quantity: 1}},
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, products.ErrOutOfStock):
				oos++
			default:
				failures = append(failures, err)
			}
		})
	}
	wg.Wait()
	for _, err := range failures {
		if strings.Contains(err.Error(), "locked") || strings.Contains(err.Error(), "busy") {
			t.Errorf("database lock error: %v", err)
		} else {
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != stock || oos != clients-stock {
		t.Fatalf("%d reserved, %d out of stock; want %d and %d", ok, oos, stock, clients-stock)
	}
	if got := stockOf(t, s, "hot"); got != 0 {
		t.Fatalf("stock after the rush: %d, want 0", got)
	}
}

func testCommitRelease(t *testing.T, s products.Store) {
	ctx := context.Background()
	mustCreate(t, s, airship("a", 10), airship("b", 10))
	deadline := time.Now().Add(time.Minute)
	lines := []products.Line{{ProductID: "a", Quantity: 2}, {ProductID: "b", Quantity: 3}}

	committed := products.Reservation{ID: "committed", Deadline: deadline, Lines: lines}
	if err := s.Reserve(ctx, committed); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	if err := s.Commit(ctx, committed); err != nil {
		t.Fatalf("commit: %v", err)
	}
	// Releasing after commit gives nothing back: the holds are gone.
	if err := s.Release(ctx, committed); err != nil {
		t.Fatalf("release after commit: %v", err)
	}
	if a, b := stockOf(t, s, "a"), stockOf(t, s, "b"); a != 8 || b != 7 {
		t.Fatalf("after commit: a=%d b=%d, want 8 7", a, b)
	}

	released := products.Reservation{ID: "released", Deadline: deadline, Lines: lines}
	if err := s.Reserve(ctx, released); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	for range 3 { // idempotent
		if err := s.Release(ctx, released); err != nil {
			t.Fatalf("release: %v", err)
		}
	}
	if a, b := stockOf(t, s, "a"), stockOf(t, s, "b"); a != 8 || b != 7 {
		t.Fatalf("after release: a=%d b=%d, want 8 7", a, b)
	}
	if exp, err := s.Expired(ctx, deadline.Add(time.Hour), 10); err != nil || len(exp) != 0 {
		t.Fatalf("settled reservations still listed: %v, %v", exp, err)
	}
}

func testReleaseDeleted(t *testing.T, s products.Store) {
	ctx := context.Background()
	mustCreate(t, s, airship("a", 10), airship("gone", 10), airship("reborn", 10))
	r := products.Reservation{ID: "r", Deadline: time.Now().Add(time.Minute), Lines: []products.Line{
		{ProductID: "a", Quantity: 4}, {ProductID: "gone", Quantity: 4}, {ProductID: "reborn", Quantity: 4},
	}}
	if err := s.Reserve(ctx, r); err != nil {
		t.Fatalf("reserve: %v", err)
	}
	for _, id := range []string{"gone", "reborn"} {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	// A product created again under the same id gets nothing from old holds.
	mustCreate(t, s, airship("reborn", 1))
	for range 2 {
		if err := s.Release(ctx, r); err != nil {
			t.Fatalf("release: %v", err)
		}
	}
	if _, err := s.Get(ctx, "gone"); !errors.Is(err, products.ErrNotFound) {
		t.Fatalf("release resurrected a deleted product: %v", err)
	}
	if got := stockOf(t, s, "a"); got != 10 {
		t.Fatalf("stock of a: %d, want 10", got)
	}
	if got := stockOf(t, s, "reborn"); got != 1 {
		t.Fatalf("stock of recreated product: %d, want 1", got)
	}
}

func testExpired(t *testing.T, s products.Store) {
	ctx := context.Background()
	mustCreate(t, s, airship("a", 10))
	now := time.Now()
	for i, d := range []time.Duration{-3 * time.Minute, -2 * time.Minute, -time.Minute, time.Minute} {
		r := products.Reservation{ID: fmt.Sprintf("r%d", i), Deadline: now.Add(d), Lines: []products.Line{
			{ProductID: "a", Quantity: 1}, {ProductID: "a", Quantity: 1},
		}}
		if err := s.Reserve(ctx, r); err != nil {
			t.Fatalf("reserve %s: %v", r.ID, err)
		}
	}
	exp, err := s.Expired(ctx, now, 10)
	if err != nil {
		t.Fatalf("expired: %v", err)
	}
	if len(exp) != 3 {
		t.Fatalf("expired: got %d reservations, want 3: %+v", len(exp), exp)
	}
	for _, r := range exp {
		if r.ID == "r3" {
			t.Fatal("a reservation before its deadline is listed as expired")
		}
		if len(r.Lines) != 1 || r.Lines[0] != (products.Line{ProductID: "a", Quantity: 2}) {
			t.Fatalf("expired %s lines: %+v, want [{a 2}]", r.ID, r.Lines)
		}
		if !r.Deadline.Before(now) || now.Sub(r.Deadline) > 4*time.Minute {
			t.Fatalf("expired %s deadline %v, now %v", r.ID, r.Deadline, now)
		}
	}
	if exp, err := s.Expired(ctx, now, 2); err != nil || len(exp) != 2 {
		t.Fatalf("expired with limit 2: %d, %v", len(exp), err)
	}
	// The sweep releases them; they are no longer listed.
	for _, r := range exp {
		if err := s.Release(ctx, r); err != nil {
			t.Fatalf("release %s: %v", r.ID, err)
		}
	}
	if exp, err := s.Expired(ctx, now, 10); err != nil || len(exp) != 0 {
		t.Fatalf("expired after release: %+v, %v", exp, err)
	}
	if got := stockOf(t, s, "a"); got != 8 {
		t.Fatalf("stock: %d, want 8 (one live reservation of 2)", got)
	}
}

func testRestock(t *testing.T, s products.Store) {
	ctx := context.Background()
	mustCreate(t, s, airship("a", 1), airship("b", 1))
	lines := []products.Line{{ProductID: "a", Quantity: 2}, {ProductID: "ghost", Quantity: 5}, {ProductID: "a", Quantity: 1}}
	for range 3 {
		if err := s.Restock(ctx, "return-1", lines); err != nil {
			t.Fatalf("restock: %v", err)
		}
	}
	if got := stockOf(t, s, "a"); got != 4 {
		t.Fatalf("stock of a: %d, want 4", got)
	}
	if _, err := s.Get(ctx, "ghost"); !errors.Is(err, products.ErrNotFound) {
		t.Fatalf("restock created a product: %v", err)
	}
	if err := s.Restock(ctx, "return-2", []products.Line{{ProductID: "b", Quantity: 1}}); err != nil {
		t.Fatalf("restock: %v", err)
	}
	if got := stockOf(t, s, "b"); got != 2 {
		t.Fatalf("stock of b: %d, want 2", got)
	}
}
