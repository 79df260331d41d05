package products_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/redisstore"
	"github.com/airshipltd/airship/products/sqlitestore"
)

// TestMain fails the package if a test leaves goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type loader interface {
	products.Store
	Load(ctx context.Context, ps []products.Product, mode products.LoadMode) ([]products.Loaded, error)
}

var loaders = []struct {
	name string
	new  func(t *testing.T) loader
}{
	{"redis", func(t *testing.T) loader {
		rdb, prefix := testbackend.Redis(t)
		return redisstore.New(rdb, prefix)
	}},
	{"embedded", func(t *testing.T) loader { return sqlitestore.New(testbackend.SQLite(t)) }},
}

// TestLoad: Load creates what is absent (listed, with an incarnation),
// leaves equal and conflicting products alone, overwrites only when
// asked (keeping the incarnation), and writes nothing in a dry run.
func TestLoad(t *testing.T) {
	for _, l := range loaders {
		t.Run(l.name, func(t *testing.T) {
			ctx := context.Background()
			s := l.new(t)
			there := products.Product{ID: "there", Title: "There", PassengerCapacity: 1, MaximumSpeed: 2, InStock: 3}
			if err := s.Create(ctx, there); err != nil {
				t.Fatal(err)
			}
			before, _ := s.Get(ctx, "there")
			other := there
			other.InStock = 4
			fresh := products.Product{ID: "fresh", Title: "Fresh", PassengerCapacity: 5, MaximumSpeed: 6, InStock: 7}
			batch := []products.Product{there, other, fresh}
			batch[1].ID = "there" // same id, other stock
			load := func(mode products.LoadMode, ps ...products.Product) []products.Loaded {
				t.Helper()
				got, err := s.Load(ctx, ps, mode)
				if err != nil {
					t.Fatal(err)
				}
				return got
			}

			if got := load(products.LoadMode{DryRun: true, Overwrite: true}, fresh, other); !slices.Equal(got, []products.Loaded{products.Created, products.Overwritten}) {
				t.Fatalf("dry run = %v", got)
			}
			if ok, _ := s.Exists(ctx, "fresh"); ok {
				t.Fatal("dry run wrote a product")
			}
			if p, _ := s.Get(ctx, "there"); p != before {
				t.Fatalf("dry run changed %+v", p)
			}

			if got := load(products.LoadMode{}, there, fresh); !slices.Equal(got, []products.Loaded{products.Equal, products.Created}) {
				t.Fatalf("load = %v", got)
			}
			if got := load(products.LoadMode{}, other, fresh); !slices.Equal(got, []products.Loaded{products.Conflicting, products.Equal}) {
				t.Fatalf("load again = %v", got)
			}
			got, err := s.Get(ctx, "fresh")
			if err != nil || got.Incarnation == "" {
				t.Fatalf("created product %+v, %v; want one with an incarnation", got, err)
			}
			page, err := s.List(ctx, "", 10)
			if err != nil || len(page.Products) != 2 {
				t.Fatalf("list = %+v, %v", page, err)
			}

			// With an incarnation, equal means the same incarnation too.
			again := got
			again.Incarnation = "another"
			if r := load(products.LoadMode{}, got, again); !slices.Equal(r, []products.Loaded{products.Equal, products.Conflicting}) {
				t.Fatalf("load by incarnation = %v", r)
			}

			if r := load(products.LoadMode{Overwrite: true}, other); !slices.Equal(r, []products.Loaded{products.Overwritten}) {
				t.Fatalf("overwrite = %v", r)
			}
			p, _ := s.Get(ctx, "there")
			if p.InStock != 4 || p.Incarnation != before.Incarnation {
				t.Fatalf("overwritten product %+v; want stock 4 and incarnation %s", p, before.Incarnation)
			}
		})
	}
}

// TestUnload: Unload deletes the loaded products that are still as they
// were loaded, and leaves one changed since, one with a reservation in
// flight, one whose stock an order took, and one deleted and created
// again (another incarnation); each deleted one leaves the listing.
func TestUnload(t *testing.T) {
	ctx := t.Context()
	rdb, prefix := testbackend.Redis(t)
	s := redisstore.New(rdb, prefix)
	var ps []products.Product
	for _, id := range []string{"untouched", "patched", "held", "ordered", "recreated", "no-incarnation"} {
		p := products.Product{ID: id, Title: "T " + id, PassengerCapacity: 1, MaximumSpeed: 2, InStock: 10, Incarnation: "00" + id}
		if id == "no-incarnation" {
			p.Incarnation = ""
		}
		ps = append(ps, p)
	}
	if _, err := s.Load(ctx, ps, products.LoadMode{}); err != nil {
		t.Fatal(err)
	}
	title := "Patched meanwhile"
	if _, err := s.Update(ctx, "patched", products.Patch{Title: &title}); err != nil {
		t.Fatal(err)
	}
	hold := products.Reservation{ID: "r-held", Lines: []products.Line{{ProductID: "held", Quantity: 1}}, Deadline: time.Now().Add(time.Hour)}
	if _, err := s.Reserve(ctx, hold); err != nil {
		t.Fatal(err)
	}
	order := products.Reservation{ID: "r-ordered", Lines: []products.Line{{ProductID: "ordered", Quantity: 4}}, Deadline: time.Now().Add(time.Hour)}
	if _, err := s.Reserve(ctx, order); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, order); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "recreated"); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, products.Product{ID: "recreated", Title: "T recreated", PassengerCapacity: 1, MaximumSpeed: 2, InStock: 10}); err != nil {
		t.Fatal(err)
	}

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
}
