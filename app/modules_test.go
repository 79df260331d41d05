package app

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airshipltd/airship/internal/config"
	"github.com/spf13/pflag"
)

// loadFromEnv loads the configuration from the environment alone and
// checks it as serve does.
func loadFromEnv(t *testing.T) (config.Config, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(file, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(file, nil)
	if err != nil {
		return c, err
	}
	_, err = resolve(c)
	return c, err
}

// mustResolve is the plan of a configuration serve accepts.
func mustResolve(t *testing.T, c config.Config) plan {
	t.Helper()
	p, err := resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// vcapServices binds a PostgreSQL and a Redis service, as Cloud Foundry's
// brokers describe them (see internal/cfenv for many more).
const vcapServices = `{"elephantsql": [{"name": "airship-db", "label": "elephantsql", "tags": ["postgres"],
		"credentials": {"uri": "postgres://xkrgbqto:pw-elephant@rogue.db.elephantsql.com/xkrgbqto"}}],
	"p.redis": [{"name": "cache", "label": "p.redis", "tags": ["redis"],
		"credentials": {"host": "q-s0.redis-instance.default.service-instance-0b1f6c2e.bosh", "password": "pw-tanzu", "port": 6379}}]}`

func TestConfigNeedsBothBackends(t *testing.T) {
	t.Setenv("AIRSHIP_POSTGRES_URL", "postgres://localhost/x")
	_, err := LoadConfig(filepath.Join(t.TempDir(), "none.yaml"), nil)
	if err == nil {
		t.Fatal("config file that does not exist accepted")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	os.WriteFile(file, []byte("addr: \":1\"\n"), 0o600)
	c, err := LoadConfig(file, nil)
	if err == nil {
		_, err = resolve(c)
	}
	if err == nil || !strings.Contains(err.Error(), "AIRSHIP_REDIS_URL is not set") {
		t.Fatalf("only PostgreSQL set: error %v; want one naming AIRSHIP_REDIS_URL", err)
	}
}

// TestStartupLogHidesSecrets runs the serve path with every form of secret
// and a backend that is not there: the log holds no secret, and a setting
// that fails its rule is refused before anything is logged.
func TestStartupLogHidesSecrets(t *testing.T) {
	for _, pg := range []string{
		"host=127.0.0.1 port=1 user=airship password=s3cret dbname=airship sslmode=disable",
		"postgres://airship:s3cret@127.0.0.1:1/airship?sslmode=disable",
		"postgres://airship@127.0.0.1:1/airship?sslmode=disable&password=s3cret",
		"host=127.0.0.1 port=1 password='s3cret' sslmode=disable bad",
	} {
		var logs bytes.Buffer
		c := config.Defaults()
		c.PostgresURL, c.RedisURL = pg, "redis://:s3cret@127.0.0.1:1/0"
		c.APIKeys = []string{"s3cret-api-key-0123456789"}
		c.StartupTimeout = 0
		err := Run(t.Context(), c, slog.New(slog.NewJSONHandler(&logs, nil)))
		if err == nil {
			t.Fatalf("%s: serve started with no backend", pg)
		}
		if out := logs.String() + err.Error(); strings.Contains(out, "s3cret") {
			t.Fatalf("%s: a secret reached the log or the error:\n%s\n%v", pg, logs.String(), err)
		}
	}
}

// TestConfigModulesAndRedisModes: each module needs its own backend and
// the addresses of the modules it calls, nothing else; redis_url must be
// of the form its redis_mode reads.
func TestConfigModulesAndRedisModes(t *testing.T) {
	const pg, rd, token = "postgres://db/x", "redis://cache:6379/0", "module-token-0123456789abcdef0123"
	cases := []struct {
		env  map[string]string
		want string // "" when valid
	}{
		{map[string]string{"MODULES": "products", "REDIS_URL": rd, "MODULE_TOKEN": token}, ""},
		{map[string]string{"MODULES": "products", "MODULE_TOKEN": token}, "modules products needs AIRSHIP_REDIS_URL"},
		{map[string]string{"MODULES": "products", "REDIS_URL": rd, "POSTGRES_URL": pg, "MODULE_TOKEN": token}, "postgres_url is for the orders module, which modules products does not run"},
		{map[string]string{"MODULES": "orders", "POSTGRES_URL": pg, "PRODUCTS_URL": "http://products:8001", "MODULE_TOKEN": token}, ""},
		{map[string]string{"MODULES": "orders", "POSTGRES_URL": pg, "MODULE_TOKEN": token}, "modules orders calls the products module, which runs in another process: set AIRSHIP_PRODUCTS_URL"},
		// The modules' processes need the module token, unless they take
		// calls without one (module_auth optional); their callers may
		// have none (a module of the release before would not check it).
		{map[string]string{"MODULES": "products", "REDIS_URL": rd}, "modules products needs AIRSHIP_MODULE_TOKEN"},
		{map[string]string{"MODULES": "orders", "POSTGRES_URL": pg, "PRODUCTS_URL": "http://p:1"}, "modules orders needs AIRSHIP_MODULE_TOKEN"},
		{map[string]string{"MODULES": "products", "REDIS_URL": rd, "MODULE_AUTH": "optional"}, ""},
		{map[string]string{"MODULES": "orders", "POSTGRES_URL": pg, "PRODUCTS_URL": "http://p:1", "MODULE_AUTH": "optional"}, ""},
		{map[string]string{"MODULES": "products", "REDIS_URL": rd, "MODULE_AUTH": "off"}, `module_auth must be one of required, optional, not "off"`},
		{map[string]string{"MODULES": "products", "REDIS_URL": rd, "MODULE_TOKEN": token[:31]}, "module_token must be 32 to 1024 characters long (it has 31)"},
		{map[string]string{"MODULES": "products", "REDIS_URL": rd, "MODULE_TOKEN": token + " x"}, "module_token has a character other than visible ASCII"},
		{map[string]string{"MODULES": "gateway", "PRODUCTS_URL": "http://p:1", "ORDERS_URL": "http://o:2", "MODULE_TOKEN": token}, ""},
		{map[string]string{"MODULE_TOKEN": token}, "module_token is for modules in separate processes; modules all runs every module it calls here"},
		{map[string]string{"MODULES": "gateway", "PRODUCTS_URL": "http://p:1", "ORDERS_URL": "http://o:2"}, ""},
		{map[string]string{"MODULES": "gateway", "PRODUCTS_URL": "http://p:1"}, "modules gateway calls the orders module, which runs in another process: set AIRSHIP_ORDERS_URL"},
		{map[string]string{"MODULES": "gateway", "PRODUCTS_URL": "products:1", "ORDERS_URL": "http://o:2"}, "products_url: must be an http://"},
		{map[string]string{"MODULES": "everything"}, `modules: "everything" is not a module: name products, orders, gateway, or all for every one`},
		{map[string]string{"PRODUCTS_URL": "http://p:1"}, "products_url is for a process that calls the products module in another process; modules all runs it here"},
		{map[string]string{"REDIS_URL": "redis://a:1?addr=b:2&addr=c:3", "POSTGRES_URL": pg}, ""},
		{map[string]string{"REDIS_URL": "redis://a:1?addr=b:2", "POSTGRES_URL": pg, "REDIS_MODE": "cluster"}, ""},
		{map[string]string{"REDIS_URL": "redis://a:1/2?addr=b:2", "POSTGRES_URL": pg, "REDIS_MODE": "cluster"}, "a cluster has only database 0"},
		{map[string]string{"REDIS_URL": "redis://a:1?addr=b:2", "POSTGRES_URL": pg, "REDIS_MODE": "single"}, "in redis_mode single must be"},
		{map[string]string{"REDIS_URL": "redis://s1:26379/0?master_name=shop&addr=s2:26379", "POSTGRES_URL": pg, "REDIS_MODE": "sentinel"}, ""},
		{map[string]string{"REDIS_URL": "redis://s1:26379/0?addr=s2:26379", "POSTGRES_URL": pg, "REDIS_MODE": "sentinel"}, "needs master_name"},
		{map[string]string{"REDIS_URL": rd, "POSTGRES_URL": pg, "REDIS_MODE": "ring"}, "redis_mode must be one of auto, single, cluster, sentinel"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.env), func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv("AIRSHIP_"+k, v)
			}
			_, err := loadFromEnv(t)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("valid settings refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v; want one containing %q", err, c.want)
			}
		})
	}
}

