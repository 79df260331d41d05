//go:build remote

package app_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/airshipltd/airship/internal/testbackend"
)

func init() { buildTags = "remote" }

// TestSplitProcesses: the contract's example session (test/smoketest.sh)
// against a gateway process whose products and orders modules run in two
// other processes. Each module answers its own health checks. With the
// products module down, the requests that need it get 503, the others
// are answered, and the gateway and the orders module stay ready by the
// Helm chart's readiness probe: a module's outage does not take the API
// out of service (docs/scaling.md: orders keep answering reads while
// products is down).
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
	gateway.must("POST", "/orders", orderOfOne, 200)
	probe := chartReadinessProbe(t)
	if err := products.stop(syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	gateway.must("GET", "/products/the_odyssey", "", 503)
	gateway.must("POST", "/orders", orderOfOne, 503)
	gateway.must("GET", "/orders?limit=5", "", 200) // needs orders only
	for name, p := range map[string]*process{"gateway": gateway, "orders module": orders} {
		if err := probe.ready(p.url); err != nil {
			t.Errorf("with products down, the %s is not ready by the chart's readiness probe: %v", name, err)
		}
	}
	gateway.must("GET", "/orders?limit=5", "", 200)
	for _, p := range []*process{orders, gateway} {
		if err := p.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs)
		}
	}
}

// TestSplitModuleNeedsTheToken: a process of the products or orders module
// without the module token does not start, unless module_auth is
// optional, which it warns of at start.
func TestSplitModuleNeedsTheToken(t *testing.T) {
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

// readinessProbe is the readiness probe of the chart's pods: an HTTP GET
// of path on the port named port, failing after timeout, the pod unready
// after failures consecutive failures.
type readinessProbe struct {
	path, port string
	timeout    time.Duration
	failures   int
}

// chartReadinessProbe reads the readiness probe the Helm chart gives
// every airship pod (one pod template for every module): its httpGet in
// templates/_helpers.tpl and its settings in values.yaml.
func chartReadinessProbe(t *testing.T) readinessProbe {
	t.Helper()
	tpl, err := os.ReadFile("../deploy/helm/airship/templates/_helpers.tpl")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`readinessProbe:\s*\n\s*httpGet:\s*\n\s*path: (\S+)\s*\n\s*port: (\S+)\s*\n\s*\{\{- toYaml \.Values\.probes\.readiness`).FindSubmatch(tpl)
	if m == nil {
		t.Fatal("templates/_helpers.tpl: no readinessProbe of the form httpGet {path, port} then probes.readiness; the test reads that form")
	}
	raw, err := os.ReadFile("../deploy/helm/airship/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Probes struct {
			Readiness struct {
				TimeoutSeconds   int `yaml:"timeoutSeconds"`
				FailureThreshold int `yaml:"failureThreshold"`
			} `yaml:"readiness"`
		} `yaml:"probes"`
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	r := values.Probes.Readiness
	p := readinessProbe{path: string(m[1]), port: string(m[2]), timeout: time.Duration(r.TimeoutSeconds) * time.Second,
		failures: r.FailureThreshold}
	// The port named http is containerPort, where airship serves (addr).
	if p.port != "http" || p.timeout <= 0 || p.failures < 1 {
		t.Fatalf("the chart's readiness probe: %+v; the test knows the port named http and needs a timeout and a failure threshold", p)
	}
	return p
}

// ready probes the process at baseURL as a kubelet would, back to back
// rather than every period: it is unready after p.failures consecutive
// failures (a status outside 200-399, or no answer within the timeout).
// A lone failure (a busy machine's slow answer) is forgiven, as by the
// kubelet.
func (p readinessProbe) ready(baseURL string) error {
	client := &http.Client{Timeout: p.timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	failed := 0
	for range 3 * p.failures {
		resp, err := client.Get(baseURL + p.path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 200 || resp.StatusCode >= 400 {
				err = fmt.Errorf("GET %s: %s", p.path, resp.Status)
			}
		}
		if err == nil {
			failed = 0
			continue
		}
		if failed++; failed >= p.failures {
			return err
		}
	}
	return nil
}
