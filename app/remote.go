//go:build remote

package app

import (
	"context"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/trace"

	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/rpc"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/orders/ordersrpc"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/productsrpc"
)

// This file is built with -tags remote: it plugs in the Connect adapters
// that let each module run in its own process (serve --modules).
func init() { remote = connectModules{} }

type connectModules struct{}

// moduleConns is the pool of connections to each module: as many as the
// requests a process serves at once against its backends.
func moduleConns(cfg config.Config) int { return 2 * max(cfg.RedisPoolSize, cfg.PostgresMaxConns) }

func (connectModules) products(cfg config.Config) (remoteProducts, error) {
	hc := rpc.NewHTTPClient(cfg.BackendTimeout, moduleConns(cfg))
	c := productsrpc.NewClient(hc, cfg.ProductsURL, clientOptions(cfg)...)
	return productsClient{c, hc}, nil
}

func (connectModules) orders(cfg config.Config) (remoteOrders, error) {
	hc := rpc.NewHTTPClient(cfg.BackendTimeout, moduleConns(cfg))
	c := ordersrpc.NewClient(hc, cfg.OrdersURL, clientOptions(cfg)...)
	return ordersClient{c, hc}, nil
}

// clientOptions are the options of the clients of other modules: every
// call carries the module token.
func clientOptions(cfg config.Config) []connect.ClientOption {
	return append(rpc.ClientOptions(nil), rpc.SendToken(cfg.ModuleToken))
}

func (connectModules) productsHandler(store products.Store, ready func(context.Context) error, cfg config.Config, log *slog.Logger, tracer trace.Tracer) http.Handler {
	path, h := productsrpc.NewHandler(store, rpc.Observe(log, tracer))
	return rpc.Mux(path, h, moduleServer(ready, cfg, log))
}

func (connectModules) ordersHandler(svc *orders.Service, ready func(context.Context) error, cfg config.Config, log *slog.Logger, tracer trace.Tracer) http.Handler {
	path, h := ordersrpc.NewHandler(svc, rpc.Observe(log, tracer))
	return rpc.Mux(path, h, moduleServer(ready, cfg, log))
}

// moduleServer is how a module's process serves its module: the calls it
// accepts are those with the module token, or, with module_auth optional,
// also those with none.
func moduleServer(ready func(context.Context) error, cfg config.Config, log *slog.Logger) rpc.Server {
	return rpc.Server{
		Ready: ready,
		Auth:  rpc.Auth{Token: cfg.ModuleToken, Optional: cfg.ModuleAuth == config.ModuleAuthOptional},
		Log:   log,
	}
}

type productsClient struct {
	*productsrpc.Client
	hc *http.Client
}

func (c productsClient) Close() error { c.hc.CloseIdleConnections(); return nil }

type ordersClient struct {
	*ordersrpc.Client
	hc *http.Client
}

func (c ordersClient) Close() error { c.hc.CloseIdleConnections(); return nil }
