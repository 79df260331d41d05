//go:build !remote

package app_test

import (
	"strings"
	"testing"

	"github.com/airshipltd/airship/app"
)

// TestModulesNeedRemoteBuild: the default build runs every module in one
// process and says how to get one that can split them.
func TestModulesNeedRemoteBuild(t *testing.T) {
	cfg := testConfig()
	cfg.Modules, cfg.ProductsURL, cfg.OrdersURL = []string{"gateway"}, "http://127.0.0.1:1", "http://127.0.0.1:2"
	if _, err := app.New(t.Context(), cfg, testLogger(t)); err == nil || !strings.Contains(err.Error(), "-tags remote") {
		t.Fatalf("modules gateway in the default build: %v; want an error naming -tags remote", err)
	}
}
