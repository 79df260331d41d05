// Package productstest is the contract suite of products.Store: the same
// cases, with the same expectations, run against every implementation.
package productstest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airshipltd/airship/products"
)

// Run runs the suite. newStore returns an empty store for each case.
func Run(t *testing.T, newStore func(t *testing.T) products.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s products.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateExisting", testCreateExisting},
		{"GetManyMissing", testGetManyMissing},
		{"Update", testUpdate},
		{"Delete", testDelete},
		{"ListPages", testListPages},
		{"ListWhileWriting", testListWhileWriting},
		{"ListBadCursor", testListBadCursor},
		{"ListFollowsToTheEnd", testListFollowsToTheEnd},
		{"ListProperty", testListProperty},
		{"ReserveCommit", testReserveCommit},
		{"ReserveAllOrNothing", testReserveAllOrNothing},
		{"ReserveMergesLines", testReserveMergesLines},
		{"ReserveNotFound", testReserveNotFound},
		{"ReserveIdempotent", testReserveIdempotent},
		{"ReleaseIdempotent", testReleaseIdempotent},
		{"ReleaseAfterDelete", testReleaseAfterDelete},
		{"Expired", testExpired},
		{"Restock", testRestock},
		{"Incarnations", testIncarnations},
		{"ParallelNoOversell", testParallelNoOversell},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore(t)) })
	}
}

func airship(id string, stock int64) products.Product {
	return products.Product{ID: id, Title: "The " + id, PassengerCapacity: 101, MaximumSpeed: 5, InStock: stock}
}

func mustCreate(t *testing.T, s products.Store, ps ...products.Product) {
	t.Helper()
	for _, p := range ps {
		if err := s.Create(t.Context(), p); err != nil {
			t.Fatalf("Create(%s): %v", p.ID, err)
		}
	}
}

func stockOf(t *testing.T, s products.Store, id string) int64 {
	t.Helper()
	p, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return p.InStock
}

func reservation(id string, lines ...products.Line) products.Reservation {
	return products.Reservation{ID: id, Lines: lines, Deadline: time.Now().Add(time.Minute)}
}

func line(id string, q int64) products.Line { return products.Line{ProductID: id, Quantity: q} }

// reserve is Reserve for the cases that do not look at the incarnations.
func reserve(ctx context.Context, s products.Store, r products.Reservation) error {
	_, err := s.Reserve(ctx, r)
	return err
}

func testCreateGet(t *testing.T, s products.Store) {
	ctx := t.Context()
	want := products.Product{ID: "the_odyssey-0.8623041", Title: "The Odyssey ✈", PassengerCapacity: 101, MaximumSpeed: 5, InStock: 2147483647}
	mustCreate(t, s, want)
	got, err := s.Get(ctx, want.ID)
	if err != nil || got.Incarnation == "" {
		t.Fatalf("Get = %+v, %v; want a product with an incarnation", got, err)
	}
	if want.Incarnation = got.Incarnation; got != want {
		t.Fatalf("Get = %+v; want %+v", got, want)
	}
	ok, err := s.Exists(ctx, want.ID)
	if err != nil || !ok {
		t.Fatalf("Exists = %v, %v; want true", ok, err)
	}
	ok, err = s.Exists(ctx, "nope")
	if err != nil || ok {
		t.Fatalf("Exists(nope) = %v, %v; want false", ok, err)
	}
	_, err = s.Get(ctx, "nope")
	var nf *products.NotFoundError
	if !errors.As(err, &nf) || nf.ID != "nope" || !errors.Is(err, products.ErrNotFound) {
		t.Fatalf("Get(nope) error = %v; want NotFoundError naming nope", err)
	}
}

func testCreateExisting(t *testing.T, s products.Store) {
	mustCreate(t, s, airship("a", 1))
	err := s.Create(t.Context(), airship("a", 5))
	if !errors.Is(err, products.ErrExists) {
		t.Fatalf("second Create error = %v; want ErrExists", err)
	}
	if got := stockOf(t, s, "a"); got != 1 {
		t.Fatalf("stock after refused Create = %d; want 1 (unchanged)", got)
	}
}

