package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/airshipltd/airship/db/migrations"
	"github.com/airshipltd/airship/internal/backend"
	"github.com/airshipltd/airship/internal/config"
	"github.com/pressly/goose/v3"
)

// Migrate applies every pending migration of the configured SQL database
// (action "up"), rolls back the latest one ("down", only with confirm) or
// only reads ("status"), and returns where the schema then stands.
func Migrate(ctx context.Context, cfg config.Config, log *slog.Logger, action string, confirm bool) (*Schema, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d, err := openDatabase(ctx, databasePlan(cfg), backend.StartupOf(cfg), log, instruments{})
	if err != nil {
		return nil, err
	}
	defer d.db.Close()
	p := d.migrator
	switch action {
	case "up":
		if err := d.up(ctx, log); err != nil {
			return nil, err
		}
	case "down":
		if !confirm {
			current, _, verr := p.GetVersions(ctx)
			if verr != nil {
				return nil, fmt.Errorf("migrate down: %w", verr)
			}
			return nil, fmt.Errorf("migrate down rolls back migration %d and drops what it created, data included, "+
				"and servers on this database stop being ready until migrate up; run it again with --confirm", current)
		}
		if _, err := p.Down(ctx); err != nil {
			return nil, fmt.Errorf("migrate down: %w", err)
		}
	}
	var sc Schema
	if sc.Adopted, sc.AdoptionPending, err = migrations.Describe(ctx, d.db.DB, d.dialect); err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	if sc.Migrations, err = p.Status(ctx); err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	if sc.Version, sc.Needed, err = p.GetVersions(ctx); err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	return &sc, nil
}

// Schema is where a database's schema stands.
type Schema struct {
	// Adopted records the adoption of the old shop's schema, if it was;
	// AdoptionPending: the old shop's schema is here, not adopted yet.
	Adopted         *migrations.Adoption
	AdoptionPending bool
	// Migrations are the state of each migration.
	Migrations []*goose.MigrationStatus
	// Version is the database's schema version, Needed the one this
	// release needs (a later release may have migrated past it).
	Version, Needed int64
}
