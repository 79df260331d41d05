package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"
)

// counting counts the statements the driver's connections parse: those
// they prepare and those they run unprepared.
type counting struct {
	driver.Connector
	parsed *int
}

func (c counting) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return countingConn{dc.(driverConn), c.parsed}, nil
}

type countingConn struct {
	driverConn
	parsed *int
}

func (c countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	*c.parsed++
	return c.driverConn.PrepareContext(ctx, query)
}

func (c countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	*c.parsed++
	return c.driverConn.ExecContext(ctx, query, args)
}

func (c countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	*c.parsed++
	return c.driverConn.QueryContext(ctx, query, args)
}

// openCounting opens a one-connection pool as Open does, counting the
// statements it parses.
func openCounting(t *testing.T) (*sqlx.DB, *int) {
	t.Helper()
	c, err := sqlite.NewConnector(filepath.Join(t.TempDir(), "airship.db") + sqliteParams)
	if err != nil {
		t.Fatal(err)
	}
	parsed := new(int)
	db := sqlx.NewDb(sql.OpenDB(connector{counting{c, parsed}}), "sqlite")
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	return db, parsed
}

// TestStatementsKept: a statement run again on a connection, alone or in
// a transaction, is not parsed again, and answers as the first time.
func TestStatementsKept(t *testing.T) {
	db, parsed := openCounting(t)
	ctx := t.Context()
	before := *parsed
	for i := range 3 {
		if _, err := db.ExecContext(ctx, `INSERT INTO t VALUES ($1)`, i); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.GetContext(ctx, &n, `SELECT count(*) FROM t`); err != nil || n != i+1 {
			t.Fatalf("count %d, %v; want %d", n, err, i+1)
		}
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES ($1)`, 3); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM t`); err != nil || n != 4 {
		t.Fatalf("count in the transaction %d, %v; want 4", n, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := *parsed - before; got != 2 {
		t.Fatalf("%d statements parsed for 2 distinct ones run 8 times; want 2", got)
	}
}

// TestStatementRunWhileItsRowsAreOpen: the same statement run again while
// the rows of its first run are still open is parsed anew, and neither
// run's rows are disturbed.
func TestStatementRunWhileItsRowsAreOpen(t *testing.T) {
	db, _ := openCounting(t)
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, `INSERT INTO t VALUES (1), (2), (3)`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	const q = `SELECT v FROM t ORDER BY v`
	outer, err := tx.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for outer.Next() {
		var v int
		if err := outer.Scan(&v); err != nil {
			t.Fatal(err)
		}
		var inner []int
		if err := tx.SelectContext(ctx, &inner, q); err != nil || len(inner) != 3 {
			t.Fatalf("inner run: %v, %v; want 3 rows", inner, err)
		}
		got = append(got, v)
	}
	if err := outer.Err(); err != nil || len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Fatalf("outer run: %v, %v; want [1 2 3]", got, err)
	}
	outer.Close()
}

// TestStatementKeptAcrossSchemaChange: a kept statement still runs, on
// the new schema, after the table it reads is dropped and made again.
func TestStatementKeptAcrossSchemaChange(t *testing.T) {
	db, _ := openCounting(t)
	ctx := t.Context()
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM t`); err != nil || n != 0 {
		t.Fatalf("count %d, %v; want 0", n, err)
	}
	if _, err := db.ExecContext(ctx, `DROP TABLE t; CREATE TABLE t (v TEXT, w TEXT); INSERT INTO t VALUES ('a', 'b')`); err != nil {
		t.Fatal(err)
	}
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM t`); err != nil || n != 1 {
		t.Fatalf("count after the schema change %d, %v; want 1", n, err)
	}
}
