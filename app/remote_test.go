//go:build remote

package app_test

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/airshipltd/airship/internal/testbackend"
)

func init() { buildTags = "remote" }

// TestSplitProcesses: the contract's example session (test/smoketest.sh)
// against a gateway process whose products and orders modules run in two
// other processes. Each module answers its own health checks; the gateway
// is ready only while both modules are, and a module that is down is 503
// for the requests that need it, not for the others.
func TestSplitProcesses(t *testing.T) {
	products := startProcess(t, "AIRSHIP_MODULES=products",
		"AIRSHIP_REDIS_URL="+testbackend.RedisURL(), "AIRSHIP_REDIS_PREFIX="+testbackend.RedisPrefix(t))
	orders := startProcess(t, "AIRSHIP_MODULES=orders",
		"AIRSHIP_POSTGRES_URL="+testbackend.PostgresURL(t), "AIRSHIP_PRODUCTS_URL="+products.url)
	gateway := startProcess(t, "AIRSHIP_MODULES=gateway",
		"AIRSHIP_PRODUCTS_URL="+products.url, "AIRSHIP_ORDERS_URL="+orders.url)
	for _, p := range []*process{products, orders, gateway} {
		p.must("GET", "/healthz", "", 200)
		p.must("GET", "/readyz", "", 200)
	}

	out, err := exec.Command("bash", "../test/smoketest.sh", gateway.url).CombinedOutput()
	if err != nil {
		t.Fatalf("smoketest.sh against the split deployment: %v\n%s\ngateway:\n%s\norders:\n%s\nproducts:\n%s",
			err, out, gateway.logs, orders.logs, products.logs)
	}

	gateway.must("POST", "/products", odyssey, 200)
	if err := products.stop(syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	body := gateway.must("GET", "/readyz", "", 503)
	if !strings.Contains(string(body), "SERVICE_UNAVAILABLE") {
		t.Fatalf("gateway /readyz with products down: %s", body)
	}
	orders.must("GET", "/readyz", "", 503)
	gateway.must("GET", "/products/the_odyssey", "", 503)
	gateway.must("POST", "/orders", orderOfOne, 503)
	gateway.must("GET", "/orders?limit=5", "", 200) // needs orders only
	for _, p := range []*process{orders, gateway} {
		if err := p.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs)
		}
	}
}
