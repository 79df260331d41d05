package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/airshipltd/airship/app"
	"github.com/airshipltd/airship/internal/config"
	"github.com/spf13/cobra"
)

func healthcheckCommand() *cobra.Command {
	var (
		url     string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the API is ready (GET /readyz answers 200), 1 otherwise",
		Long: `Ask a running airship whether it is ready: GET /readyz must answer 200
within --timeout (positive). Exits 0 when it does, 1 otherwise.

For container HEALTHCHECKs and orchestrators on images without curl. The
default URL is /readyz on the configured address (addr, AIRSHIP_ADDR or
$PORT, read like airship serve reads them), on the loopback interface
when the address has no host.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// A timeout that leaves no time would blame the server.
			if timeout <= 0 {
				return usagef("--timeout must be positive, such as 3s, not %s", timeout)
			}
			if url == "" {
				file, _ := cmd.Flags().GetString("config")
				cfg, err := app.LoadConfig(file, nil)
				if err != nil {
					return err
				}
				if url, err = readyURL(cfg.Addr); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := checkReady(ctx, url); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ready:", url)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "readiness URL (default: /readyz on the configured addr)")
	cmd.Flags().DurationVar(&timeout, "timeout", config.HealthcheckTimeout, "give up after this long")
	return cmd
}

// readyURL is the /readyz URL of a listen address: ":8000" and
// "0.0.0.0:8000" become http://127.0.0.1:8000/readyz.
func readyURL(addr string) (string, error) {
	base, err := baseURL(addr)
	if err != nil {
		return "", err
	}
	return base + "/readyz", nil
}

// baseURL is the URL of the API on a listen address: ":8000" and
// "0.0.0.0:8000" become http://127.0.0.1:8000.
func baseURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// checkReady returns nil if GET url answers 200 before ctx ends.
func checkReady(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// No proxy and no kept-alive connection: one request, straight to airship.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: GET %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
