// Package cli is airship's command line: one cobra command per file, each
// parsing its flags and the configuration, then handing over to app (serve,
// migrate) or transfer (seed, export, import, import-legacy). Main is the
// binary's whole main.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
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
		Use:     "airship",
		Short:   "Airship: the shop API of Airship Ltd",
		Version: release.Version,
		Args:    cobra.NoArgs, // an unknown command is a usage error
		RunE: func(cmd *cobra.Command, _ []string) error {
			_ = cmd.Usage()
			return usagef("airship needs a command")
		},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate(`{{printf "airship %s\n" .Version}}`)
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
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	usageArgs(root)
	return root
}

// usageError is a command line airship cannot run: an unknown command or
// flag, a flag value of the wrong form, missing or extra arguments. It
// exits with status 2, as flag parsing does in Go's tools.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usage marks err as a usage error.
func usage(err error) error { return usageError{err} }

// usagef is a usage error with the given message.
func usagef(format string, args ...any) error { return usage(fmt.Errorf(format, args...)) }

// usageArgs makes the argument checks of cmd and its subcommands report
// usage errors.
func usageArgs(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usage(err)
			}
			return nil
		}
	}
	for _, c := range cmd.Commands() {
		usageArgs(c)
	}
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
	return run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

// run runs the command line args and returns the exit code: 0, 1 when the
// command failed, 2 when the command line is wrong.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := Command()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "airship:", err)
		if errors.As(err, new(usageError)) {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
			return 2
		}
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
