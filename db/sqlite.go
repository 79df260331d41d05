// Package db opens the embedded SQLite database that airship uses when it
// runs without external services. Its migrations live in db/migrations.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite" // registers the pure-Go "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteParams configures every connection:
//
//   - journal_mode(WAL): readers do not block the writer and vice versa.
//   - synchronous(FULL): in WAL mode, FULL syncs the WAL on every commit, so
//     every committed transaction survives a power loss or kill -9 (NORMAL
//     could lose the last transactions on power loss).
//   - busy_timeout(5000): wait up to 5 s for a lock instead of failing at once.
//   - foreign_keys(ON): enforce REFERENCES (order_details → orders).
//   - _txlock=immediate: BEGIN takes the write lock up front, so two
//     transactions never both read and then deadlock upgrading to write
//     (SQLITE_BUSY that the busy timeout cannot resolve).
const sqliteParams = "?_pragma=busy_timeout(5000)" +
	"&_pragma=journal_mode(WAL)" +
	"&_pragma=synchronous(FULL)" +
	"&_pragma=foreign_keys(ON)" +
	"&_txlock=immediate"

// maxOpenConns is the pool size. SQLite allows one writer at a time; with
// one connection, Go's pool queues the callers instead of SQLite's busy
// handler making them poll, so there is never a "database is locked" error,
// and every statement sees the effects of the previous one. Measured with
// 64 goroutines running the load scenario's store calls (mostly writes,
// each commit an fsync): 1 connection ~1400 ops/s, 2 ~1600, 4 and 8
// ~750 ops/s, and with 4 one BEGIN still failed with SQLITE_BUSY after the
// 5 s busy timeout.
const maxOpenConns = 1

// OpenSQLite opens (creating it and its directory if missing) the SQLite
// database file at path. Callers must not hold a transaction or an open
// *sql.Rows while running another statement on the returned DB: with a
// single connection that would wait forever.
func OpenSQLite(ctx context.Context, path string) (*sqlx.DB, error) {
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open sqlite: invalid path %q", path)
	}
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
	}
	db, err := sqlx.Open("sqlite", path+sqliteParams)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, nil
}

// Unavailable reports whether err means the database could not be used
// right now (locked, busy, closed, timed out), as opposed to a bad
// statement or a constraint: the caller may retry later.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "database is closed") {
		return true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN:
			return true
		}
	}
	return false
}

type txKey struct{}

// WithTx returns a context that carries tx: InTx calls made with it run
// inside tx instead of starting their own transaction. This is how the
// embedded store commits an order and its stock change together.
func WithTx(ctx context.Context, tx *sqlx.Tx) context.Context {
	return context.WithValue(ctx, txKey{}, tx)
}

// InTx runs fn in the transaction ctx carries, or else in a new one that
// it commits if fn returns nil and rolls back otherwise.
func InTx(ctx context.Context, sdb *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	if tx, ok := ctx.Value(txKey{}).(*sqlx.Tx); ok {
		return fn(tx)
	}
	tx, err := sdb.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
