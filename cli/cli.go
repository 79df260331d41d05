// Package cli is airship's command line: one cobra command per file, each
// parsing its flags and the configuration, then handing over to app (serve,
// migrate) or transfer (seed, export, import, import-legacy). Main is the
// binary's whole main.
package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/airshipltd/airship/app"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/release"
	"github.com/airshipltd/airship/internal/telemetry"
	"github.com/airshipltd/airship/transfer"
)

// Command returns airship's command line.
func Command() *cobra.Command {
	root := &cobra.Command{
		Use:           "airship",
		Short:         "Airship: the shop API of Airship Ltd",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", "", "config file (default ./config.yaml if present)")
	// Each call makes fresh commands, so that every command line parses
	// into its own options.
	root.AddCommand(
		serveCommand(),
		migrateCommand(),
		versionCommand(),
		healthcheckCommand(),
		seedCommand(),
		exportCommand(),
		importCommand(),
		importLegacyCommand(),
		loadtestCommand(),
	)
	return root
}

// opener opens the stores of cfg's modules for a transfer, checked as
// serve checks them, with no metrics and no traces.
func opener(cfg config.Config, log *slog.Logger) transfer.Opener {
	return func(ctx context.Context) (*transfer.Stores, error) { return app.OpenStores(ctx, cfg, log) }
}

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
	cfg, err := app.LoadConfig(file, cmd.Flags())
	if err != nil {
		return config.Config{}, nil, err
	}
	log, err := telemetry.NewLogger(cmd.ErrOrStderr(), cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return config.Config{}, nil, err
	}
	_, unknown := config.UnknownEnv(os.Environ())
	for _, name := range unknown {
		log.Warn("an AIRSHIP_* variable that is no setting of airship is ignored", "variable", name)
	}
	return cfg, log, nil
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
			return app.Run(cmd.Context(), cfg, log)
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
			return app.Migrate(cmd.Context(), cfg, log, args[0], confirm, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&confirm, "confirm", false, "confirm that migrate down may drop tables and their data")
	config.AddFlags(cmd.Flags(), false)
	return cmd
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, Go version and build date",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, "airship", release.Version)
			fmt.Fprintln(out, "  commit:", release.CommitOf())
			fmt.Fprintln(out, "  go:    ", runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
			fmt.Fprintln(out, "  built: ", release.BuildDate)
		},
	}
}
