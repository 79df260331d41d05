// Package sqlite is the plumbing of the embedded SQLite database that
// airship uses when it runs without external services: opening its one
// writer connection with the settings that make every commit durable and
// a pool of read-only connections beside it, keeping each connection's
// statements prepared, running statements on a pool or on a transaction a
// store was bound to, and telling an unavailable database from a bad
// statement. Its migrations live in db/migrations.
package sqlite

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

	"github.com/airshipltd/airship/internal/errs"
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
// 5 s busy timeout. The reads that need not see a transaction in progress
// do not queue here: they run on the read pool (OpenReads).
const maxOpenConns = 1

// readerParams configure the connections of the read pool (OpenReads):
// the writer (Open) has made the database WAL, so they read a snapshot of
// every transaction committed before their statement began while the
// writer commits; query_only(1) makes a statement that would write fail.
const readerParams = "?_pragma=busy_timeout(5000)" +
	"&_pragma=query_only(1)" +
	"&_pragma=foreign_keys(ON)"

// readerConns is the size of the read pool: reads run side by side with
// each other and with the writer, and each holds a CPU while it runs.
const readerConns = 4

// Open opens (creating it and its directory if missing) the SQLite
// database file at path. Callers must not hold a transaction or an open
// *sql.Rows while running another statement on the returned DB: with a
// single connection that would wait forever.
func Open(ctx context.Context, path string) (*sqlx.DB, error) {
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open sqlite: invalid path %q", path)
	}
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
	}
	// Commits sync with fdatasync(2), as SQLite's own Linux builds do:
	// it writes the data and the size a read needs, not the timestamps,
	// so a commit is as durable and waits less. Where the system has no
	// fdatasync, commits stay on fsync.
	_, _ = sqlite.Fdatasync(true)
	pool, err := openPool(ctx, path+sqliteParams, maxOpenConns)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return pool, nil
}

// OpenReads opens a pool of read-only connections to the database file
// that w (opened with Open) writes, for the reads that need not see a
// transaction in progress: they then neither wait for the writer's
// commits (each an fsync) nor make it wait. It returns nil for an
// in-memory database, which no other connection can open: its reads stay
// on w. A read on the pool sees every transaction committed before it
// began, so a client reads what an acknowledged write wrote.
func OpenReads(ctx context.Context, w *sqlx.DB) (*sqlx.DB, error) {
	var path string
	if err := w.GetContext(ctx, &path, "SELECT file FROM pragma_database_list WHERE name = 'main'"); err != nil {
		return nil, fmt.Errorf("open sqlite read pool: %w", err)
	}
	if path == "" {
		return nil, nil
	}
	pool, err := openPool(ctx, path+readerParams, readerConns)
	if err != nil {
		return nil, fmt.Errorf("open sqlite read pool %s: %w", path, err)
	}
	return pool, nil
}

// openPool opens a pool of conns connections on dsn, kept open for good,
// which keep the statements they run prepared (see connector), and checks
// that one opens.
func openPool(ctx context.Context, dsn string, conns int) (*sqlx.DB, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	pool := sqlx.NewDb(sql.OpenDB(connector{c}), "sqlite")
	pool.SetMaxOpenConns(conns)
	pool.SetMaxIdleConns(conns)
	pool.SetConnMaxLifetime(0)
	pool.SetConnMaxIdleTime(0)
	if err := pool.PingContext(ctx); err != nil {
		_ = pool.Close()
		return nil, err
	}
	return pool, nil
}

// ErrUnavailable means the embedded database could not be used right now.
var ErrUnavailable = errs.New(errs.Unavailable, "embedded database unavailable")

// Classify marks an error that means the database could not be used right
// now (busy, locked, out of disk, an I/O error, its connection gone or the
// deadline passed) as ErrUnavailable, by the SQLite result code or the
// error's type; other errors (a bad statement, a constraint) pass through.
func Classify(err error) error {
	if err == nil || errs.Of(err) != errs.Internal {
		return err
	}
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN:
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return err
}

// Conn is what a store runs its statements on: the pool, or the
// transaction it was bound to with WithTx. A store bound to a transaction
// joins it instead of starting its own, so that several stores' changes
// commit or roll back together.
type Conn struct {
	pool  *sqlx.DB
	reads *sqlx.DB // the read pool (OpenReads), when there is one
	tx    *sqlx.Tx
}

// NewConn returns a Conn on the pool.
func NewConn(pool *sqlx.DB) Conn { return Conn{pool: pool} }

// WithReads returns the Conn whose reads (R) run on reads, the read pool
// of the same database (OpenReads), unless that is nil.
func (c Conn) WithReads(reads *sqlx.DB) Conn { c.reads = reads; return c }

// WithTx returns the Conn bound to tx.
func (c Conn) WithTx(tx *sqlx.Tx) Conn { return Conn{pool: c.pool, tx: tx} }

// R returns what to run a read on: the bound transaction, or else the
// read pool, or else the pool.
func (c Conn) R() sqlx.ExtContext {
	switch {
	case c.tx != nil:
		return c.tx
	case c.reads != nil:
		return c.reads
	}
	return c.pool
}

// Q returns what to run a single statement on: the bound transaction or
// the pool.
func (c Conn) Q() sqlx.ExtContext {
	if c.tx != nil {
		return c.tx
	}
	return c.pool
}

// InTx runs fn in the bound transaction, or else in a new one (BEGIN
// IMMEDIATE, see Open) that it commits if fn returns nil and rolls back
// otherwise. Errors are classified (see Classify).
func (c Conn) InTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	if c.tx != nil {
		return Classify(fn(c.tx))
	}
	return InTx(ctx, c.pool, fn)
}

// InTx runs fn in a new transaction on pool, committed if fn returns nil
// and rolled back otherwise. Errors are classified (see Classify).
func InTx(ctx context.Context, pool *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	tx, err := pool.BeginTxx(ctx, nil)
	if err != nil {
		return Classify(fmt.Errorf("begin: %w", err))
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return Classify(err)
	}
	if err := tx.Commit(); err != nil {
		return Classify(fmt.Errorf("commit: %w", err))
	}
	return nil
}
