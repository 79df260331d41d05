package migrations

// Adopting the old shop's PostgreSQL schema in place.
//
// The orders service that airship replaces kept its orders in two tables
// created by an alembic migration (revision dd33cb03d01f): orders and
// order_details, timestamps without time zone written in UTC, a foreign
// key fk_order_details_orders without cascade, and alembic's own
// alembic_version table. Their columns are those of airship's first
// migration (00001_init.sql) with older types. On a database that holds
// exactly that schema and no airship migration yet, Adopt turns it into
// the schema 00001_init.sql creates, in place and in one transaction:
// every row, id and sequence is kept (new ids continue after the old
// ones), the columns get airship's types and defaults, the constraints
// and index airship relies on are added, and the two bookkeeping tables
// of 00001 are created. It then records version 1 in goose's version
// table, so that goose applies the later migrations as on any airship
// database, and writes what it did to the table airship_adoption.
//
// alembic_version is left as it was, and every column the old services
// use keeps its name and meaning, so that they can still run on the
// adopted database if a migration to airship is rolled back.
//
// Any other schema with an orders or order_details table and no airship
// migration is refused with the list of differences, and left untouched.
// Exactly includes what the old services never depended on but airship's
// ledger does (ledgerDifferences): no rule, trigger, policy or row level
// security that could change what a statement does; plain, logged tables;
// id sequences that hand out every id of the API's range once, after the
// ids already there.

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

// LegacyRevision is the alembic revision of the old shop's schema that
// airship adopts.
const LegacyRevision = "dd33cb03d01f"

// versionTable is goose's version table (its default name).
const versionTable = "goose_db_version"

// legacyTables are the tables the old shop's schema has; the first two
// are the ones whose presence makes airship look.
var legacyTables = []string{"orders", "order_details", "alembic_version"}

// airshipTables are the tables airship's migrations or Adopt create; one
// of them beside the legacy tables means another schema.
var airshipTables = []string{"stock_reservations", "stock_returns", "idempotency_keys", "outbox", "airship_adoption"}

// column is a column as information_schema describes it.
type column struct {
	Type     string // data_type
	Domain   string // domain_name: a domain's checks apply to the column
	Nullable bool
	Length   sql.NullInt64  // character_maximum_length
	Decimal  [2]int64       // numeric precision and scale, when numeric
	Default  sql.NullString // column_default
}

func (c column) String() string {
	s := c.Type
	if c.Length.Valid {
		s += fmt.Sprintf("(%d)", c.Length.Int64)
	}
	if c.Type == "numeric" {
		s += fmt.Sprintf("(%d,%d)", c.Decimal[0], c.Decimal[1])
	}
	if c.Domain != "" {
		s += " (domain " + c.Domain + ")"
	}
	if !c.Nullable {
		s += " NOT NULL"
	}
	switch {
	case c.Default.Valid && strings.HasPrefix(c.Default.String, "GENERATED "):
		s += " " + c.Default.String
	case c.Default.Valid:
		s += " DEFAULT " + c.Default.String
	}
	return s
}

func serial(table string) sql.NullString {
	return sql.NullString{String: "nextval('" + table + "_id_seq'::regclass)", Valid: true}
}

var (
	integer   = column{Type: "integer"}
	timestamp = column{Type: "timestamp without time zone"}
)

// legacyColumns is the old schema's columns, table by table.
var legacyColumns = map[string]map[string]column{
	"orders": {
		"id":         {Type: "integer", Default: serial("orders")},
		"created_at": timestamp,
		"updated_at": timestamp,
	},
	"order_details": {
		"id":         {Type: "integer", Default: serial("order_details")},
		"order_id":   integer,
		"product_id": {Type: "character varying"},
		"price":      {Type: "numeric", Decimal: [2]int64{18, 2}},
		"quantity":   integer,
		"created_at": timestamp,
		"updated_at": timestamp,
	},
	"alembic_version": {
		"version_num": {Type: "character varying", Length: sql.NullInt64{Int64: 32, Valid: true}},
	},
}

