package orderstest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
)

// Swallow makes the database behind the stores skip every statement of
// one kind (op: INSERT, UPDATE or DELETE) on a table while reporting
// success, as a rule or trigger that a careless operator left behind
// would. The suite checks that the stores notice (each write that must
// change rows checks how many it changed) and roll the change back.
type Swallow func(t *testing.T, op, table string)

// PostgresSwallow swallows with a rule, `ON <op> TO <table> DO INSTEAD
// NOTHING`, and inserts with a BEFORE trigger that returns NULL (the
// inserts of a WITH query ignore no rule: PostgreSQL refuses them).
func PostgresSwallow(db *sqlx.DB) Swallow {
	return func(t *testing.T, op, table string) {
		t.Helper()
		name := "swallow_" + strings.ToLower(op) + "_" + table
		stmts := []string{fmt.Sprintf(`CREATE RULE %s AS ON %s TO %s DO INSTEAD NOTHING`, name, op, table)}
		if op == "INSERT" {
			stmts = []string{
				`CREATE OR REPLACE FUNCTION swallow() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$`,
				fmt.Sprintf(`CREATE TRIGGER %s BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION swallow()`, name, table),
			}
		}
		for _, s := range stmts {
			if _, err := db.ExecContext(t.Context(), s); err != nil {
				t.Fatalf("swallow %s on %s: %v", op, table, err)
			}
		}
	}
}

// SQLiteSwallow swallows with a BEFORE trigger that ignores the row
// (`SELECT RAISE(IGNORE)`).
func SQLiteSwallow(db *sqlx.DB) Swallow {
	return func(t *testing.T, op, table string) {
		t.Helper()
		name := "swallow_" + strings.ToLower(op) + "_" + table
		stmt := fmt.Sprintf(`CREATE TRIGGER %s BEFORE %s ON %s BEGIN SELECT RAISE(IGNORE); END`, name, op, table)
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("swallow %s on %s: %v", op, table, err)
		}
	}
}
