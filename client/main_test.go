package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"

	"github.com/airshipltd/airship/app"
	"github.com/airshipltd/airship/internal/config"
)

// airshipURL is the base URL of an airship on the embedded store that
// TestMain starts for the examples.
var airshipURL string

func TestMain(m *testing.M) {
	code, err := runWithAirship(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func runWithAirship(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "airship-client-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	cfg := config.Defaults()
	cfg.DataDir, cfg.MetricsAddr = dir, ""
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return 0, fmt.Errorf("start airship: %w", err)
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	airshipURL = "http://" + ln.Addr().String()
	code := m.Run()
	cancel()
	return code, <-served
}