// legacyConstraints is the old schema's constraints on orders and
// order_details, by name (alembic_version's own key is not checked).
var legacyConstraints = map[string]string{
	"orders.orders_pkey":                    "PRIMARY KEY (id)",
	"order_details.order_details_pkey":      "PRIMARY KEY (id)",
	"order_details.fk_order_details_orders": "FOREIGN KEY (order_id) REFERENCES orders(id)",
}

// legacyIndexes is the old schema's indexes on orders and order_details.
var legacyIndexes = []string{"order_details.order_details_pkey", "orders.orders_pkey"}

const (
	sqlTables = `SELECT table_name FROM information_schema.tables
WHERE table_schema = current_schema() AND table_name = ANY($1)`
	sqlColumns = `SELECT table_name, column_name, data_type, COALESCE(domain_name, ''), is_nullable = 'YES',
    character_maximum_length, COALESCE(numeric_precision, 0), COALESCE(numeric_scale, 0),
    COALESCE(column_default, 'GENERATED ALWAYS AS (' || generation_expression || ') STORED')
FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = ANY($1)`
	sqlConstraints = `SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
WHERE t.relnamespace = current_schema()::regnamespace AND t.relname IN ('orders', 'order_details')`
	sqlIndexes = `SELECT t.relname, i.relname
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
WHERE t.relnamespace = current_schema()::regnamespace AND t.relname IN ('orders', 'order_details')`
	sqlTriggers = `SELECT t.relname, g.tgname FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid
WHERE NOT g.tgisinternal AND t.relnamespace = current_schema()::regnamespace AND t.relname IN ('orders', 'order_details')`
	sqlAlembicVersions = `SELECT version_num FROM alembic_version ORDER BY version_num`
	sqlMigrated        = `SELECT EXISTS (SELECT 1 FROM ` + versionTable + ` WHERE version_id > 0)`
	sqlRowCounts       = `SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_details),
    (SELECT count(*) FROM order_details WHERE price < 0 OR quantity < 1)`
)

// LegacySchemaError refuses a database whose tables are neither
// airship's nor exactly the old shop's schema.
type LegacySchemaError struct {
	Tables      []string // the tables that made airship look
	Differences []string
}

func (e *LegacySchemaError) Error() string {
	return fmt.Sprintf("the database has tables airship's migrations did not create (%s), and they are not "+
		"the old shop's schema (alembic revision %s) that airship adopts: %s; nothing was changed. "+
		"Point airship at an empty database, or at one with exactly that schema",
		strings.Join(e.Tables, ", "), LegacyRevision, strings.Join(e.Differences, "; "))
}

// querier is a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// legacyState is what inspect found.
type legacyState int

const (
	notLegacy   legacyState = iota // airship's schema, or no schema yet
	legacyExact                    // the old shop's schema: Adopt adopts it
)

// inspect looks at a PostgreSQL database: a database with an airship
// migration applied, or without any of the legacy tables, is notLegacy;
// one with exactly the old schema is legacyExact; any other is refused
// with a *LegacySchemaError.
func inspect(ctx context.Context, q querier) (legacyState, error) {
	var hasVersions bool
	if err := q.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, versionTable).Scan(&hasVersions); err != nil {
		return 0, fmt.Errorf("look for %s: %w", versionTable, err)
	}
	if hasVersions {
		var migrated bool
		if err := q.QueryRowContext(ctx, sqlMigrated).Scan(&migrated); err != nil {
			return 0, fmt.Errorf("read %s: %w", versionTable, err)
		}
		if migrated {
			return notLegacy, nil
		}
	}
	present, err := texts(ctx, q, sqlTables, append(slices.Clone(legacyTables), airshipTables...))
	if err != nil {
		return 0, fmt.Errorf("list tables: %w", err)
	}
	if !slices.Contains(present, "orders") && !slices.Contains(present, "order_details") {
		return notLegacy, nil // an alembic_version alone belongs to another application
	}
	slices.Sort(present)
	diffs, err := differences(ctx, q, present)
	if err != nil {
		return 0, err
	}
	if len(diffs) > 0 {
		return 0, &LegacySchemaError{Tables: present, Differences: diffs}
	}
	return legacyExact, nil
}

