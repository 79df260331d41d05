package productstest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/airshipltd/airship/products"
)

// RunBulk runs the cases of what the commands call beyond Store: Load in
// each mode and Unload, and List walking what Load wrote, as export does.
// newStore returns an empty store for each case.
func RunBulk(t *testing.T, newStore func(t *testing.T) products.BulkStore) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s products.BulkStore)
	}{
		{"LoadModes", testLoadModes},
		{"LoadNothing", testLoadNothing},
		{"LoadedAreListed", testLoadedAreListed},
		{"Unload", testUnload},
		{"UnloadKeepsHeldStock", testUnloadKeepsHeldStock},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore(t)) })
	}
}

func load(t *testing.T, s products.BulkStore, mode products.LoadMode, ps ...products.Product) []products.Loaded {
	t.Helper()
	got, err := s.Load(t.Context(), ps, mode)
	if err != nil {
		t.Fatalf("Load(%+v): %v", mode, err)
	}
	return got
}

// testLoadModes: Load creates what is absent (with an incarnation),
// leaves equal and conflicting products alone, overwrites only when
// asked (keeping the incarnation), and writes nothing in a dry run.
func testLoadModes(t *testing.T, s products.BulkStore) {
	ctx := t.Context()
	there := products.Product{ID: "there", Title: "There", PassengerCapacity: 1, MaximumSpeed: 2, InStock: 3}
	mustCreate(t, s, there)
	before, _ := s.Get(ctx, "there")
	other := there
	other.InStock = 4 // the same id, other stock
	fresh := products.Product{ID: "fresh", Title: "Fresh", PassengerCapacity: 5, MaximumSpeed: 6, InStock: 7}
	c, e, k, o := products.Created, products.Equal, products.Conflicting, products.Overwritten

	if got := load(t, s, products.LoadMode{DryRun: true}, fresh, other, there); !slices.Equal(got, []products.Loaded{c, k, e}) {
		t.Fatalf("dry run = %v; want created, conflicting, equal", got)
	}
	if got := load(t, s, products.LoadMode{DryRun: true, Overwrite: true}, fresh, other); !slices.Equal(got, []products.Loaded{c, o}) {
		t.Fatalf("dry run overwriting = %v; want created, overwritten", got)
	}
	if ok, _ := s.Exists(ctx, "fresh"); ok {
		t.Fatal("a dry run created a product")
	}
	if p, _ := s.Get(ctx, "there"); p != before {
		t.Fatalf("a dry run changed %+v to %+v", before, p)
	}

	if got := load(t, s, products.LoadMode{}, there, fresh); !slices.Equal(got, []products.Loaded{e, c}) {
		t.Fatalf("load = %v; want equal, created", got)
	}
	if got := load(t, s, products.LoadMode{}, other, fresh); !slices.Equal(got, []products.Loaded{k, e}) {
		t.Fatalf("load again = %v; want conflicting, equal", got)
	}
	if p, _ := s.Get(ctx, "there"); p != before {
		t.Fatalf("a conflicting load changed %+v to %+v", before, p)
	}
	got, err := s.Get(ctx, "fresh")
	if err != nil || got.Incarnation == "" || got.Title != fresh.Title || got.InStock != fresh.InStock {
		t.Fatalf("created product %+v, %v; want %+v with an incarnation", got, err, fresh)
	}

	// With an incarnation, equal means the same incarnation too, and a
	// product created with one keeps it.
	again := got
	again.Incarnation = "another"
	if r := load(t, s, products.LoadMode{}, got, again); !slices.Equal(r, []products.Loaded{e, k}) {
		t.Fatalf("load by incarnation = %v; want equal, conflicting", r)
	}
	kept := products.Product{ID: "kept", Title: "Kept", InStock: 1, Incarnation: "0123456789abcdef"}
	load(t, s, products.LoadMode{}, kept)
	if p, err := s.Get(ctx, "kept"); err != nil || p != kept {
		t.Fatalf("loaded %+v, %v; want %+v (its incarnation kept)", p, err, kept)
	}

	if r := load(t, s, products.LoadMode{Overwrite: true}, other, fresh); !slices.Equal(r, []products.Loaded{o, e}) {
		t.Fatalf("overwrite = %v; want overwritten, equal", r)
	}
	p, _ := s.Get(ctx, "there")
	if p.InStock != 4 || p.Incarnation != before.Incarnation {
		t.Fatalf("overwritten product %+v; want stock 4 and incarnation %s", p, before.Incarnation)
	}
	// An overwritten product's stock still serves orders.
	if _, err := s.Reserve(ctx, reservation("r", line("there", 4))); err != nil {
		t.Fatalf("Reserve from an overwritten product: %v", err)
	}
}

// testLoadNothing: an empty batch writes nothing and reports nothing.
func testLoadNothing(t *testing.T, s products.BulkStore) {
	for _, mode := range []products.LoadMode{{}, {Overwrite: true}, {DryRun: true}} {
		if got := load(t, s, mode); len(got) != 0 {
			t.Fatalf("Load(nothing, %+v) = %v; want nothing", mode, got)
		}
	}
	if got, err := s.Unload(t.Context(), nil); err != nil || len(got) != 0 {
		t.Fatalf("Unload(nothing) = %v, %v; want nothing", got, err)
	}
	if page, err := s.List(t.Context(), "", 10); err != nil || len(page.Products) != 0 {
		t.Fatalf("List = %+v, %v; want an empty store", page, err)
	}
}

