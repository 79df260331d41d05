package cli

import (
	"github.com/spf13/cobra"

	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/transfer"
	"github.com/airshipltd/airship/transfer/dump"
)

func exportCommand() *cobra.Command {
	var (
		out     string
		version int
	)
	cmd := &cobra.Command{
		Use:   "export [--out FILE] [--dump-version N]",
		Short: "Write every product and order of the configured store as a portable dump",
		Long: `Write every product (with its stock and incarnation) and every order (with
its lines, prices, timestamps and ids) of the configured store (the same
configuration as serve) as an airship dump: versioned JSON Lines, the same
whichever store it comes from, ending with a trailer that counts the records
and holds their SHA-256. "airship import" loads it into any store.

The dump goes to standard output, or to FILE. A regular FILE (or one that
does not exist yet) is written beside it under a temporary name and renamed
only once complete, so it never holds part of a dump; through a symbolic
link, the file the link names is written, and the link stays. Anything
else (a FIFO, a device, /dev/stdout) is written as it is, never replaced. Records are read a page at a time, in constant memory. For an
exact copy, export while nothing writes to the shop: each product and order
is otherwise exported as it was when its page was read.

--dump-version 1 writes the format of the releases before version 2 (the
same records; the trailer's counts and ids not checksummed), which those
releases can import: for going back to one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if version < 1 || version > dump.Version {
				return usagef("export: --dump-version must be from 1 to %d", dump.Version)
			}
			return transfer.Export(cmd.Context(), opener(cfg, log), out, version, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the dump to (default: standard output)")
	cmd.Flags().IntVar(&version, "dump-version", dump.Version, "version of the dump format to write (1: for a release that reads only version 1)")
	config.AddFlags(cmd.Flags(), false)
	return cmd
}