// differences lists how the database's tables differ from the old schema.
func differences(ctx context.Context, q querier, present []string) ([]string, error) {
	var diffs []string
	for _, t := range present {
		if !slices.Contains(legacyTables, t) {
			diffs = append(diffs, fmt.Sprintf("table %s belongs to airship's own schema, not the old one", t))
		}
	}
	for _, t := range legacyTables {
		if !slices.Contains(present, t) {
			diffs = append(diffs, fmt.Sprintf("table %s is missing", t))
		}
	}
	if len(diffs) > 0 {
		return diffs, nil
	}

	rows, err := q.QueryContext(ctx, sqlColumns, legacyTables)
	if err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	have := map[string]map[string]column{}
	for rows.Next() {
		var table, name string
		var c column
		if err := rows.Scan(&table, &name, &c.Type, &c.Domain, &c.Nullable, &c.Length, &c.Decimal[0], &c.Decimal[1], &c.Default); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read columns: %w", err)
		}
		if c.Type != "numeric" {
			c.Decimal = [2]int64{}
		}
		if have[table] == nil {
			have[table] = map[string]column{}
		}
		have[table][name] = c
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	for _, t := range legacyTables {
		for _, name := range sortedKeys(legacyColumns[t]) {
			want := legacyColumns[t][name]
			got, ok := have[t][name]
			switch {
			case !ok:
				diffs = append(diffs, fmt.Sprintf("column %s.%s is missing (the old schema has %s)", t, name, want))
			case got != want:
				diffs = append(diffs, fmt.Sprintf("column %s.%s is %s; the old schema has %s", t, name, got, want))
			}
		}
		for _, name := range sortedKeys(have[t]) {
			if _, ok := legacyColumns[t][name]; !ok {
				diffs = append(diffs, fmt.Sprintf("column %s.%s is not in the old schema", t, name))
			}
		}
	}

	constraints, err := pairs(ctx, q, sqlConstraints)
	if err != nil {
		return nil, fmt.Errorf("read constraints: %w", err)
	}
	for _, name := range sortedKeys(legacyConstraints) {
		want := legacyConstraints[name]
		got, ok := constraints[name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("constraint %s (%s) is missing", name, want))
		case got != want:
			diffs = append(diffs, fmt.Sprintf("constraint %s is %s; the old schema has %s", name, got, want))
		}
	}
	for _, name := range sortedKeys(constraints) {
		if _, ok := legacyConstraints[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("constraint %s (%s) is not in the old schema", name, constraints[name]))
		}
	}
	indexes, err := pairs(ctx, q, sqlIndexes)
	if err != nil {
		return nil, fmt.Errorf("read indexes: %w", err)
	}
	for _, name := range sortedKeys(indexes) {
		if !slices.Contains(legacyIndexes, name) {
			diffs = append(diffs, fmt.Sprintf("index %s is not in the old schema", name))
		}
	}
	triggers, err := pairs(ctx, q, sqlTriggers)
	if err != nil {
		return nil, fmt.Errorf("read triggers: %w", err)
	}
	for _, name := range sortedKeys(triggers) {
		diffs = append(diffs, fmt.Sprintf("trigger %s is not in the old schema", name))
	}
	ledger, err := ledgerDifferences(ctx, q, have)
	if err != nil {
		return nil, err
	}
	diffs = append(diffs, ledger...)
	if have["alembic_version"]["version_num"] == legacyColumns["alembic_version"]["version_num"] {
		versions, err := texts(ctx, q, sqlAlembicVersions)
		if err != nil {
			return nil, fmt.Errorf("read alembic_version: %w", err)
		}
		if len(versions) != 1 || versions[0] != LegacyRevision {
			diffs = append(diffs, fmt.Sprintf("alembic_version holds %q; the old schema is revision %q", versions, LegacyRevision))
		}
	}
	return diffs, nil
}

// maxID is the largest order and line id: the API's ids and the old
// schema's integer columns end there.
const maxID = math.MaxInt32

