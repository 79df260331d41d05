package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/airshipltd/airship/db/migrations"
	"github.com/airshipltd/airship/internal/backend"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/telemetry"
)

// Version is the release version, set at build time from the VERSION file
// (make build: -ldflags "-X github.com/airshipltd/airship/app.Version=...").
var Version = "dev"

// BuildDate is when the binary was built (RFC 3339, UTC), set at build
// time like Version.
var BuildDate = "unknown"

// Command returns airship's command line.
func Command() *cobra.Command {
	root := &cobra.Command{
		Use:           "airship",
		Short:         "Airship: the shop API of Airship Ltd",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", "", "config file (default ./config.yaml if present)")
	root.AddCommand(serveCommand(), migrateCommand(), versionCommand())
	for _, c := range extraCommands {
		root.AddCommand(c())
	}
	return root
}

// extraCommands are added by other files of this package (load test,
// seed, imports and exports): each makes a fresh command, so that every
// command line parses into its own options.
var extraCommands []func() *cobra.Command

// Main runs the command line and returns the process exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Command().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "airship:", err)
		return 1
	}
	return 0
}

// loadConfig reads the configuration with the command's flags on top.
func loadConfig(cmd *cobra.Command) (config.Config, *slog.Logger, error) {
	file, _ := cmd.Flags().GetString("config")
	cfg, err := LoadConfig(file, cmd.Flags())
	if err != nil {
		return config.Config{}, nil, err
	}
	log, err := NewLogger(cmd.ErrOrStderr(), cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return config.Config{}, nil, err
	}
	_, unknown := config.UnknownEnv(os.Environ())
	for _, name := range unknown {
		log.Warn("an AIRSHIP_* variable that is no setting of airship is ignored", "variable", name)
	}
	return cfg, log, nil
}

// NewLogger returns a slog logger writing to w; a line logged with the
// context of a traced request carries its trace_id and span_id.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log_level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts))), nil
	case "text":
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("log_format %q: want json or text", format)
}

func serveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the shop API",
		Long: `Serve the shop API.

With AIRSHIP_POSTGRES_URL and AIRSHIP_REDIS_URL set, orders live in PostgreSQL
and products in Redis. With neither set, everything lives in an embedded
database under AIRSHIP_DATA_DIR (default ./data).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return Run(cmd.Context(), cfg, log)
		},
	}
	config.AddFlags(cmd.Flags(), true)
	return cmd
}

func migrateCommand() *cobra.Command {
	var confirm bool
	cmd := &cobra.Command{
		Use:   "migrate up|down|status",
		Short: "Apply, roll back (one step, with --confirm) or show the database migrations",
		Long: `Apply every pending migration (up), roll back the latest one (down), or
show each migration's state (status).

down drops what the latest migration created, data included, and a server
running on the database stops being ready (/readyz answers 503) until
"migrate up" runs again; it needs --confirm.`,
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"up", "down", "status"},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return migrate(cmd.Context(), cfg, log, args[0], confirm, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&confirm, "confirm", false, "confirm that migrate down may drop tables and their data")
	config.AddFlags(cmd.Flags(), false)
	return cmd
}

func migrate(ctx context.Context, cfg config.Config, log *slog.Logger, action string, confirm bool, out io.Writer) error {
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

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, Go version and build date",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, "airship", Version)
			fmt.Fprintln(out, "  commit:", commit())
			fmt.Fprintln(out, "  go:    ", runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
			fmt.Fprintln(out, "  built: ", BuildDate)
		},
	}
}
