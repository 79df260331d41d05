// Package migrations holds airship's database migrations, one folder of
// goose SQL files per dialect, embedded in the binary.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Dialect names a migrations folder.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// Provider returns a goose provider for the dialect's migrations. With
// PostgreSQL it takes an advisory lock, so that replicas (and a migration
// Job) starting together migrate one at a time: a waiter retries every
// second, for up to five minutes, then gives up with an error.
func Provider(db *sql.DB, d Dialect, log *slog.Logger) (*goose.Provider, error) {
	sub, err := fs.Sub(files, string(d))
	if err != nil {
		return nil, fmt.Errorf("migrations for %s: %w", d, err)
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if log != nil {
		opts = append(opts, goose.WithSlog(log))
	}
	dialect := goose.DialectSQLite3
	if d == Postgres {
		dialect = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, fmt.Errorf("migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	return goose.NewProvider(dialect, db, sub, opts...)
}

// Up adopts the old shop's schema if the database holds it (see Adopt),
// then applies every pending migration with the provider p.
func Up(ctx context.Context, db *sql.DB, d Dialect, p *goose.Provider, log *slog.Logger) error {
	if err := Adopt(ctx, db, d, log); err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s up: %w", d, err)
	}
	return nil
}

// ErrBehind means the database schema is older than this binary needs.
var ErrBehind = errors.New("database schema is behind")

// Check reports whether the schema is at least at the latest version this
// binary has (a newer one is fine: migrations keep the schema readable by
// the release before them, so that replicas can be upgraded one by one).
// It reads the version without taking the migration lock.
func Check(ctx context.Context, p *goose.Provider) error {
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	if current < target {
		return fmt.Errorf("%w: it is at version %d and airship needs %d: run `airship migrate up`", ErrBehind, current, target)
	}
	return nil
}

// Down rolls back the latest migration with the provider p. It drops what
// that migration created, data included, so it needs confirm; without it,
// it rolls back nothing and says what it would do.
func Down(ctx context.Context, p *goose.Provider, confirm bool) error {
	if !confirm {
		current, _, err := p.GetVersions(ctx)
		if err != nil {
			return fmt.Errorf("migrate down: %w", err)
		}
		return fmt.Errorf("migrate down rolls back migration %d and drops what it created, data included, "+
			"and servers on this database stop being ready until migrate up; run it again with --confirm", current)
	}
	if _, err := p.Down(ctx); err != nil {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// Status is where a database's schema stands.
type Status struct {
	// Adopted records the adoption of the old shop's schema, if it was;
	// AdoptionPending: the old shop's schema is here, not adopted yet.
	Adopted         *Adoption
	AdoptionPending bool
	// Migrations are the state of each migration.
	Migrations []*goose.MigrationStatus
	// Version is the database's schema version, Needed the one this
	// release needs (a later release may have migrated past it).
	Version, Needed int64
}

// ReadStatus reads where the schema of db stands, with the provider p of
// its dialect d. It only reads.
func ReadStatus(ctx context.Context, db *sql.DB, d Dialect, p *goose.Provider) (*Status, error) {
	var s Status
	var err error
	if s.Adopted, s.AdoptionPending, err = Describe(ctx, db, d); err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	if s.Migrations, err = p.Status(ctx); err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	if s.Version, s.Needed, err = p.GetVersions(ctx); err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	return &s, nil
}