const (
	// sqlRelations describes the legacy tables: their kind (r: a plain
	// table), persistence (p: logged), row level security, and the
	// tables they inherit from or that inherit from them.
	sqlRelations = `SELECT c.relname, c.relkind::text, c.relpersistence::text, c.relrowsecurity, c.relforcerowsecurity,
    COALESCE((SELECT string_agg(p.inhparent::regclass::text, ', ' ORDER BY p.inhparent::regclass::text)
        FROM pg_inherits p WHERE p.inhrelid = c.oid), ''),
    COALESCE((SELECT string_agg(h.inhrelid::regclass::text, ', ' ORDER BY h.inhrelid::regclass::text)
        FROM pg_inherits h WHERE h.inhparent = c.oid), '')
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1)
ORDER BY c.relname`
	// sqlRules lists the rules on the legacy tables; a table has none of
	// its own (a view's _RETURN rule is refused as a view).
	sqlRules = `SELECT c.relname, r.rulename, pg_get_ruledef(r.oid)
FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1) AND r.rulename <> '_RETURN'
ORDER BY c.relname, r.rulename`
	sqlPolicies = `SELECT c.relname, p.polname FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1)
ORDER BY c.relname, p.polname`
	// sqlSequence describes the sequence <table>_id_seq that the id
	// column's default draws from: persistence, options, the column that
	// owns it, and where it stands against the ids in the table. %[1]s is
	// the table, %[2]s the sequence (names from legacyColumns).
	sqlSequence = `SELECT s.relpersistence::text, q.seqincrement, q.seqmin, q.seqmax, q.seqcycle,
    COALESCE((SELECT d.refobjid::regclass::text || '.' || a.attname
        FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.refclassid = 'pg_class'::regclass
            AND d.deptype IN ('a', 'i')), ''),
    v.last_value, v.is_called, (SELECT COALESCE(max(id), 0) FROM %[1]s)
FROM pg_class s JOIN pg_sequence q ON q.seqrelid = s.oid, %[2]s v
WHERE s.oid = '%[2]s'::regclass`
)

// ledgerDifferences lists what, beyond the columns, keys and indexes,
// would let the adopted tables break the ledger: a rule or policy that
// changes what airship's statements do (a DELETE that deletes nothing and
// reports success), a table that is not a plain logged one (UNLOGGED:
// emptied by a crash; partitioned, inherited, a view), row level security,
// and an id sequence that could hand out an id twice or run out. have is
// the tables' columns; a sequence is checked when its column's default is
// the old schema's.
func ledgerDifferences(ctx context.Context, q querier, have map[string]map[string]column) ([]string, error) {
	var diffs []string
	rows, err := q.QueryContext(ctx, sqlRelations, pq.Array(legacyTables))
	if err != nil {
		return nil, fmt.Errorf("read tables: %w", err)
	}
	for rows.Next() {
		var (
			name, kind, persistence string
			security, forced        bool
			parents, children       string
		)
		if err := rows.Scan(&name, &kind, &persistence, &security, &forced, &parents, &children); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read tables: %w", err)
		}
		if k, ok := relationKinds[kind]; kind != "r" {
			if !ok {
				k = "of kind " + kind
			}
			diffs = append(diffs, fmt.Sprintf("table %s is %s; the old schema's is a plain table", name, k))
		}
		if p := persistences[persistence]; persistence != "p" && name != "alembic_version" {
			diffs = append(diffs, fmt.Sprintf("table %s is %s: a crash of PostgreSQL empties it; the old schema's is logged", name, p))
		}
		if security || forced {
			diffs = append(diffs, fmt.Sprintf("table %s has row level security enabled: its policies would hide or refuse rows", name))
		}
		if parents != "" {
			diffs = append(diffs, fmt.Sprintf("table %s inherits from %s; the old schema's inherits from none", name, parents))
		}
		if children != "" {
			for _, c := range strings.Split(children, ", ") {
				diffs = append(diffs, fmt.Sprintf("table %s inherits from %s: its rows would be read and changed with those of %s", c, name, name))
			}
		}
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("read tables: %w", err)
	}

	rules, err := q.QueryContext(ctx, sqlRules, pq.Array(legacyTables))
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	for rules.Next() {
		var table, name, def string
		if err := rules.Scan(&table, &name, &def); err != nil {
			rules.Close()
			return nil, fmt.Errorf("read rules: %w", err)
		}
		diffs = append(diffs, fmt.Sprintf("rule %s.%s (%s) is not in the old schema: it changes what airship's statements do",
			table, name, ruleAction(def)))
	}
	if err := rules.Close(); err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	policies, err := texts(ctx, q, `SELECT relname || '.' || polname FROM (`+sqlPolicies+`) p`, legacyTables)
	if err != nil {
		return nil, fmt.Errorf("read policies: %w", err)
	}
	for _, p := range policies {
		diffs = append(diffs, fmt.Sprintf("policy %s is not in the old schema", p))
	}

	for _, table := range []string{"orders", "order_details"} {
		if have[table]["id"] != legacyColumns[table]["id"] {
			continue // refused for its column already; the default names no sequence of the old schema
		}
		d, err := sequenceDifferences(ctx, q, table)
		if err != nil {
			return nil, err
		}
		diffs = append(diffs, d...)
	}
	var replicationRole string
	if err := q.QueryRowContext(ctx, `SELECT current_setting('session_replication_role')`).Scan(&replicationRole); err != nil {
		return nil, fmt.Errorf("read session_replication_role: %w", err)
	}
	if replicationRole != "origin" {
		diffs = append(diffs, fmt.Sprintf("session_replication_role is %s (a setting of the database or role): "+
			"PostgreSQL would fire no trigger, so no foreign key would be checked or cascade", replicationRole))
	}
	return diffs, nil
}

