package cli

import (
	"github.com/spf13/cobra"

	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/transfer"
)

func importCommand() *cobra.Command {
	var opts transfer.ImportOptions
	cmd := &cobra.Command{
		Use:   "import [--in FILE] [--merge] [--spool-dir DIR]",
		Short: "Load a dump written by airship export into the configured store",
		Long: `Load a dump written by "airship export" (from any store) into the configured
store (the same configuration as serve), keeping every id, incarnation,
price and timestamp; the id sequences move past the dump's ids, so new
orders continue after them.

The dump is read from standard input, or from FILE, twice. The first pass
checks all of it and writes nothing: its format and version, every record
(the rules of the API, ids in order, no id twice), and the trailer's
counts and checksum. Only a sound dump is loaded, in the second pass: a
truncated, corrupted or invalid dump changes nothing, even in a store that
is serving. A regular file is read twice where it is; anything else
(a pipe, standard input from a terminal) is copied during the first pass
to a temporary file in --spool-dir (default: $TMPDIR), which is removed
at once and needs room for the whole dump.

If loading fails (a backend fails, or --merge meets a record that
differs), nothing of it stays: the embedded store loads everything in one
transaction, PostgreSQL the orders in one transaction committed last, and
the products written to Redis are deleted again.

A store that already holds products or orders is refused unless --merge is
given; then records already there and equal are skipped, and any record
there with other fields stops the import.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return transfer.Import(cmd.Context(), opener(cfg, log), opts, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.In, "in", "", "file to read the dump from (default: standard input)")
	fs.BoolVar(&opts.Merge, "merge", false, "load into a store that is not empty, skipping records already there and equal")
	fs.StringVar(&opts.SpoolDir, "spool-dir", "", "directory for the copy of a dump read from a pipe or terminal (default: $TMPDIR)")
	config.AddFlags(fs, false)
	return cmd
}