func testGetManyMissing(t *testing.T, s products.Store) {
	ctx := t.Context()
	mustCreate(t, s, airship("a", 1), airship("b", 2))
	got, err := s.GetMany(ctx, []string{"a", "x", "b", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a"].InStock != 1 || got["b"].InStock != 2 {
		t.Fatalf("GetMany = %+v; want a and b", got)
	}
	if got, err := s.GetMany(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("GetMany(nil) = %v, %v", got, err)
	}
}

func testUpdate(t *testing.T, s products.Store) {
	ctx := t.Context()
	mustCreate(t, s, airship("a", 1))
	title, stock := "Renamed", int64(7)
	got, err := s.Update(ctx, "a", products.Patch{Title: &title, InStock: &stock})
	want := products.Product{ID: "a", Title: "Renamed", PassengerCapacity: 101, MaximumSpeed: 5, InStock: 7,
		Incarnation: got.Incarnation}
	if err != nil || got != want || got.Incarnation == "" {
		t.Fatalf("Update = %+v, %v; want %+v", got, err, want)
	}
	if again, _ := s.Get(ctx, "a"); again != want {
		t.Fatalf("Get after Update = %+v; want %+v", again, want)
	}
	if _, err := s.Update(ctx, "nope", products.Patch{Title: &title}); !errors.Is(err, products.ErrNotFound) {
		t.Fatalf("Update(nope) error = %v; want ErrNotFound", err)
	}
	if ok, _ := s.Exists(ctx, "nope"); ok {
		t.Fatal("Update(nope) created the product")
	}
}

func testDelete(t *testing.T, s products.Store) {
	ctx := t.Context()
	mustCreate(t, s, airship("a", 1))
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, products.ErrNotFound) {
		t.Fatalf("Get after Delete error = %v; want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "a"); !errors.Is(err, products.ErrNotFound) {
		t.Fatalf("second Delete error = %v; want ErrNotFound", err)
	}
}

func testListPages(t *testing.T, s products.Store) {
	ctx := t.Context()
	const n = 257
	for i := range n {
		mustCreate(t, s, airship(fmt.Sprintf("p%03d", i), int64(i)))
	}
	seen := map[string]int{}
	cursor, pages := "", 0
	for {
		page, err := s.List(ctx, cursor, 50)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Products) > 50 {
			t.Fatalf("page of %d products; limit 50", len(page.Products))
		}
		for _, p := range page.Products {
			seen[p.ID]++
			want := airship(p.ID, p.InStock)
			if want.Incarnation = p.Incarnation; p != want {
				t.Fatalf("listed %+v; want %+v", p, want)
			}
		}
		pages++
		if page.Next == "" {
			break
		}
		if pages > n {
			t.Fatal("listing does not end")
		}
		cursor = page.Next
	}
	if len(seen) != n {
		t.Fatalf("listing returned %d distinct products; want %d", len(seen), n)
	}
	if pages < 6 {
		t.Fatalf("listing took %d pages; want at least 6 of 50", pages)
	}
}

// testListWhileWriting: products that exist throughout a listing are all
// listed, however many are created meanwhile (Redis rehashes its keyspace
// as it grows, which reorders what SCAN returns).
func testListWhileWriting(t *testing.T, s products.Store) {
	ctx := t.Context()
	const n = 300
	for i := range n {
		mustCreate(t, s, airship(fmt.Sprintf("old%03d", i), 1))
	}
	seen := map[string]bool{}
	cursor, created := "", 0
	for pages := 0; ; pages++ {
		page, err := s.List(ctx, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Products) > 7 {
			t.Fatalf("page of %d products; limit 7", len(page.Products))
		}
		for _, p := range page.Products {
			seen[p.ID] = true
		}
		if page.Next == "" || pages > 100000 {
			break
		}
		cursor = page.Next
		if pages < 4 { // grow the keyspace several times over between pages
			for range 600 {
				mustCreate(t, s, airship(fmt.Sprintf("new%05d", created), 1))
				created++
			}
		}
	}
	for i := range n {
		if id := fmt.Sprintf("old%03d", i); !seen[id] {
			t.Fatalf("product %s existed throughout the listing but was not listed", id)
		}
	}
}

func testListBadCursor(t *testing.T, s products.Store) {
	for _, c := range []string{"garbage", "-1", "1-x", "%%%", "0", "5:a*b", "5:"} {
		if _, err := s.List(t.Context(), c, 10); !errors.Is(err, products.ErrBadCursor) {
			t.Errorf("List(cursor %q) error = %v; want ErrBadCursor", c, err)
		}
	}
}

