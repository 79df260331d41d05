//go:build remote

package app

import (
	"net/http"

	"connectrpc.com/connect"

	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/rpc"
	"github.com/airshipltd/airship/orders/ordersrpc"
	"github.com/airshipltd/airship/products/productsrpc"
)

// connectAdapters are the modules' Connect adapters, which let each module
// run in a process of its own (serve --modules): built with -tags remote.
func connectAdapters() adapters {
	return adapters{
		serveProducts: func(a *App) (string, http.Handler) {
			return productsrpc.NewHandler(a.backends.products, rpc.Observe(a.log, a.inst.Tracer()))
		},
		serveOrders: func(a *App) (string, http.Handler) {
			return ordersrpc.NewHandler(a.ordersService, rpc.Observe(a.log, a.inst.Tracer()))
		},
		dialProducts: func(a *App) (remoteModule, error) {
			c := productsrpc.NewClient(moduleClient(a.plan.cfg), a.plan.cfg.ProductsURL, clientOptions(a.plan.cfg)...)
			a.products = c
			return c, nil
		},
		dialOrders: func(a *App) (remoteModule, error) {
			c := ordersrpc.NewClient(moduleClient(a.plan.cfg), a.plan.cfg.OrdersURL, clientOptions(a.plan.cfg)...)
			a.orders = c
			return c, nil
		},
		serveModules: func(a *App, services map[string]http.Handler) http.Handler {
			cfg := a.plan.cfg
			return rpc.Mux(rpc.Server{
				// Readiness is the process's own backends only.
				Ready: a.backends.ready,
				// The calls it accepts are those with the module token, or,
				// with module_auth optional, also those with none.
				Auth: rpc.Auth{Token: cfg.ModuleToken, Optional: cfg.ModuleAuth == config.ModuleAuthOptional},
				Log:  a.log,
			}, services)
		},
	}
}

// moduleClient is the HTTP client of calls to another module, with a
// pool of connections as large as the requests a process serves at once
// against its backends.
func moduleClient(cfg config.Config) *http.Client {
	return rpc.NewHTTPClient(cfg.BackendTimeout, 2*max(cfg.RedisPoolSize, cfg.PostgresMaxConns))
}

// clientOptions are the options of the clients of other modules: every
// call carries the module token.
func clientOptions(cfg config.Config) []connect.ClientOption {
	return append(rpc.ClientOptions(nil), rpc.SendToken(cfg.ModuleToken))
}
