package cli

import (
	"github.com/spf13/cobra"

	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/transfer"
)

func seedCommand() *cobra.Command {
	var opts transfer.SeedOptions
	cmd := &cobra.Command{
		Use:   "seed --products N [--orders M]",
		Short: "Bulk-load generated products and orders into the configured stores",
		Long: `Bulk-load generated products and orders into the configured stores (the
same configuration as serve: Redis and PostgreSQL, or the embedded store).

Products get the ids seed-000000000, seed-000000001, ... and are loaded
as airship import loads them: a product already there under one of these
ids is left as it is. Orders have 1 to 3 lines over the seeded products;
they take no stock. Writes go in batches of --batch (one Redis pipeline or
one SQL statement or transaction each), --workers batches at a time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Products < 0 || opts.Orders < 0 || opts.Batch < 1 || opts.Workers < 1 {
				return usagef("seed: --products and --orders must be >= 0, --batch and --workers >= 1")
			}
			if opts.Products == 0 {
				if opts.Orders > 0 {
					return usagef("seed: orders are placed over the seeded products: give --products too")
				}
				return usagef("seed: give how many products to write: --products N (and --orders M)")
			}
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return transfer.Seed(cmd.Context(), opener(cfg, log), opts, cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&opts.Products, "products", 0, "number of products to write")
	fs.IntVar(&opts.Orders, "orders", 0, "number of orders to write")
	fs.IntVar(&opts.Batch, "batch", 1000, "products or orders per write")
	fs.IntVar(&opts.Workers, "workers", 4, "batches written concurrently")
	config.AddFlags(fs, false)
	return cmd
}