func testReserveCommit(t *testing.T, s products.Store) {
	ctx := t.Context()
	mustCreate(t, s, airship("a", 10), airship("b", 5))
	r := reservation("r1", line("a", 3), line("b", 5))
	if err := reserve(ctx, s, r); err != nil {
		t.Fatal(err)
	}
	if a, b := stockOf(t, s, "a"), stockOf(t, s, "b"); a != 7 || b != 0 {
		t.Fatalf("stock after Reserve = %d, %d; want 7, 0", a, b)
	}
	if err := s.Commit(ctx, r); err != nil {
		t.Fatal(err)
	}
	// A committed reservation's stock stays taken, even if released later.
	if err := s.Release(ctx, r); err != nil {
		t.Fatal(err)
	}
	if a, b := stockOf(t, s, "a"), stockOf(t, s, "b"); a != 7 || b != 0 {
		t.Fatalf("stock after Commit and Release = %d, %d; want 7, 0", a, b)
	}
	if exp, err := s.Expired(ctx, time.Now().Add(time.Hour), 10); err != nil || len(exp) != 0 {
		t.Fatalf("Expired after Commit = %v, %v; want none", exp, err)
	}
}

func testReserveAllOrNothing(t *testing.T, s products.Store) {
	ctx := t.Context()
	mustCreate(t, s, airship("a", 10), airship("b", 1))
	err := reserve(ctx, s, reservation("r1", line("a", 3), line("b", 2)))
	var oos *products.OutOfStockError
	if !errors.As(err, &oos) || oos.ID != "b" || oos.Requested != 2 || oos.Available != 1 {
		t.Fatalf("Reserve error = %v; want OutOfStockError{b, 2, 1}", err)
	}
	if a, b := stockOf(t, s, "a"), stockOf(t, s, "b"); a != 10 || b != 1 {
		t.Fatalf("stock after refused Reserve = %d, %d; want 10, 1 (unchanged)", a, b)
	}
	if exp, err := s.Expired(ctx, time.Now().Add(time.Hour), 10); err != nil || len(exp) != 0 {
		t.Fatalf("Expired after refused Reserve = %v, %v; want none", exp, err)
	}
}

func testReserveMergesLines(t *testing.T, s products.Store) {
	ctx := t.Context()
	mustCreate(t, s, airship("a", 3))
	// 2 + 2 > 3: the lines of one product count together.
	if err := reserve(ctx, s, reservation("r1", line("a", 2), line("a", 2))); !errors.Is(err, products.ErrOutOfStock) {
		t.Fatalf("Reserve error = %v; want ErrOutOfStock", err)
	}
	if err := reserve(ctx, s, reservation("r2", line("a", 1), line("a", 2))); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, s, "a"); got != 0 {
		t.Fatalf("stock = %d; want 0", got)
	}
}

func testReserveNotFound(t *testing.T, s products.Store) {
	ctx := t.Context()
	mustCreate(t, s, airship("a", 3))
	err := reserve(ctx, s, reservation("r1", line("a", 1), line("ghost", 1)))
	var nf *products.NotFoundError
	if !errors.As(err, &nf) || nf.ID != "ghost" {
		t.Fatalf("Reserve error = %v; want NotFoundError naming ghost", err)
	}
	if got := stockOf(t, s, "a"); got != 3 {
		t.Fatalf("stock = %d; want 3 (unchanged)", got)
	}
}

func testReserveIdempotent(t *testing.T, s products.Store) {
	ctx := t.Context()
	mustCreate(t, s, airship("a", 5))
	r := reservation("r1", line("a", 2))
	for range 3 {
		if err := reserve(ctx, s, r); err != nil {
			t.Fatal(err)
		}
	}
	if got := stockOf(t, s, "a"); got != 3 {
		t.Fatalf("stock after the same Reserve three times = %d; want 3", got)
	}
}

func testReleaseIdempotent(t *testing.T, s products.Store) {
	ctx := t.Context()
	mustCreate(t, s, airship("a", 5))
	r := reservation("r1", line("a", 2))
	if err := reserve(ctx, s, r); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.Release(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if got := stockOf(t, s, "a"); got != 5 {
		t.Fatalf("stock after Release three times = %d; want 5", got)
	}
}

func testReleaseAfterDelete(t *testing.T, s products.Store) {
	ctx := t.Context()
	mustCreate(t, s, airship("a", 5))
	r := reservation("r1", line("a", 2))
	if err := reserve(ctx, s, r); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, r); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Exists(ctx, "a"); ok {
		t.Fatal("Release brought a deleted product back")
	}
	// A product re-created under the same id does not get the old stock.
	mustCreate(t, s, airship("a", 1))
	if err := s.Release(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, s, "a"); got != 1 {
		t.Fatalf("stock of re-created product = %d; want 1", got)
	}
}

