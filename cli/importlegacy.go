package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airshipltd/airship/app"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/transfer"
)

func importLegacyCommand() *cobra.Command {
	var opts transfer.LegacyOptions
	cmd := &cobra.Command{
		Use:   "import-legacy --from REDIS_URL [--pattern 'products:*'] [--dry-run] [--overwrite]",
		Short: "Copy the old shop's products from its Redis into the configured product store",
		Long: `Copy the old shop's products from its Redis into the configured product
store (Redis or the embedded store: the same configuration as serve).

The old shop kept each product in a hash "products:<id>" with the fields id,
title, passenger_capacity, maximum_speed and in_stock, all strings. --from
names one server, a Redis Cluster's seed nodes (redis://h1:p1?addr=h2:p2)
or Sentinels (redis://s1:26379/0?master_name=NAME&addr=s2:26379). The keys
are read with SCAN (on a cluster, on every master), --batch at a time; each product is checked with the
rules of the API and written whole or not at all, with a new incarnation.
Running it again changes nothing: a product already there with the same
fields counts as "already present and equal"; one there with other fields
is "conflicting" and left as it is unless --overwrite is given (then its
fields are replaced and it keeps its incarnation). A hash that breaks a
rule is "rejected", with the reason. --dry-run reports and changes
nothing: it writes no product, and opens the stores without migrating
them (their schema must be current).

It exits non-zero when a product was rejected or left conflicting.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.From == "" {
				return usagef("import-legacy: --from REDIS_URL (the old shop's Redis) is required")
			}
			if p := config.RedisURLProblem(opts.From); p != "" {
				return usagef("import-legacy: --from %s", p)
			}
			if opts.Batch < 1 || opts.Batch > 100_000 {
				return usagef("import-legacy: --batch must be from 1 to 100000")
			}
			if !strings.ContainsAny(opts.Pattern, "*?[") {
				return usagef("import-legacy: --pattern %q must end in a glob such as *", opts.Pattern)
			}
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			// The product store alone, changed in no other way by a dry run.
			open := func(ctx context.Context) (*transfer.Stores, error) {
				return app.OpenProducts(ctx, cfg, log, opts.DryRun)
			}
			return transfer.ImportLegacy(cmd.Context(), cfg, open, opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.From, "from", "", "URL of the old shop's Redis: redis://old-redis:6379/0, a cluster's seed nodes (?addr=…) or Sentinels (?master_name=…)")
	fs.StringVar(&opts.Pattern, "pattern", "products:*", "SCAN pattern of the product hashes; the id follows the part before the first glob character")
	fs.BoolVar(&opts.DryRun, "dry-run", false, "report what would be imported; write no product")
	fs.BoolVar(&opts.Overwrite, "overwrite", false, "replace the fields of products already there with other fields")
	fs.IntVar(&opts.Batch, "batch", 1000, "keys read per SCAN and products written per round trip")
	config.AddFlags(fs, false)
	return cmd
}