// sequenceDifferences lists how the sequence of table's id column
// differs from the old schema's (serial: integer, start 1, increment 1,
// no cycle, owned by the column) in ways that matter: it must hand out
// every id once, in the API's range, and continue after the ids there.
func sequenceDifferences(ctx context.Context, q querier, table string) ([]string, error) {
	seq := table + "_id_seq"
	var (
		persistence, owner   string
		inc, lowest, highest int64
		cycle, called        bool
		last, maxInTable     int64
	)
	err := q.QueryRowContext(ctx, fmt.Sprintf(sqlSequence, table, seq)).Scan(
		&persistence, &inc, &lowest, &highest, &cycle, &owner, &last, &called, &maxInTable)
	if err != nil {
		return nil, fmt.Errorf("read sequence %s: %w", seq, err)
	}
	var diffs []string
	if persistence != "p" {
		diffs = append(diffs, fmt.Sprintf("sequence %s is %s: a crash of PostgreSQL resets it; the old schema's is logged",
			seq, persistences[persistence]))
	}
	if inc != 1 {
		diffs = append(diffs, fmt.Sprintf("sequence %s increments by %d; the old schema's by 1", seq, inc))
	}
	if lowest < 1 {
		diffs = append(diffs, fmt.Sprintf("sequence %s starts its range at %d (MINVALUE); ids start at 1", seq, lowest))
	}
	if highest < maxID {
		diffs = append(diffs, fmt.Sprintf("sequence %s ends at %d (MAXVALUE); the old schema's at %d, the end of the API's ids",
			seq, highest, maxID))
	}
	if cycle {
		diffs = append(diffs, fmt.Sprintf("sequence %s cycles (CYCLE): it would hand out ids again", seq))
	}
	if want := table + ".id"; owner != want {
		if owner == "" {
			owner = "no column"
		}
		diffs = append(diffs, fmt.Sprintf("sequence %s belongs to %s; the old schema's belongs to %s", seq, owner, want))
	}
	next := last
	if called {
		next = last + inc
		if last > math.MaxInt64-inc {
			next = math.MaxInt64 // and beyond
		}
	}
	switch {
	case next > min(highest, maxID) && !cycle:
		diffs = append(diffs, fmt.Sprintf("sequence %s is exhausted: it handed out %d, the last id it may", seq, last))
	case next <= maxInTable:
		diffs = append(diffs, fmt.Sprintf("sequence %s hands out %d next, but %s holds ids up to %d "+
			"(SELECT setval('%s', %d) moves it past them)", seq, next, table, maxInTable, seq, maxInTable))
	}
	return diffs, nil
}

