package app

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
