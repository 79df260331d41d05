package cli

import (
	"github.com/spf13/cobra"

	"github.com/airshipltd/airship/app"
	"github.com/airshipltd/airship/internal/config"
)

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
