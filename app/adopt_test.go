package app_test

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/airshipltd/airship/internal/testbackend"
)

// TestAdoptedShop starts airship on the old shop's database: `migrate
// status` announces the adoption, the old orders read back field for
// field, new orders get the next ids, and old orders can be changed and
// deleted.
func TestAdoptedShop(t *testing.T) {
	cfg := production(func(t testing.TB) string { return testbackend.LegacyPostgresURL(t, testbackend.LegacyOrders) })(t)
	env := []string{"AIRSHIP_POSTGRES_URL=" + cfg.PostgresURL, "AIRSHIP_REDIS_URL=" + cfg.RedisURL, "AIRSHIP_REDIS_PREFIX=" + cfg.RedisPrefix}

	out, err := migrateCmd(t, env, "status")
	if err != nil || !strings.Contains(out, "the old shop's schema (alembic revision dd33cb03d01f) is here") {
		t.Fatalf("migrate status before: %v\n%s", err, out)
	}

	s := startWith(t, cfg)
	s.expect(s.do("GET", "/readyz", ""), 200, "")
	s.expect(s.do("POST", "/products", odyssey), 200, "")
	s.expect(s.do("GET", "/orders/1", ""), 200, `{"id": 1, "order_details": [{
		"id": 1, "product_id": "the_odyssey", "price": "100000.99", "quantity": 1,
		"image": "http://www.example.com/airship/images/the_odyssey.jpg",
		"product": {"id": "the_odyssey", "title": "The Odyssey", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 10}}]}`)
	s.expect(s.do("GET", "/orders", ""), 200, `[
		{"id": 1, "order_details": [{"id": 1, "product_id": "the_odyssey", "price": "100000.99", "quantity": 1}]},
		{"id": 2, "order_details": [{"id": 2, "product_id": "the_odyssey", "price": "5.00", "quantity": 2},
			{"id": 3, "product_id": "the_enigma", "price": "99.90", "quantity": 1}]},
		{"id": 4, "order_details": [{"id": 5, "product_id": "the_enigma", "price": "0.00", "quantity": 3}]}]`)
	s.expect(s.do("GET", "/orders/4", ""), 200, `{"id": 4, "order_details": [{
		"id": 5, "product_id": "the_enigma", "price": "0.00", "quantity": 3,
		"image": "http://www.example.com/airship/images/the_enigma.jpg", "product": null}]}`)

	s.expect(s.do("POST", "/orders", `{"order_details": [{"product_id": "the_odyssey", "price": "1.50", "quantity": 1}]}`), 200, `{"id": 5}`)
	s.expect(s.do("GET", "/orders/5", ""), 200, `{"id": 5, "order_details": [{
		"id": 6, "product_id": "the_odyssey", "price": "1.50", "quantity": 1,
		"image": "http://www.example.com/airship/images/the_odyssey.jpg",
		"product": {"id": "the_odyssey", "title": "The Odyssey", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 9}}]}`)

	// Old lines took stock before incarnations were kept: their stock goes
	// back to whichever product has the id.
	s.expect(s.do("PUT", "/orders/2", `{"order_details": [{"id": 2, "quantity": 1}]}`), 200, "")
	s.expect(s.do("DELETE", "/orders/1", ""), 204, "")
	s.expect(s.do("GET", "/products/the_odyssey", ""), 200, strings.Replace(odyssey, `"in_stock": 10`, `"in_stock": 11`, 1))
	s.expectError(s.do("GET", "/orders/1", ""), 404, "ORDER_NOT_FOUND")

	out, err = migrateCmd(t, env, "status")
	if err != nil || !strings.Contains(out, "adopted the old shop's schema (alembic revision dd33cb03d01f)") ||
		!strings.Contains(out, "keeping 3 orders and 4 order lines") {
		t.Fatalf("migrate status after: %v\n%s", err, out)
	}
}

// TestOtherSchemaRefused: airship does not start on a database whose
// orders table is neither its own nor the old shop's, and says why.
func TestOtherSchemaRefused(t *testing.T) {
	url := testbackend.LegacyPostgresURL(t, `ALTER TABLE orders ADD COLUMN customer text`)
	env := []string{"AIRSHIP_POSTGRES_URL=" + url, "AIRSHIP_REDIS_URL=" + testbackend.RedisURL(), "AIRSHIP_REDIS_PREFIX=" + testbackend.RedisPrefix(t)}
	for _, args := range [][]string{{"status"}, {"up"}} {
		out, err := migrateCmd(t, env, args...)
		if err == nil || !strings.Contains(out, "column orders.customer is not in the old schema") || !strings.Contains(out, "nothing was changed") {
			t.Fatalf("migrate %s: %v\n%s", args[0], err, out)
		}
	}
}

// TestAdoptRefusesALedgerBreakingSchema: an old schema that would break
// the ledger once adopted (a rule that keeps deleted orders, a table a
// crash may empty, a sequence that hands out ids again) is refused by
// `migrate status` and `migrate up`, each problem named, and left as it
// was.
func TestAdoptRefusesALedgerBreakingSchema(t *testing.T) {
	url := testbackend.LegacyPostgresURL(t, testbackend.LegacyOrders,
		`CREATE RULE keep_orders AS ON DELETE TO orders DO INSTEAD NOTHING`,
		`ALTER TABLE order_details SET UNLOGGED`,
		`ALTER SEQUENCE orders_id_seq MAXVALUE 5 CYCLE`)
	env := []string{"AIRSHIP_POSTGRES_URL=" + url, "AIRSHIP_REDIS_URL=" + testbackend.RedisURL(), "AIRSHIP_REDIS_PREFIX=" + testbackend.RedisPrefix(t)}
	problems := []string{
		"rule orders.keep_orders (ON DELETE TO public.orders DO INSTEAD NOTHING) is not in the old schema",
		"table order_details is UNLOGGED",
		"sequence order_details_id_seq is UNLOGGED",
		"sequence orders_id_seq ends at 5 (MAXVALUE)",
		"sequence orders_id_seq cycles",
		"nothing was changed",
	}
	for _, args := range [][]string{{"status"}, {"up"}} {
		out, err := migrateCmd(t, env, args...)
		if err == nil {
			t.Fatalf("migrate %s succeeded:\n%s", args[0], out)
		}
		for _, p := range problems {
			if !strings.Contains(out, p) {
				t.Errorf("migrate %s does not say %q:\n%s", args[0], p, out)
			}
		}
	}
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var adopted, versioned, rule bool
	if err := db.QueryRowContext(t.Context(), `SELECT to_regclass('airship_adoption') IS NOT NULL,
    to_regclass('goose_db_version') IS NOT NULL, EXISTS (SELECT 1 FROM pg_rules WHERE rulename = 'keep_orders')`).
		Scan(&adopted, &versioned, &rule); err != nil {
		t.Fatal(err)
	}
	if adopted || versioned || !rule {
		t.Fatalf("after the refusals: adoption record %v, goose table %v, rule still there %v; want false, false, true", adopted, versioned, rule)
	}
}