func testExpired(t *testing.T, s products.Store) {
	ctx := t.Context()
	mustCreate(t, s, airship("a", 5), airship("b", 5))
	now := time.Now()
	old := products.Reservation{ID: "old", Lines: []products.Line{line("a", 1), line("b", 2)}, Deadline: now.Add(-time.Second)}
	fresh := products.Reservation{ID: "fresh", Lines: []products.Line{line("a", 1)}, Deadline: now.Add(time.Hour)}
	for _, r := range []products.Reservation{old, fresh} {
		if err := reserve(ctx, s, r); err != nil {
			t.Fatal(err)
		}
	}
	exp, err := s.Expired(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != 1 || exp[0].ID != "old" || len(exp[0].Lines) != 2 {
		t.Fatalf("Expired = %+v; want only old with its 2 lines", exp)
	}
	got := map[string]int64{}
	for _, l := range exp[0].Lines {
		got[l.ProductID] = l.Quantity
	}
	if got["a"] != 1 || got["b"] != 2 {
		t.Fatalf("expired lines = %v; want a:1 b:2", got)
	}
	if err := s.Release(ctx, exp[0]); err != nil {
		t.Fatal(err)
	}
	if a, b := stockOf(t, s, "a"), stockOf(t, s, "b"); a != 4 || b != 5 {
		t.Fatalf("stock after releasing old = %d, %d; want 4, 5", a, b)
	}
	if exp, _ := s.Expired(ctx, now, 10); len(exp) != 0 {
		t.Fatalf("Expired after Release = %+v; want none", exp)
	}
}

func testRestock(t *testing.T, s products.Store) {
	ctx := t.Context()
	mustCreate(t, s, airship("a", 1))
	for range 2 { // the same restock twice counts once
		if err := s.Restock(ctx, "ret1", []products.Line{line("a", 2), line("gone", 3), line("a", 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := stockOf(t, s, "a"); got != 4 {
		t.Fatalf("stock after Restock = %d; want 4", got)
	}
	if ok, _ := s.Exists(ctx, "gone"); ok {
		t.Fatal("Restock created a product that does not exist")
	}
	if err := s.Restock(ctx, "ret2", []products.Line{line("a", 1)}); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, s, "a"); got != 5 {
		t.Fatalf("stock after a second Restock = %d; want 5", got)
	}
}

func testParallelNoOversell(t *testing.T, s products.Store) {
	ctx := t.Context()
	const stock, clients = 20, 64
	mustCreate(t, s, airship("a", stock), airship("b", 1000))
	var ok, short atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			err := reserve(ctx, s, reservation(fmt.Sprintf("r%d", i), line("b", 1), line("a", 1)))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, products.ErrOutOfStock):
				short.Add(1)
			default:
				t.Errorf("Reserve: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != stock || short.Load() != clients-stock {
		t.Fatalf("%d reservations succeeded, %d out of stock; want %d and %d", ok.Load(), short.Load(), stock, clients-stock)
	}
	if a, b := stockOf(t, s, "a"), stockOf(t, s, "b"); a != 0 || b != 1000-stock {
		t.Fatalf("stock = %d, %d; want 0, %d", a, b, 1000-stock)
	}
}

// walk follows a listing from the first page to the last with limit and
// returns how often each product was listed. A cursor the store refuses,
// a page over the limit or a listing that never ends fails the test.
func walk(t *testing.T, s products.Store, limit, most int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	cursor := ""
	for pages := 0; ; pages++ {
		page, err := s.List(t.Context(), cursor, limit)
		if err != nil {
			t.Fatalf("List(limit %d) page %d, cursor %q: %v", limit, pages, cursor, err)
		}
		if len(page.Products) > limit {
			t.Fatalf("page of %d products; limit %d", len(page.Products), limit)
		}
		for _, p := range page.Products {
			seen[p.ID]++
		}
		if page.Next == "" {
			return seen
		}
		if pages > most {
			t.Fatalf("listing with limit %d does not end after %d pages", limit, pages)
		}
		cursor = page.Next
	}
}

// testListFollowsToTheEnd: for small catalogues and every limit, following
// the cursors reaches the end with every product exactly once, whatever
// the last page holds (the cases where the last SCAN batch's leftovers fill
// it exactly once ended with a cursor the store refused).
func testListFollowsToTheEnd(t *testing.T, s products.Store) {
	for n := range 7 {
		if n > 0 {
			mustCreate(t, s, airship(fmt.Sprintf("f%d", n), 1))
		}
		for limit := 1; limit <= n+1; limit++ {
			seen := walk(t, s, limit, 100)
			if len(seen) != n {
				t.Fatalf("%d products, limit %d: listed %d distinct", n, limit, len(seen))
			}
			for id, times := range seen {
				if times != 1 {
					t.Fatalf("%d products, limit %d: %s listed %d times", n, limit, id, times)
				}
			}
		}
	}
}

// testListProperty walks catalogues of random sizes with random limits
// while other products are created and deleted: every product that exists
// throughout the walk is listed exactly once, no product is listed twice,
// and the walk ends without an error.
func testListProperty(t *testing.T, s products.Store) {
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	stable := 0
	for round := range 12 {
		for range rng.IntN(120) {
			mustCreate(t, s, airship(fmt.Sprintf("s%05d", stable), 1))
			stable++
		}
		limit := 1 + rng.IntN(40)
		if round%3 == 0 {
			limit = 1 + rng.IntN(3)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { // concurrent writes of products that come and go
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("tmp%d-%d", round, i)
				if err := s.Create(ctx, airship(id, 1)); err != nil {
					t.Errorf("Create(%s): %v", id, err)
					return
				}
				if i%2 == 0 {
					if err := s.Delete(ctx, id); err != nil {
						t.Errorf("Delete(%s): %v", id, err)
						return
					}
				}
			}
		})
		seen := func() map[string]int {
			defer func() { close(stop); wg.Wait() }() // also when walk fails
			return walk(t, s, limit, 100000)
		}()
		for i := range stable {
			if id := fmt.Sprintf("s%05d", i); seen[id] != 1 {
				t.Fatalf("round %d (%d stable products, limit %d): %s listed %d times; want once",
					round, stable, limit, id, seen[id])
			}
		}
		for id, times := range seen {
			if times > 1 {
				t.Fatalf("round %d (limit %d): %s listed %d times", round, limit, id, times)
			}
		}
	}
}

// testIncarnations: a product deleted and created again under its id is a
// new incarnation; stock taken from the old one never reaches the new one.
func testIncarnations(t *testing.T, s products.Store) {
	ctx := t.Context()
	mustCreate(t, s, airship("a", 10))
	first, _ := s.Get(ctx, "a")
	taken, err := s.Reserve(ctx, reservation("r1", line("a", 3)))
	if err != nil || taken["a"] != first.Incarnation || first.Incarnation == "" {
		t.Fatalf("Reserve = %v, %v; want a taken from incarnation %q", taken, err, first.Incarnation)
	}
	again, err := s.Reserve(ctx, reservation("r1", line("a", 3)))
	if err != nil || again["a"] != first.Incarnation {
		t.Fatalf("repeated Reserve = %v, %v; want the same incarnation", again, err)
	}
	if err := s.Commit(ctx, reservation("r1", line("a", 3))); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, airship("a", 10))
	second, _ := s.Get(ctx, "a")
	if second.Incarnation == first.Incarnation {
		t.Fatalf("re-created product kept incarnation %q", first.Incarnation)
	}
	old := products.Line{ProductID: "a", Quantity: 3, Incarnation: first.Incarnation}
	if err := s.Restock(ctx, "back-to-old", []products.Line{old}); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, s, "a"); got != 10 {
		t.Fatalf("stock after a restock of the old incarnation = %d; want 10", got)
	}
	if err := reserve(ctx, s, reservation("r2", old)); !errors.Is(err, products.ErrNotFound) {
		t.Fatalf("Reserve from the old incarnation: %v; want ErrNotFound", err)
	}
	current := products.Line{ProductID: "a", Quantity: 2, Incarnation: second.Incarnation}
	if err := reserve(ctx, s, reservation("r3", current)); err != nil {
		t.Fatal(err)
	}
	if err := s.Restock(ctx, "back-to-current", []products.Line{current}); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, s, "a"); got != 10 {
		t.Fatalf("stock after taking and restocking 2 of the current incarnation = %d; want 10", got)
	}
	// A kept incarnation (an import) is kept.
	mustCreate(t, s, products.Product{ID: "b", Title: "B", InStock: 1, Incarnation: "0123456789abcdef"})
	if b, _ := s.Get(ctx, "b"); b.Incarnation != "0123456789abcdef" {
		t.Fatalf("incarnation %q; want the one given", b.Incarnation)
	}
}