// testLoadedAreListed: products loaded in batches are listed in id
// order, each exactly once and as loaded, page after page, as export
// reads them.
func testLoadedAreListed(t *testing.T, s products.BulkStore) {
	const n, batch = 2345, 1000
	var want []products.Product
	for i := range n {
		p := products.Product{ID: fmt.Sprintf("loaded-%05d", i), Title: fmt.Sprintf("Loaded %d", i),
			PassengerCapacity: int64(i % 7), MaximumSpeed: int64(i % 11), InStock: int64(i)}
		if i%2 == 0 {
			p.Incarnation = fmt.Sprintf("%016x", i)
		}
		want = append(want, p)
	}
	for from := 0; from < n; from += batch {
		ps := want[from:min(from+batch, n)]
		for i, l := range load(t, s, products.LoadMode{}, ps...) {
			if l != products.Created {
				t.Fatalf("Load %s: %v; want created", ps[i].ID, l)
			}
		}
	}
	var got []products.Product
	for cursor := ""; ; {
		page, err := s.List(t.Context(), cursor, batch)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Products...)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if len(got) != n {
		t.Fatalf("listed %d products; want %d", len(got), n)
	}
	for i, p := range got {
		w := want[i]
		if w.Incarnation == "" {
			w.Incarnation = p.Incarnation
		}
		if p != w || p.Incarnation == "" {
			t.Fatalf("listed %+v at %d; want %+v with an incarnation", p, i, w)
		}
	}
}

// testUnload: Unload deletes the loaded products that are still as they
// were loaded, and leaves one changed since, one with a reservation in
// flight, one whose stock an order took, and one deleted and created
// again (another incarnation); each deleted one leaves the listing.
func testUnload(t *testing.T, s products.BulkStore) {
	ctx := t.Context()
	var ps []products.Product
	for _, id := range []string{"untouched", "patched", "held", "ordered", "recreated", "no-incarnation"} {
		p := products.Product{ID: id, Title: "T " + id, PassengerCapacity: 1, MaximumSpeed: 2, InStock: 10, Incarnation: "00" + id}
		if id == "no-incarnation" {
			p.Incarnation = ""
		}
		ps = append(ps, p)
	}
	load(t, s, products.LoadMode{}, ps...)
	title := "Patched meanwhile"
	if _, err := s.Update(ctx, "patched", products.Patch{Title: &title}); err != nil {
		t.Fatal(err)
	}
	if err := reserve(ctx, s, reservation("r-held", line("held", 1))); err != nil {
		t.Fatal(err)
	}
	order := reservation("r-ordered", line("ordered", 4))
	if err := reserve(ctx, s, order); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, order); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "recreated"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, products.Product{ID: "recreated", Title: "T recreated", PassengerCapacity: 1, MaximumSpeed: 2, InStock: 10})

	got, err := s.Unload(ctx, append(ps, products.Product{ID: "never-loaded", Title: "T"}))
	if err != nil {
		t.Fatal(err)
	}
	r, k, a := products.Removed, products.Kept, products.Absent
	if want := []products.Unloaded{r, k, k, k, k, r, a}; !slices.Equal(got, want) {
		t.Fatalf("Unload = %v; want %v (untouched and no-incarnation removed, never-loaded absent)", got, want)
	}
	page, err := s.List(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range page.Products {
		ids = append(ids, p.ID)
	}
	if want := []string{"held", "ordered", "patched", "recreated"}; !slices.Equal(ids, want) {
		t.Fatalf("listed after Unload: %v; want %v", ids, want)
	}
	// Unloading again finds the removed ones absent.
	got, err = s.Unload(ctx, ps[:1])
	if err != nil || !slices.Equal(got, []products.Unloaded{a}) {
		t.Fatalf("Unload again = %v, %v; want absent", got, err)
	}
}

// testUnloadKeepsHeldStock: a product whose fields are as given but that
// holds stock for an order in flight stays; once the reservation is
// released (and the stock is back), it goes.
func testUnloadKeepsHeldStock(t *testing.T, s products.BulkStore) {
	ctx := t.Context()
	p := products.Product{ID: "held", Title: "Held", PassengerCapacity: 1, MaximumSpeed: 2, InStock: 10}
	load(t, s, products.LoadMode{}, p)
	r := products.Reservation{ID: "r", Lines: []products.Line{line("held", 3)}, Deadline: time.Now().Add(time.Hour)}
	if err := reserve(ctx, s, r); err != nil {
		t.Fatal(err)
	}
	now := p
	now.InStock = 7 // as it is while the stock is held
	if got, err := s.Unload(ctx, []products.Product{now}); err != nil || !slices.Equal(got, []products.Unloaded{products.Kept}) {
		t.Fatalf("Unload while stock is held = %v, %v; want kept", got, err)
	}
	if err := s.Release(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Unload(ctx, []products.Product{p}); err != nil || !slices.Equal(got, []products.Unloaded{products.Removed}) {
		t.Fatalf("Unload after the release = %v, %v; want removed", got, err)
	}
	if ok, err := s.Exists(ctx, "held"); err != nil || ok {
		t.Fatalf("Exists after Unload = %v, %v; want false", ok, err)
	}
}
