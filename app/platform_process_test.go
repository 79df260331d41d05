package app_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/airshipltd/airship/internal/testbackend"
)

// TestCloudFoundryEnvironment starts the binary as Cloud Foundry does: no
// AIRSHIP_ADDR or backend URL, only PORT and VCAP_SERVICES binding the
// local PostgreSQL (its URL with a password, which trust authentication
// ignores) and Redis. airship must serve on $PORT in production mode, put
// orders in that database and products in that Redis, and never log the
// password.
func TestCloudFoundryEnvironment(t *testing.T) {
	const password = "vcap-Secret-9f3k"
	pgURL, err := url.Parse(testbackend.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	pgURL.User = url.UserPassword(pgURL.User.Username(), password)
	rdbURL, err := url.Parse(testbackend.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	prefix := testbackend.RedisPrefix(t)
	vcap := fmt.Sprintf(`{
		"elephantsql": [{"name": "airship-db", "label": "elephantsql", "plan": "turtle",
			"tags": ["postgres", "postgresql", "relational"], "credentials": {"uri": %q}}],
		"p.redis": [{"name": "airship-cache", "label": "p.redis", "plan": "cache-small",
			"tags": ["redis", "pivotal", "on-demand"], "credentials": {"host": %q, "port": %s}}]
	}`, pgURL.String(), rdbURL.Hostname(), rdbURL.Port())

	_, port, _ := net.SplitHostPort(testbackend.FreeAddr(t))
	cmd := exec.Command(binary(t), "serve")
	cmd.Dir = t.TempDir()
	cmd.Env = append(environWithout("AIRSHIP_", "PORT=", "VCAP_SERVICES="),
		"PORT="+port, "VCAP_SERVICES="+vcap, "AIRSHIP_REDIS_PREFIX="+prefix)
	p := launch(t, cmd, "http://127.0.0.1:"+port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-p.exited:
			t.Fatalf("airship exited: %v\n%s", err, p.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("airship is not ready on $PORT %s: %v\n%s", port, err, p.logs)
		}
	}

	p.must("POST", "/products", odyssey, 200)
	p.must("POST", "/orders", orderOfOne, 200)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	pg, err := sqlx.Open("postgres", pgURL.String())
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	var orders int
	if err := pg.GetContext(ctx, &orders, "SELECT count(*) FROM orders"); err != nil || orders != 1 {
		t.Fatalf("orders in the bound PostgreSQL database: %d, %v; want 1", orders, err)
	}
	opts, _ := redis.ParseURL(testbackend.RedisURL())
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys under %s in the bound Redis: %q, %v; want the product's", prefix, keys, err)
	}
	if _, err := os.Stat(filepath.Join(cmd.Dir, "data")); !os.IsNotExist(err) {
		t.Fatalf("airship made an embedded store in %s/data (%v); want none in production mode", cmd.Dir, err)
	}

	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs)
	}
	logs := p.logs.String()
	if !strings.Contains(logs, `"backend":"postgres+redis"`) || !strings.Contains(logs, `"addr":":`+port+`"`) {
		t.Fatalf("start-up log does not show production mode on :%s:\n%s", port, logs)
	}
	if strings.Contains(logs, password) {
		t.Fatalf("the log shows the password from VCAP_SERVICES:\n%s", logs)
	}
}

// environWithout returns the environment less the variables that start
// with one of prefixes.
func environWithout(prefixes ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, p := range prefixes {
			keep = keep && !strings.HasPrefix(kv, p)
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}
