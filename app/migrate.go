package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/airshipltd/airship/db/migrations"
	"github.com/airshipltd/airship/internal/backend"
	"github.com/airshipltd/airship/internal/config"
)

// Migrate applies every pending migration of the configured SQL database
// (action "up"), rolls back the latest one ("down", only with confirm) or
// only reports ("status"), then writes each migration's state and the
// schema version to out.
func Migrate(ctx context.Context, cfg config.Config, log *slog.Logger, action string, confirm bool, out io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	d, err := openDatabase(ctx, databasePlan(cfg), backend.StartupOf(cfg), log, instruments{})
	if err != nil {
		return err
	}
	defer d.db.Close()
	p := d.migrator
	switch action {
	case "up":
		if err := d.up(ctx, log); err != nil {
			return err
		}
	case "down":
		if !confirm {
			current, _, verr := p.GetVersions(ctx)
			if verr != nil {
				return fmt.Errorf("migrate down: %w", verr)
			}
			return fmt.Errorf("migrate down rolls back migration %d and drops what it created, data included, "+
				"and servers on this database stop being ready until migrate up; run it again with --confirm", current)
		}
		_, err = p.Down(ctx)
	}
	if err != nil {
		return fmt.Errorf("migrate %s: %w", action, err)
	}
	if err := printAdoption(ctx, d, out); err != nil {
		return err
	}
	status, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("migration status: %w", err)
	}
	for _, s := range status {
		applied := "pending"
		if !s.AppliedAt.IsZero() {
			applied = "applied " + s.AppliedAt.Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(out, "%-8s %-30s %s\n", s.State, s.Source.Path, applied)
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("migration status: %w", err)
	}
	fmt.Fprintln(out, schemaVersion(current, target))
	return nil
}

// schemaVersion says how the database's schema version stands to the one
// this binary needs. During a rolling upgrade the previous release sees a
// newer one, which it runs on (docs/upgrading.md).
func schemaVersion(current, target int64) string {
	switch {
	case current < target:
		return fmt.Sprintf("schema version %d of %d: run `airship migrate up`", current, target)
	case current > target:
		return fmt.Sprintf("schema version %d, newer than this release's %d: a later release migrated it, and this release runs on it", current, target)
	}
	return fmt.Sprintf("schema version %d: the version this release needs", current)
}

// printAdoption says whether the database was adopted from the old shop's
// schema, or will be by `migrate up`. A schema that would be refused is
// an error.
func printAdoption(ctx context.Context, d *database, out io.Writer) error {
	record, pending, err := migrations.Describe(ctx, d.db.DB, d.dialect)
	switch {
	case err != nil:
		return fmt.Errorf("migration status: %w", err)
	case pending:
		fmt.Fprintf(out, "the old shop's schema (alembic revision %s) is here: `airship migrate up` (or serve) adopts it in place\n",
			migrations.LegacyRevision)
	case record != nil:
		fmt.Fprintf(out, "adopted the old shop's schema (alembic revision %s) on %s, keeping %d orders and %d order lines:\n",
			record.Revision, record.At.UTC().Format("2006-01-02 15:04:05 UTC"), record.Orders, record.OrderLines)
		for _, c := range record.Changes {
			fmt.Fprintf(out, "  - %s\n", c)
		}
	}
	return nil
}