// TestLoadConfigPlatform: LoadConfig applies PORT and VCAP_SERVICES under
// the config file, AIRSHIP_* variables and flags.
func TestLoadConfigPlatform(t *testing.T) {
	t.Chdir(t.TempDir()) // no ./config.yaml
	t.Setenv("PORT", "9191")
	t.Setenv("VCAP_SERVICES", vcapServices)
	for _, k := range []string{"AIRSHIP_ADDR", "AIRSHIP_POSTGRES_URL", "AIRSHIP_REDIS_URL", "AIRSHIP_DATA_DIR"} {
		t.Setenv(k, "")
	}

	c, err := LoadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":9191" || !strings.Contains(c.PostgresURL, "elephantsql.com") || !strings.Contains(c.RedisURL, ".bosh:6379") || mustResolve(t, c).embedded {
		t.Fatalf("from PORT and VCAP_SERVICES: %+v", c)
	}

	// An AIRSHIP_* variable, a config file entry and a flag each win.
	t.Setenv("AIRSHIP_REDIS_URL", "redis://env:6379/0")
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte("postgres_url: postgres://file/db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	flags.String("addr", "", "")
	if err := flags.Parse([]string{"--addr", "127.0.0.1:7070"}); err != nil {
		t.Fatal(err)
	}
	c, err = LoadConfig(file, flags)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:7070" || c.PostgresURL != "postgres://file/db" || c.RedisURL != "redis://env:6379/0" {
		t.Fatalf("explicit settings did not win: addr %q, postgres %q, redis %q", c.Addr, c.PostgresURL, c.RedisURL)
	}

	// A binding it cannot use stops the start.
	t.Setenv("AIRSHIP_REDIS_URL", "")
	t.Setenv("VCAP_SERVICES", `{"elephantsql": [{"name": "db", "tags": ["postgres"], "credentials": {"uri": "postgres://u:pw@h/d"}}]}`)
	if _, err := LoadConfig("", nil); err == nil || !strings.Contains(err.Error(), "binds no Redis service") {
		t.Fatalf("VCAP_SERVICES without Redis: %v; want an error", err)
	}
}

