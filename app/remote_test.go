//go:build remote

package app_test

import (
	"os"
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
	products := startProcess(t, "AIRSHIP_MODULES=products", "AIRSHIP_MODULE_TOKEN="+moduleToken,
		"AIRSHIP_REDIS_URL="+testbackend.RedisURL(), "AIRSHIP_REDIS_PREFIX="+testbackend.RedisPrefix(t))
	orders := startProcess(t, "AIRSHIP_MODULES=orders", "AIRSHIP_MODULE_TOKEN="+moduleToken,
		"AIRSHIP_POSTGRES_URL="+testbackend.PostgresURL(t), "AIRSHIP_PRODUCTS_URL="+products.url)
	gateway := startProcess(t, "AIRSHIP_MODULES=gateway", "AIRSHIP_MODULE_TOKEN="+moduleToken,
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

// TestModuleNeedsTheToken: a process of the products or orders module
// without the module token does not start, unless module_auth is
// optional, which it warns of at start.
func TestModuleNeedsTheToken(t *testing.T) {
	for _, env := range [][]string{
		{"AIRSHIP_MODULES=products", "AIRSHIP_REDIS_URL=" + testbackend.RedisURL()},
		{"AIRSHIP_MODULES=orders", "AIRSHIP_POSTGRES_URL=postgres://127.0.0.1:1/airship", "AIRSHIP_PRODUCTS_URL=http://127.0.0.1:1"},
	} {
		cmd := exec.Command(binary(t), "serve")
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), append(env, "AIRSHIP_MODULE_TOKEN=", "AIRSHIP_MODULE_AUTH=")...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "needs AIRSHIP_MODULE_TOKEN") {
			t.Errorf("serve %v without a module token: %v\n%s\nwant a non-zero exit naming AIRSHIP_MODULE_TOKEN", env, err, out)
		}
	}
	p := startProcess(t, "AIRSHIP_MODULES=products", "AIRSHIP_MODULE_AUTH=optional",
		"AIRSHIP_REDIS_URL="+testbackend.RedisURL(), "AIRSHIP_REDIS_PREFIX="+testbackend.RedisPrefix(t))
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs)
	}
	if !strings.Contains(p.logs.String(), "module_auth is optional") {
		t.Errorf("a products module with module_auth optional did not warn of it:\n%s", p.logs)
	}
}
