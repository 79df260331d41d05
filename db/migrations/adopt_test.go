package migrations_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airshipltd/airship/db/migrations"
	"github.com/airshipltd/airship/internal/testbackend"
)

const oldRows = testbackend.LegacyOrders

func open(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func up(ctx context.Context, db *sql.DB) error {
	p, err := migrations.Provider(db, migrations.Postgres, nil)
	if err != nil {
		return err
	}
	return migrations.Up(ctx, db, migrations.Postgres, p, nil)
}

// schemaOf describes every table, column, constraint, index and sequence
// of the database but the version and adoption bookkeeping, sorted.
func schemaOf(t *testing.T, db *sql.DB) []string {
	t.Helper()
	const q = `
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
    || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
    || COALESCE(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || c.relname || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE c.relnamespace = 'public'::regnamespace
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = 'public'::regnamespace
UNION ALL
SELECT 'sequence ' || c.relname || ' owned by ' || COALESCE(d.refobjid::regclass::text, '-')
FROM pg_class c LEFT JOIN pg_depend d ON d.objid = c.oid AND d.deptype = 'a'
WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace`
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(s, "goose_db_version") || strings.Contains(s, "alembic_version") || strings.Contains(s, "airship_adoption") {
			continue
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestAdoptLegacySchema adopts the old schema with its rows: every row,
// id and timestamp is kept, sequences continue, the result is the schema
// airship's own migrations create, and the adoption is recorded.
func TestAdoptLegacySchema(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	db := open(t, testbackend.LegacyPostgresURL(t, oldRows))
	if _, pending, err := migrations.Describe(ctx, db, migrations.Postgres); err != nil || !pending {
		t.Fatalf("Describe before adoption = pending %v, %v; want pending", pending, err)
	}
	if err := up(ctx, db); err != nil {
		t.Fatalf("migrate up on the old schema: %v", err)
	}

	fresh := open(t, testbackend.PostgresURL(t))
	if got, want := schemaOf(t, db), schemaOf(t, fresh); !slices.Equal(got, want) {
		t.Errorf("adopted schema differs from airship's:\nadopted: %s\nairship: %s",
			strings.Join(got, "\n         "), strings.Join(want, "\n         "))
	}

	rows, err := db.Query(`SELECT o.id, o.created_at, o.updated_at, d.id, d.product_id, d.price::text, d.quantity, d.product_incarnation, d.created_at
FROM orders o JOIN order_details d ON d.order_id = o.id ORDER BY d.id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var (
			oid, did, qty          int64
			oc, ou, dc             time.Time
			product, price, incarn string
		)
		if err := rows.Scan(&oid, &oc, &ou, &did, &product, &price, &qty, &incarn, &dc); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %s %s %d %s %s %d %q %s", oid, oc.UTC().Format(time.RFC3339Nano), ou.UTC().Format(time.RFC3339Nano),
			did, product, price, qty, incarn, dc.UTC().Format(time.RFC3339Nano)))
	}
	rows.Close()
	want := []string{
		`1 2019-05-01T10:00:00.123456Z 2019-05-01T10:00:00.123456Z 1 the_odyssey 100000.99 1 "" 2019-05-01T10:00:00.123456Z`,
		`2 2019-05-02T11:30:00Z 2019-05-03T09:15:00Z 2 the_odyssey 5.00 2 "" 2019-05-02T11:30:00Z`,
		`2 2019-05-02T11:30:00Z 2019-05-03T09:15:00Z 3 the_enigma 99.90 1 "" 2019-05-02T11:30:00Z`,
		`4 2020-01-01T00:00:00Z 2020-01-01T00:00:00Z 5 the_enigma 0.00 3 "" 2020-01-01T00:00:00Z`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("rows after adoption:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	var orderID, lineID int64
	if err := db.QueryRow(`INSERT INTO orders DEFAULT VALUES RETURNING id`).Scan(&orderID); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`INSERT INTO order_details (order_id, product_id, price, quantity) VALUES ($1, 'x', 1, 1) RETURNING id`, orderID).Scan(&lineID); err != nil {
		t.Fatal(err)
	}
	if orderID != 5 || lineID != 6 {
		t.Errorf("new ids %d, %d; want 5, 6 (after the old ones)", orderID, lineID)
	}

	record, pending, err := migrations.Describe(ctx, db, migrations.Postgres)
	if err != nil || pending || record == nil {
		t.Fatalf("Describe after adoption = %+v, pending %v, %v", record, pending, err)
	}
	if record.Revision != migrations.LegacyRevision || record.Orders != 3 || record.OrderLines != 4 || len(record.Changes) < 5 {
		t.Errorf("adoption record %+v", record)
	}
	// Migrating again changes nothing.
	if err := up(ctx, db); err != nil {
		t.Fatalf("second migrate up: %v", err)
	}
	var adoptions int
	if err := db.QueryRow(`SELECT count(*) FROM airship_adoption`).Scan(&adoptions); err != nil || adoptions != 1 {
		t.Errorf("%d adoption records, %v; want 1", adoptions, err)
	}
}

// TestAdoptKeepsLinesThatBreakTheRules: old lines with a zero quantity or
// a negative price (the old shop did not check) are kept; the rules then
// hold for new and changed lines only.
func TestAdoptKeepsLinesThatBreakTheRules(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	db := open(t, testbackend.LegacyPostgresURL(t, `
INSERT INTO orders (id, created_at, updated_at) VALUES (1, now(), now());
INSERT INTO order_details (order_id, product_id, price, quantity, created_at, updated_at)
VALUES (1, 'a', -1, 0, now(), now());
SELECT setval('orders_id_seq', 1);`))
	if err := up(ctx, db); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM order_details WHERE quantity = 0`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("old line: %d, %v", n, err)
	}
	if _, err := db.Exec(`INSERT INTO order_details (order_id, product_id, price, quantity) VALUES (1, 'a', 1, 0)`); err == nil {
		t.Fatal("a new line with quantity 0 was accepted")
	}
}

// TestAdoptRefusesOtherSchemas: a database with the old tables in any
// other shape is refused with a message naming the difference, and left
// exactly as it was. That includes what the old shop's services did not
// notice but would break airship's ledger once adopted: a rule or a
// trigger that swallows a write, a table or sequence that a crash may
// empty, a sequence that hands out ids again or runs out, row level
// security, inheritance.
func TestAdoptRefusesOtherSchemas(t *testing.T) {
	cases := []struct {
		name       string
		statements []string
		difference string
	}{
		{"extra column", []string{`ALTER TABLE orders ADD COLUMN customer text`}, "column orders.customer is not in the old schema"},
		{"timestamptz", []string{`ALTER TABLE orders ALTER COLUMN created_at TYPE timestamptz`}, "column orders.created_at is timestamp with time zone NOT NULL"},
		{"integer product ids", []string{`ALTER TABLE order_details ALTER COLUMN product_id TYPE integer USING 0`}, "column order_details.product_id is integer"},
		{"nullable price", []string{`ALTER TABLE order_details ALTER COLUMN price DROP NOT NULL`}, "column order_details.price is numeric(18,2);"},
		{"missing column", []string{`ALTER TABLE order_details DROP COLUMN updated_at`}, "column order_details.updated_at is missing"},
		{"cascade", []string{`ALTER TABLE order_details DROP CONSTRAINT fk_order_details_orders,
			ADD CONSTRAINT fk_order_details_orders FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE`},
			"constraint order_details.fk_order_details_orders is FOREIGN KEY (order_id) REFERENCES orders(id) ON DELETE CASCADE"},
		{"no foreign key", []string{`ALTER TABLE order_details DROP CONSTRAINT fk_order_details_orders`}, "constraint order_details.fk_order_details_orders"},
		{"extra index", []string{`CREATE INDEX od_order ON order_details (order_id)`}, "index order_details.od_order"},
		{"extra check", []string{`ALTER TABLE order_details ADD CONSTRAINT positive CHECK (quantity > 0)`}, "constraint order_details.positive"},
		{"other revision", []string{`UPDATE alembic_version SET version_num = 'abc123'`}, `alembic_version holds ["abc123"]`},
		{"no alembic", []string{`DROP TABLE alembic_version`}, "table alembic_version is missing"},
		{"airship table beside", []string{`CREATE TABLE stock_returns (id text)`}, "table stock_returns belongs to airship's own schema"},
		{"orders only", []string{`DROP TABLE order_details`}, "table order_details is missing"},
		// What would break the ledger once adopted.
		{"rule keeps deleted orders", []string{`CREATE RULE keep_orders AS ON DELETE TO orders DO INSTEAD NOTHING`},
			"rule orders.keep_orders (ON DELETE TO public.orders DO INSTEAD NOTHING) is not in the old schema"},
		{"rule on lines", []string{`CREATE RULE no_updates AS ON UPDATE TO order_details DO INSTEAD NOTHING`},
			"rule order_details.no_updates"},
		{"trigger swallows deletes", []string{`CREATE FUNCTION swallow() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$`,
			`CREATE TRIGGER keep_orders BEFORE DELETE ON orders FOR EACH ROW EXECUTE FUNCTION swallow()`},
			"trigger orders.keep_orders is not in the old schema"},
		{"unlogged", []string{`ALTER TABLE order_details SET UNLOGGED`},
			"table order_details is UNLOGGED"},
		{"unlogged sequence", []string{`ALTER SEQUENCE orders_id_seq SET UNLOGGED`},
			"sequence orders_id_seq is UNLOGGED"},
		{"cycling sequence", []string{`ALTER SEQUENCE orders_id_seq MAXVALUE 5 CYCLE`},
			"sequence orders_id_seq ends at 5 (MAXVALUE)"},
		{"cycle", []string{`ALTER SEQUENCE order_details_id_seq CYCLE`},
			"sequence order_details_id_seq cycles"},
		{"increment", []string{`ALTER SEQUENCE order_details_id_seq INCREMENT 2`},
			"sequence order_details_id_seq increments by 2"},
		{"negative ids", []string{`ALTER SEQUENCE orders_id_seq MINVALUE -10`},
			"sequence orders_id_seq starts its range at -10 (MINVALUE)"},
		{"sequence owned by no column", []string{`ALTER SEQUENCE orders_id_seq OWNED BY NONE`},
			"sequence orders_id_seq belongs to no column; the old schema's belongs to orders.id"},
		{"sequence owned elsewhere", []string{`CREATE TABLE other (n integer)`, `ALTER SEQUENCE order_details_id_seq OWNED BY other.n`},
			"sequence order_details_id_seq belongs to other.n; the old schema's belongs to order_details.id"},
		{"sequence behind the ids", []string{`SELECT setval('orders_id_seq', 2)`},
			"sequence orders_id_seq hands out 3 next, but orders holds ids up to 4"},
		{"sequence exhausted", []string{`SELECT setval('order_details_id_seq', 2147483647)`},
			"sequence order_details_id_seq is exhausted"},
		{"row level security", []string{`ALTER TABLE orders ENABLE ROW LEVEL SECURITY`},
			"table orders has row level security enabled"},
		{"policy", []string{`CREATE POLICY only_some ON order_details USING (quantity < 100)`},
			"policy order_details.only_some is not in the old schema"},
		{"inherited", []string{`CREATE TABLE orders_archive () INHERITS (orders)`},
			"table orders_archive inherits from orders"},
		{"domain", []string{`CREATE DOMAIN small AS integer CHECK (VALUE < 10)`, `ALTER TABLE order_details ALTER COLUMN quantity TYPE small`},
			"column order_details.quantity is integer (domain small) NOT NULL"},
		{"generated column", []string{`ALTER TABLE order_details DROP COLUMN updated_at`,
			`ALTER TABLE order_details ADD COLUMN updated_at timestamp NOT NULL GENERATED ALWAYS AS (created_at) STORED`},
			"column order_details.updated_at is timestamp without time zone NOT NULL GENERATED ALWAYS AS (created_at) STORED"},
		{"replica role", []string{`DO $$BEGIN EXECUTE format('ALTER DATABASE %I SET session_replication_role = replica', current_database()); END$$`},
			"session_replication_role is replica"},
		{"partitioned", []string{`DROP TABLE order_details, orders`,
			`CREATE TABLE orders (
    id SERIAL NOT NULL,
    created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY (id)
) PARTITION BY RANGE (id)`,
			`CREATE TABLE orders_all PARTITION OF orders FOR VALUES FROM (MINVALUE) TO (MAXVALUE)`,
			`CREATE TABLE order_details (
    id SERIAL NOT NULL,
    order_id INTEGER NOT NULL,
    product_id VARCHAR NOT NULL,
    price NUMERIC(18, 2) NOT NULL,
    quantity INTEGER NOT NULL,
    created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT fk_order_details_orders FOREIGN KEY(order_id) REFERENCES orders (id)
)`, oldRows},
			"table orders is partitioned"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			db := open(t, testbackend.LegacyPostgresURL(t, append([]string{oldRows}, c.statements...)...))
			before := schemaOf(t, db)
			if _, _, err := migrations.Describe(ctx, db, migrations.Postgres); err == nil || !strings.Contains(err.Error(), c.difference) {
				t.Fatalf("Describe: %v; want an error naming %q", err, c.difference)
			}
			err := up(ctx, db)
			var legacy *migrations.LegacySchemaError
			if !errors.As(err, &legacy) || !strings.Contains(err.Error(), c.difference) {
				t.Fatalf("migrate up: %v; want a refusal naming %q", err, c.difference)
			}
			if after := schemaOf(t, db); !slices.Equal(before, after) {
				t.Errorf("refused schema was changed:\nbefore %v\nafter  %v", before, after)
			}
			var orders int
			if err := db.QueryRow(`SELECT count(*) FROM orders`).Scan(&orders); err != nil || orders != 3 {
				t.Errorf("orders after refusal: %d, %v", orders, err)
			}
		})
	}
}

// TestConcurrentAdoption: replicas starting together on the old schema
// all succeed, and the database is adopted once.
func TestConcurrentAdoption(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	url := testbackend.LegacyPostgresURL(t, oldRows)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		db := open(t, url)
		wg.Go(func() { errs[i] = up(ctx, db) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("runner %d: %v", i, err)
		}
	}
	db := open(t, url)
	var adoptions, orders int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM airship_adoption), (SELECT count(*) FROM orders)`).Scan(&adoptions, &orders); err != nil {
		t.Fatal(err)
	}
	if adoptions != 1 || orders != 3 {
		t.Errorf("%d adoptions, %d orders; want 1 and 3", adoptions, orders)
	}
}

// TestAnotherApplicationsAlembic: an alembic_version table without the
// old orders tables belongs to another application sharing the database;
// airship creates its schema beside it.
func TestAnotherApplicationsAlembic(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	db := open(t, testbackend.EmptyPostgresURL(t))
	if _, err := db.Exec(`CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY);
INSERT INTO alembic_version VALUES ('0123abcd')`); err != nil {
		t.Fatal(err)
	}
	if err := up(ctx, db); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	var adopted bool
	if err := db.QueryRow(`SELECT to_regclass('airship_adoption') IS NOT NULL`).Scan(&adopted); err != nil || adopted {
		t.Fatalf("adopted: %v, %v; want a plain airship schema", adopted, err)
	}
}
