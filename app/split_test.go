//go:build remote

package app_test

import (
	"testing"

	"github.com/airshipltd/airship/app"
	"github.com/airshipltd/airship/internal/testbackend"
)

// In a build with -tags remote the end-to-end suite also runs split: the
// gateway calls the products and orders modules, each served by its own
// App behind a real listener, over Connect.
func init() {
	backends = append(backends, backend{"split", splitConfig})
}

// splitConfig starts the products and orders modules on fresh backends
// and returns the configuration of a gateway that calls them.
func splitConfig(t *testing.T) app.Config {
	p := testConfig()
	p.Modules = app.ModuleProducts
	p.RedisURL = testbackend.RedisURL()
	p.RedisPrefix = testbackend.RedisPrefix(t)
	productsURL := startWith(t, p).url

	o := testConfig()
	o.Modules = app.ModuleOrders
	o.PostgresURL = testbackend.PostgresURL(t)
	o.ProductsURL = productsURL
	ordersURL := startWith(t, o).url

	g := testConfig()
	g.Modules = app.ModuleGateway
	g.ProductsURL, g.OrdersURL = productsURL, ordersURL
	return g
}