// relationKinds and persistences name pg_class's relkind and
// relpersistence.
var (
	relationKinds = map[string]string{"r": "a plain table", "p": "partitioned", "v": "a view", "m": "a materialized view",
		"f": "a foreign table"}
	persistences = map[string]string{"p": "logged", "u": "UNLOGGED", "t": "temporary"}
)

// ruleAction is a rule's definition without its name, on one line:
// "ON DELETE TO public.orders DO INSTEAD NOTHING".
func ruleAction(def string) string {
	def = strings.Join(strings.Fields(def), " ")
	def = strings.TrimSuffix(def, ";")
	if _, rest, ok := strings.Cut(def, " AS "); ok {
		return rest
	}
	return def
}

// adoptionStep is one change Adopt makes; what it says goes to the log
// and the adoption record.
type adoptionStep struct{ what, sql string }

// timestamptz converts two timestamp columns written in UTC.
func timestamptz(table string) adoptionStep {
	return adoptionStep{
		what: table + ".created_at, " + table + ".updated_at: timestamp written in UTC → timestamptz, default now()",
		sql: `ALTER TABLE ` + table + `
    ALTER COLUMN created_at TYPE timestamptz USING created_at AT TIME ZONE 'UTC',
    ALTER COLUMN created_at SET DEFAULT now(),
    ALTER COLUMN updated_at TYPE timestamptz USING updated_at AT TIME ZONE 'UTC',
    ALTER COLUMN updated_at SET DEFAULT now()`,
	}
}

// adoptionSteps turn the old schema into the one 00001_init.sql creates
// (the schema test of this package compares the two). checked is false
// when old lines break airship's price or quantity rule: the rule is then
// added for new and changed rows only (NOT VALID), and the old rows stay
// as they are.
func adoptionSteps(checked bool) []adoptionStep {
	notValid := ""
	if !checked {
		notValid = " NOT VALID"
	}
	return []adoptionStep{
		timestamptz("orders"),
		timestamptz("order_details"),
		{"order_details.product_id: varchar → text", `ALTER TABLE order_details ALTER COLUMN product_id TYPE text`},
		{"order_details.order_id: foreign key fk_order_details_orders → order_details_order_id_fkey, ON DELETE CASCADE",
			`ALTER TABLE order_details DROP CONSTRAINT fk_order_details_orders,
    ADD CONSTRAINT order_details_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE`},
		{"order_details: CHECK (price >= 0), CHECK (quantity >= 1)" + strings.ToLower(notValid),
			`ALTER TABLE order_details ADD CONSTRAINT order_details_price_check CHECK (price >= 0)` + notValid + `,
    ADD CONSTRAINT order_details_quantity_check CHECK (quantity >= 1)` + notValid},
		{"index order_details_order_id_idx", `CREATE INDEX order_details_order_id_idx ON order_details (order_id)`},
		// The two tables below are 00001_init.sql's, as it creates them.
		{"table stock_reservations", `CREATE TABLE stock_reservations (
    id         text PRIMARY KEY,
    order_id   integer,
    created_at timestamptz NOT NULL DEFAULT now()
)`},
		{"table stock_returns", `CREATE TABLE stock_returns (
    id         text PRIMARY KEY,
    lines      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)`},
		{"table airship_adoption (this record)", `CREATE TABLE airship_adoption (
    source_revision text NOT NULL,
    adopted_at      timestamptz NOT NULL DEFAULT now(),
    orders          bigint NOT NULL,
    order_lines     bigint NOT NULL,
    changes         text[] NOT NULL
)`},
	}
}

const sqlRecordAdoption = `INSERT INTO airship_adoption (source_revision, orders, order_lines, changes)
VALUES ($1, $2, $3, $4)`

