package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/airshipltd/airship/app"
	"github.com/airshipltd/airship/loadtest"
)

func loadtestCommand() *cobra.Command {
	var (
		url, out, csvPath string
		users             int
		rampUp, hold      time.Duration
		maxErrorRate      float64
		failOnError       bool
	)
	cmd := &cobra.Command{
		Use:   "loadtest",
		Short: "Run the contract's load scenario against a running API and report latency",
		Long: `Run the contract's load scenario against a running API, through the Go
client (package client), each request sent once.

Each virtual user loops with no think time: create a product with a fresh
unique id (from the rows of the products CSV) → get it → order 1 of it at
"100000.99" → get the order → delete the product → list orders. Users start
evenly spread over --ramp-up, then all keep going for --hold (4 minutes in
all by default). Ctrl-C stops early and still reports.

The default URL is the configured address (addr, AIRSHIP_ADDR or $PORT,
read like airship serve reads them), on the loopback interface when the
address has no host, as for airship healthcheck.

Prints a progress line every second on stderr and a table per step at the
end, and writes summary.json and latency.svg to --out. Exits non-zero
when no request succeeded, or when more than --max-error-rate of them
failed (1% by default), with the first error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				file, _ := cmd.Flags().GetString("config")
				cfg, err := app.LoadConfig(file, nil)
				if err != nil {
					return err
				}
				if url, err = baseURL(cfg.Addr); err != nil {
					return err
				}
			}
			if failOnError {
				maxErrorRate = 0
			}
			if maxErrorRate < 0 || maxErrorRate > 1 {
				return usagef("--max-error-rate %v: want a fraction from 0 to 1", maxErrorRate)
			}
			rows := loadtest.DefaultRows()
			if csvPath != "" {
				f, err := os.Open(csvPath)
				if err != nil {
					return err
				}
				rows, err = loadtest.ParseRows(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", csvPath, err)
				}
			}
			stderr := cmd.ErrOrStderr()
			fmt.Fprintf(stderr, "load test: %s, %d users, ramp-up %s, hold %s\n", url, users, rampUp, hold)
			s, err := loadtest.Run(cmd.Context(), loadtest.Config{
				URL: url, Users: users, RampUp: rampUp, Hold: hold, Rows: rows, Progress: stderr,
			})
			if err != nil {
				return err
			}
			if s.Interrupted {
				fmt.Fprintf(stderr, "interrupted after %.1fs\n", s.Seconds)
			}
			if err := loadtest.WriteTable(cmd.OutOrStdout(), s); err != nil {
				return err
			}
			paths, err := loadtest.WriteReports(out, s)
			for _, p := range paths {
				fmt.Fprintln(stderr, "wrote", p)
			}
			if err != nil {
				return err
			}
			return s.Check(maxErrorRate)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&url, "url", "", "base URL of the API, or several separated by commas (replicas: user i calls the (i mod n)th) (default: the configured addr)")
	fs.IntVar(&users, "users", 3, "number of virtual users")
	fs.DurationVar(&rampUp, "ramp-up", time.Minute, "time over which the users start, evenly spread")
	fs.DurationVar(&hold, "hold", 3*time.Minute, "how long all users keep going after the ramp-up")
	fs.StringVar(&out, "out", "./loadtest-out", "directory for summary.json and latency.svg")
	fs.StringVar(&csvPath, "products", "", "semicolon-separated products CSV (default: the contract's fixtures/products.csv)")
	fs.Float64Var(&maxErrorRate, "max-error-rate", 0.01, "exit non-zero if more than this fraction of the requests failed (0.01 is 1%; 0: any error)")
	fs.BoolVar(&failOnError, "fail-on-error", false, "exit non-zero if any request failed")
	_ = fs.MarkDeprecated("fail-on-error", "use --max-error-rate 0")
	return cmd
}
