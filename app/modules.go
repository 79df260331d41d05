package app

import (
	"fmt"
	"os"
	"strings"

	"github.com/airshipltd/airship/internal/cfenv"
	"github.com/airshipltd/airship/internal/config"
	"github.com/spf13/pflag"
)

// The modules a process can run (the modules key). Every module runs in
// one process by default; a build with -tags remote can run each in its
// own process, the modules calling each other over Connect (see
// remote.go).
const (
	// ModulesAll runs the gateway, products and orders in this process.
	ModulesAll = "all"
	// ModuleGateway serves the REST API and calls the products and orders
	// modules at products_url and orders_url.
	ModuleGateway = "gateway"
	// ModuleProducts serves the products module's RPC API on Redis.
	ModuleProducts = "products"
	// ModuleOrders serves the orders module's RPC API on PostgreSQL,
	// taking stock from the products module at products_url, and runs the
	// recovery sweep.
	ModuleOrders = "orders"
)

// LoadConfig reads the configuration (config.Load) with what the platform
// tells the process for the backends its modules use (internal/cfenv),
// and checks the modules' needs.
func LoadConfig(file string, flags *pflag.FlagSet) (config.Config, error) {
	c, err := config.Load(file, flags, platform)
	if err != nil {
		return config.Config{}, err
	}
	return c, checkModules(c)
}

// platform fills in $PORT and the backends bound in $VCAP_SERVICES that
// the process's modules use: orders PostgreSQL, products Redis.
func platform(c *config.Config, explicitlySet func(key string) bool) error {
	all := c.Modules == "" || c.Modules == ModulesAll
	return cfenv.Apply(c, os.Getenv, explicitlySet,
		cfenv.Need{Postgres: all || c.Modules == ModuleOrders, Redis: all || c.Modules == ModuleProducts})
}

// validate checks the configuration's keys and the modules' needs.
func validate(c config.Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	return checkModules(c)
}

// checkModules checks that the process has the backends and module
// addresses its modules need, and nothing that would be ignored.
func checkModules(c config.Config) error {
	var problems []string
	need := func(ok bool, msg string) {
		if !ok {
			problems = append(problems, msg)
		}
	}
	switch c.Modules {
	case ModulesAll:
		if (c.PostgresURL == "") != (c.RedisURL == "") {
			missing, set := "AIRSHIP_REDIS_URL", "postgres_url"
			if c.PostgresURL == "" {
				missing, set = "AIRSHIP_POSTGRES_URL", "redis_url"
			}
			problems = append(problems, fmt.Sprintf(
				"%s is not set but %s is: set both AIRSHIP_POSTGRES_URL and AIRSHIP_REDIS_URL for the production backends, or neither for the embedded store",
				missing, set))
		}
		need(c.ProductsURL == "" && c.OrdersURL == "" && c.ModuleToken == "",
			"products_url, orders_url and module_token are for modules gateway, orders and products; with modules all every module runs in this process")
	case ModuleProducts:
		need(c.RedisURL != "", "modules products needs AIRSHIP_REDIS_URL (the products module keeps its data in Redis)")
		need(c.ModuleToken != "" || c.ModuleAuth == config.ModuleAuthOptional, moduleTokenNeeded(c.Modules))
		need(c.PostgresURL == "" && c.ProductsURL == "" && c.OrdersURL == "" && c.AMQPURL == "",
			"modules products uses only redis_url: unset postgres_url, products_url, orders_url and amqp_url")
	case ModuleOrders:
		need(c.PostgresURL != "", "modules orders needs AIRSHIP_POSTGRES_URL (the orders module keeps its data in PostgreSQL)")
		need(c.ProductsURL != "", "modules orders needs AIRSHIP_PRODUCTS_URL (the products module it takes stock from)")
		need(c.ModuleToken != "" || c.ModuleAuth == config.ModuleAuthOptional, moduleTokenNeeded(c.Modules))
		need(c.RedisURL == "" && c.OrdersURL == "", "modules orders uses postgres_url and products_url: unset redis_url and orders_url")
	case ModuleGateway:
		need(c.ProductsURL != "" && c.OrdersURL != "", "modules gateway needs AIRSHIP_PRODUCTS_URL and AIRSHIP_ORDERS_URL")
		need(c.PostgresURL == "" && c.RedisURL == "" && c.AMQPURL == "",
			"modules gateway opens no backend: unset postgres_url, redis_url and amqp_url")
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid configuration: %s", strings.Join(problems, "; "))
	}
	return nil
}

// moduleTokenNeeded is the problem of a module process without a token.
func moduleTokenNeeded(modules string) string {
	return fmt.Sprintf("modules %s needs AIRSHIP_MODULE_TOKEN (%d or more visible ASCII characters, the same in every process of the deployment: "+
		"it refuses calls without it); set module_auth optional to also take calls without a token during a rolling upgrade", modules, config.MinModuleTokenLength)
}

// embedded reports whether the configuration selects the embedded store.
func embedded(c config.Config) bool {
	return c.Modules == ModulesAll && c.PostgresURL == "" && c.RedisURL == ""
}

// backendName names the backends of the process's modules in the
// start-up log.
func backendName(c config.Config) string {
	switch {
	case c.Modules == ModuleGateway:
		return "remote modules"
	case c.Modules == ModuleProducts:
		return "redis"
	case c.Modules == ModuleOrders:
		return "postgres"
	case embedded(c):
		return "embedded"
	}
	return "postgres+redis"
}
