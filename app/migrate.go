package app

import (
	"context"
	"log/slog"

	"github.com/airshipltd/airship/db/migrations"
	"github.com/airshipltd/airship/internal/backend"
	"github.com/airshipltd/airship/internal/config"
)

// Migrate applies every pending migration of the configured SQL database
// (action "up"), rolls back the latest one ("down", only with confirm) or
// only reads ("status"), and returns where the schema then stands.
func Migrate(ctx context.Context, cfg config.Config, log *slog.Logger, action string, confirm bool) (*migrations.Status, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The SQL database alone: PostgreSQL at postgres_url, or else the
	// embedded store in data_dir, whatever the modules and redis_url.
	p := plan{cfg: cfg, embedded: cfg.PostgresURL == ""}
	d, err := openDatabase(ctx, p, backend.StartupOf(cfg), log, instruments{})
	if err != nil {
		return nil, err
	}
	defer d.db.Close()
	switch action {
	case "up":
		err = d.up(ctx, log)
	case "down":
		err = migrations.Down(ctx, d.migrator, confirm)
	}
	if err != nil {
		return nil, err
	}
	return migrations.ReadStatus(ctx, d.db.DB, d.dialect, d.migrator)
}