// TestResolveModuleLists: a list of modules resolves against the module
// table to the modules the process runs, those it calls elsewhere, the
// backends it opens and what it serves.
func TestResolveModuleLists(t *testing.T) {
	const pg, rd, token = "postgres://db/x", "redis://cache:6379/0", "module-token-0123456789abcdef0123"
	for _, c := range []struct {
		modules                    []string
		set                        func(*config.Config)
		local, remote, backendName string
		embedded, api              bool
		problem                    string // "" when valid
	}{
		{modules: []string{"all"}, local: "products,orders,gateway", backendName: "embedded", embedded: true, api: true},
		{modules: []string{"gateway", "orders"}, set: func(c *config.Config) { c.PostgresURL, c.ProductsURL, c.ModuleToken = pg, "http://p:1", token },
			local: "orders,gateway", remote: "products", backendName: "postgres+remote modules", api: true},
		{modules: []string{"products", "orders"}, set: func(c *config.Config) { c.ModuleToken = token },
			local: "products,orders", backendName: "embedded", embedded: true},
		{modules: []string{"orders", "products"}, set: func(c *config.Config) { c.PostgresURL, c.RedisURL, c.ModuleToken = pg, rd, token },
			local: "products,orders", backendName: "postgres+redis"},
		{modules: []string{"gateway", "products"}, set: func(c *config.Config) { c.RedisURL, c.OrdersURL = rd, "http://o:1" },
			local: "products,gateway", remote: "orders", backendName: "redis+remote modules", api: true},
		{modules: []string{"orders", "orders"}, problem: "modules names orders twice"},
		{modules: []string{"gateway", "products"}, set: func(c *config.Config) { c.RedisURL = rd },
			problem: "modules gateway,products calls the orders module, which runs in another process: set AIRSHIP_ORDERS_URL"},
		{modules: []string{"products", "orders"}, problem: "modules products,orders needs AIRSHIP_MODULE_TOKEN"},
		{modules: []string{"gateway", "orders"}, set: func(c *config.Config) { c.ProductsURL, c.RedisURL = "http://p:1", rd },
			problem: "redis_url is for the products module, which modules gateway,orders does not run"},
	} {
		t.Run(strings.Join(c.modules, ","), func(t *testing.T) {
			cfg := config.Defaults()
			cfg.Modules = c.modules
			if c.set != nil {
				c.set(&cfg)
			}
			p, err := resolve(cfg)
			if c.problem != "" {
				if err == nil || !strings.Contains(err.Error(), c.problem) {
					t.Fatalf("%v; want an error containing %q", err, c.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var remote []string
			for _, m := range p.remote {
				remote = append(remote, m.name)
			}
			if got := strings.Join(p.names(), ","); got != c.local {
				t.Errorf("runs %s; want %s", got, c.local)
			}
			if got := strings.Join(remote, ","); got != c.remote {
				t.Errorf("calls %s elsewhere; want %s", got, c.remote)
			}
			if p.backendName() != c.backendName || p.embedded != c.embedded || p.servesAPI() != c.api {
				t.Errorf("backends %q, embedded %v, serves the API %v; want %q, %v, %v",
					p.backendName(), p.embedded, p.servesAPI(), c.backendName, c.embedded, c.api)
			}
		})
	}
}
