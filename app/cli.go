package app

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/airshipltd/airship/db"
	"github.com/airshipltd/airship/db/migrations"
)

// Version is set at build time with -ldflags "-X github.com/airshipltd/airship/app.Version=...".
var Version = "dev"

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
	root.AddCommand(extraCommands...)
	return root
}

// extraCommands are added by other files of this package (load test, seed).
var extraCommands []*cobra.Command

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

// backendFlags adds the flags that choose and tune the backends.
func backendFlags(fs *pflag.FlagSet) {
	fs.String("postgres-url", "", "PostgreSQL URL (with --redis-url: production backends)")
	fs.String("redis-url", "", "Redis URL (with --postgres-url: production backends)")
	fs.String("data-dir", "", "directory of the embedded store")
	fs.String("redis-prefix", "", "prefix of every Redis key")
	fs.String("log-level", "", "debug, info, warn or error")
	fs.String("log-format", "", "json or text")
}

// loadConfig reads the configuration with the command's flags on top.
func loadConfig(cmd *cobra.Command) (Config, *slog.Logger, error) {
	file, _ := cmd.Flags().GetString("config")
	cfg, err := LoadConfig(file, changedFlags(cmd.Flags()))
	if err != nil {
		return Config{}, nil, err
	}
	log, err := NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	return cfg, log, err
}

// changedFlags returns only the flags given on the command line, so that
// unset flags do not override the file and environment.
func changedFlags(all *pflag.FlagSet) *pflag.FlagSet {
	fs := pflag.NewFlagSet("changed", pflag.ContinueOnError)
	all.Visit(func(f *pflag.Flag) { fs.AddFlag(f) })
	return fs
}

// NewLogger returns a slog logger writing to w.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log_level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
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
	cmd.Flags().String("addr", "", "listen address (default :8000)")
	cmd.Flags().String("product-image-root", "", "URL prefix of product images")
	cmd.Flags().String("debug-addr", "", "serve pprof on this address (off when empty)")
	backendFlags(cmd.Flags())
	return cmd
}

func migrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:       "migrate up|down|status",
		Short:     "Apply, roll back (one step) or show the database migrations",
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"up", "down", "status"},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return migrate(cmd.Context(), cfg, log, args[0], cmd.OutOrStdout())
		},
	}
	backendFlags(cmd.Flags())
	return cmd
}

func migrate(ctx context.Context, cfg Config, log *slog.Logger, action string, out io.Writer) error {
	var (
		sqlDB   *sql.DB
		dialect migrations.Dialect
	)
	if cfg.Embedded() {
		sdb, err := db.OpenSQLite(ctx, filepath.Join(cfg.DataDir, "airship.db"))
		if err != nil {
			return err
		}
		sqlDB, dialect = sdb.DB, migrations.SQLite
	} else {
		pg, err := OpenPostgres(cfg)
		if err != nil {
			return err
		}
		sqlDB, dialect = pg.DB, migrations.Postgres
	}
	defer sqlDB.Close()
	p, err := migrations.Provider(sqlDB, dialect, log)
	if err != nil {
		return err
	}
	switch action {
	case "up":
		_, err = p.Up(ctx)
	case "down":
		_, err = p.Down(ctx)
	}
	if err != nil {
		return fmt.Errorf("migrate %s: %w", action, err)
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
	return nil
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "airship", Version)
		},
	}
}
