package app_test

import (
	"strings"
	"testing"
)

// TestSeed: seed loads its products as import does, in batches, each
// with an incarnation, and orders over them; seeding again leaves the
// products that are there as they are (a client's change included) and
// says so.
func TestSeed(t *testing.T) {
	for _, b := range storeBackends() {
		t.Run(b.name, func(t *testing.T) {
			cfg := b.config(t)
			seed := func() string {
				t.Helper()
				out, err := runCommand(t, cfg, "seed", "--products", "2500", "--orders", "5", "--batch", "1000")
				if err != nil {
					t.Fatalf("seed: %v\n%s", err, out)
				}
				return out
			}
			if out := seed(); !strings.Contains(out, "seeded 2500 products") || strings.Contains(out, "already there") {
				t.Fatalf("seed wrote:\n%s\nwant 2500 products seeded, none there before", out)
			}
			s := startWith(t, cfg)
			s.expect(s.do("GET", "/products/seed-000002499", ""), 200,
				`{"id": "seed-000002499", "title": "Seeded airship 2499", "passenger_capacity": 54, "maximum_speed": 8, "in_stock": 1000}`)
			s.expect(s.do("GET", "/products/seed-000002500", ""), 404, "")
			s.expect(s.do("GET", "/orders/5", ""), 200, "")
			s.expect(s.do("PATCH", "/products/seed-000000007", `{"in_stock": 3}`), 200, "")
			s.stop()

			if out := seed(); !strings.Contains(out, "2500 of the products were already there and were left as they are") {
				t.Fatalf("seed again wrote:\n%s\nwant it to say that the 2500 products were there", out)
			}
			s = startWith(t, cfg)
			s.expect(s.do("GET", "/products/seed-000000007", ""), 200,
				`{"id": "seed-000000007", "title": "Seeded airship 7", "passenger_capacity": 17, "maximum_speed": 12, "in_stock": 3}`)
		})
	}
}
