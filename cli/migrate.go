package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/airshipltd/airship/app"
	"github.com/airshipltd/airship/db/migrations"
	"github.com/airshipltd/airship/internal/config"
)

func migrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply, roll back (one step, with --confirm) or show the database migrations",
		Long: `Apply every pending migration (up), roll back the latest one (down), or
show each migration's state (status), on the SQL database: PostgreSQL at
postgres_url, or else the embedded store in data_dir.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return usagef("migrate needs a subcommand: up, down or status")
		},
	}
	migration := func(action, short, long string) *cobra.Command {
		sub := &cobra.Command{
			Use:   action,
			Short: short,
			Long:  long,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				cfg, log, err := loadConfig(cmd)
				if err != nil {
					return err
				}
				confirm, _ := cmd.Flags().GetBool("confirm")
				schema, err := app.Migrate(cmd.Context(), cfg, log, action, confirm)
				if err != nil {
					return err
				}
				printSchema(cmd.OutOrStdout(), schema)
				return nil
			},
		}
		config.AddFlags(sub.Flags(), false)
		return sub
	}
	down := migration("down", "Roll back the latest migration (needs --confirm)",
		`Roll back the latest migration. It drops what that migration created,
data included, and a server running on the database stops being ready
(/readyz answers 503) until "migrate up" runs again; it needs --confirm.`)
	down.Flags().Bool("confirm", false, "confirm that migrate down may drop tables and their data")
	cmd.AddCommand(
		migration("up", "Apply every pending migration",
			`Apply every pending migration, adopting the old shop's schema in place
first if the database holds it (a schema that would break the ledger is
refused, naming what differs). Then print each migration's state.`),
		down,
		migration("status", "Show each migration's state and the schema version",
			`Show each migration's state, whether the database was (or will be)
adopted from the old shop's schema, and the schema version against the
one this release needs. It reads the SQL database only.`),
	)
	return cmd
}

// printSchema writes whether the database was adopted from the old shop's
// schema (or will be by migrate up), each migration's state, and the
// schema version against the one this release needs.
func printSchema(out io.Writer, s *migrations.Status) {
	switch {
	case s.AdoptionPending:
		fmt.Fprintf(out, "the old shop's schema (alembic revision %s) is here: `airship migrate up` (or serve) adopts it in place\n",
			migrations.LegacyRevision)
	case s.Adopted != nil:
		a := s.Adopted
		fmt.Fprintf(out, "adopted the old shop's schema (alembic revision %s) on %s, keeping %d orders and %d order lines:\n",
			a.Revision, a.At.UTC().Format("2006-01-02 15:04:05 UTC"), a.Orders, a.OrderLines)
		for _, c := range a.Changes {
			fmt.Fprintf(out, "  - %s\n", c)
		}
	}
	for _, m := range s.Migrations {
		applied := "pending"
		if !m.AppliedAt.IsZero() {
			applied = "applied " + m.AppliedAt.Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(out, "%-8s %-30s %s\n", m.State, m.Source.Path, applied)
	}
	fmt.Fprintln(out, schemaVersion(s.Version, s.Needed))
}

// schemaVersion says how the database's schema version stands to the one
// this release needs. During a rolling upgrade the previous release sees a
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