// Adopt adopts the old shop's schema if the database holds it (see the
// top of this file), and refuses any other schema with legacy tables and
// no airship migration with a *LegacySchemaError. It does nothing on an
// airship database, an empty one, or an embedded one. It runs in one
// transaction under the migration lock, so replicas starting together
// adopt a database once.
func Adopt(ctx context.Context, db *sql.DB, d Dialect, log *slog.Logger) error {
	if d != Postgres {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("adopt: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, lock.DefaultLockID); err != nil {
		return fmt.Errorf("adopt: migration lock: %w", err)
	}
	state, err := inspect(ctx, tx)
	if err != nil || state != legacyExact {
		return err
	}

	var orders, lines, broken int64
	if err := tx.QueryRowContext(ctx, sqlRowCounts).Scan(&orders, &lines, &broken); err != nil {
		return fmt.Errorf("adopt: count rows: %w", err)
	}
	steps := adoptionSteps(broken == 0)
	changes := make([]string, 0, len(steps)+1)
	for _, s := range steps {
		if _, err := tx.ExecContext(ctx, s.sql); err != nil {
			return fmt.Errorf("adopt: %s: %w", s.what, err)
		}
		changes = append(changes, s.what)
	}
	store, err := database.NewStore(database.DialectPostgres, versionTable)
	if err != nil {
		return fmt.Errorf("adopt: %w", err)
	}
	var hasVersions bool
	if err := tx.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, versionTable).Scan(&hasVersions); err != nil {
		return fmt.Errorf("adopt: %w", err)
	}
	if !hasVersions {
		if err := store.CreateVersionTable(ctx, tx); err != nil {
			return fmt.Errorf("adopt: %w", err)
		}
		if err := store.Insert(ctx, tx, database.InsertRequest{Version: 0}); err != nil {
			return fmt.Errorf("adopt: %w", err)
		}
	}
	if err := store.Insert(ctx, tx, database.InsertRequest{Version: 1}); err != nil {
		return fmt.Errorf("adopt: record version 1: %w", err)
	}
	changes = append(changes, "goose_db_version: version 1 (00001_init.sql) recorded as applied")
	if _, err := tx.ExecContext(ctx, sqlRecordAdoption, LegacyRevision, orders, lines, pq.Array(changes)); err != nil {
		return fmt.Errorf("adopt: record: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("adopt: commit: %w", err)
	}
	if log != nil {
		log.Warn("adopted the old shop's schema in place", "alembic_revision", LegacyRevision,
			"orders_kept", orders, "order_lines_kept", lines)
		for _, c := range changes {
			log.Info("adoption changed", "change", c)
		}
		if broken > 0 {
			log.Warn("old order lines break airship's price or quantity rule; they are kept, and the rule "+
				"applies to new and changed lines only", "lines", broken)
		}
	}
	return nil
}

// Adoption is the record of an adopted database.
type Adoption struct {
	Revision   string
	At         time.Time
	Orders     int64
	OrderLines int64
	Changes    []string
}

// Describe tells whether the database was adopted from the old shop's
// schema (the record), will be on the next `migrate up` (pending), or
// would be refused (err is a *LegacySchemaError). Nothing is changed.
func Describe(ctx context.Context, db *sql.DB, d Dialect) (record *Adoption, pending bool, err error) {
	if d != Postgres {
		return nil, false, nil
	}
	var adopted bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('airship_adoption') IS NOT NULL`).Scan(&adopted); err != nil {
		return nil, false, fmt.Errorf("adoption record: %w", err)
	}
	if adopted {
		var a Adoption
		var changes pq.StringArray
		err := db.QueryRowContext(ctx, `SELECT source_revision, adopted_at, orders, order_lines, changes FROM airship_adoption`).
			Scan(&a.Revision, &a.At, &a.Orders, &a.OrderLines, &changes)
		if err != nil {
			return nil, false, fmt.Errorf("adoption record: %w", err)
		}
		a.Changes = changes
		return &a, false, nil
	}
	state, err := inspect(ctx, db)
	if err != nil {
		return nil, false, err
	}
	return nil, state == legacyExact, nil
}

// texts runs a query returning one text column.
func texts(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	for i, a := range args {
		if s, ok := a.([]string); ok {
			args[i] = pq.Array(s)
		}
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// pairs runs a query returning (table, name[, definition]) and maps
// "table.name" to the definition.
func pairs(ctx context.Context, q querier, query string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for rows.Next() {
		var table, name, def string
		dst := []any{&table, &name, &def}[:len(cols)]
		if err := rows.Scan(dst...); err != nil {
			return nil, err
		}
		out[table+"."+name] = def
	}
	return out, rows.Err()
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
