package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/airshipltd/airship/events"
	"github.com/airshipltd/airship/events/rabbitmq"
	"github.com/airshipltd/airship/gateway"
	"github.com/airshipltd/airship/internal/cfenv"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/telemetry"
	"github.com/airshipltd/airship/orders"
)

// The module table: every module airship is made of, declared once with
// the modules it calls, the backend it keeps its data in, how it starts in
// this process and how it is reached in another. The modules key lists
// the modules a process runs ("all": every one); everything else about
// the process follows from the table: which backends it opens and checks
// for /readyz, which keys it needs, which modules it calls over Connect,
// what it serves (the REST API when it runs the gateway, else the Connect
// services of its modules), and which metrics it exports. Nothing else in
// airship switches on a module's name.
//
// Adding a module: an entry below, its start function, and, if another
// process may run it, its Connect adapter in modules_remote.go (see
// docs/architecture.md).

// module is one entry of the module table.
type module struct {
	name string
	// calls are the modules this one calls: each runs in this process, or
	// in another one at its URL.
	calls []string
	// backend is what the module keeps its data in (none for the gateway).
	backend backendKind
	// urlKey is the configuration key of the module's URL, for processes
	// that call it without running it; "" for a module nothing calls.
	urlKey string
	url    func(config.Config) string
	// start builds the module in p, once the modules it calls are there.
	start func(ctx context.Context, a *App) error
	// serve is the module's Connect service, when a process that runs no
	// gateway serves it; dial makes a client of the module in another
	// process. Both are nil in a build without -tags remote.
	serve func(a *App) (path string, h http.Handler)
	dial  func(a *App) (remoteModule, error)
}

// backendKind is what a module keeps its data in.
type backendKind int

const (
	noBackend backendKind = iota
	postgresBackend
	redisBackend
)

// The names of the modules.
const (
	gatewayModule  = "gateway"
	productsModule = "products"
	ordersModule   = "orders"
)

// allModules is the modules value that runs every module in one process.
const allModules = "all"

// modules is the module table, in an order where a module comes after the
// modules it calls; the Connect adapters are connect's (modules_remote.go),
// or none.
func modules() []module {
	c := connectAdapters()
	return []module{
		{
			name: productsModule, backend: redisBackend,
			urlKey: "products_url", url: func(c config.Config) string { return c.ProductsURL },
			start: startProducts, serve: c.serveProducts, dial: c.dialProducts,
		},
		{
			name: ordersModule, calls: []string{productsModule}, backend: postgresBackend,
			urlKey: "orders_url", url: func(c config.Config) string { return c.OrdersURL },
			start: startOrders, serve: c.serveOrders, dial: c.dialOrders,
		},
		{
			name: gatewayModule, calls: []string{productsModule, ordersModule},
			start: startGateway,
		},
	}
}

// adapters are the Connect adapters of the modules; every field is nil in
// a build without -tags remote.
type adapters struct {
	serveProducts, serveOrders func(a *App) (string, http.Handler)
	dialProducts, dialOrders   func(a *App) (remoteModule, error)
	// serveModules serves the Connect services (path → handler) of a
	// process that runs no gateway.
	serveModules func(a *App, services map[string]http.Handler) http.Handler
}

// remoteModule is a module in another process, reached over Connect.
type remoteModule interface {
	// Ready reports whether the module answers.
	Ready(ctx context.Context) error
	// Close closes the client's idle connections.
	Close() error
}

// productsModuleClient is the products module as its callers use it,
// in this process or another: the gateway's Products and the orders
// module's Stock.
type productsModuleClient interface {
	gateway.Products
	orders.Stock
}

// plan is what a process runs: the modules of its modules key and those
// they call in other processes, resolved against the table.
type plan struct {
	cfg config.Config
	// local are the modules this process runs, remote those it calls in
	// other processes, each in the table's order.
	local, remote []module
	// embedded: products and orders run here on the embedded store.
	embedded bool
}

// runs reports whether the process runs the named module.
func (p plan) runs(name string) bool {
	return slices.ContainsFunc(p.local, func(m module) bool { return m.name == name })
}

// servesAPI reports whether the process serves the REST API (it runs the
// gateway); otherwise it serves its modules' Connect services.
func (p plan) servesAPI() bool { return p.runs(gatewayModule) }

// uses reports whether a module of the process keeps its data in b.
func (p plan) uses(b backendKind) bool {
	return slices.ContainsFunc(p.local, func(m module) bool { return m.backend == b })
}

// names are the names of the modules the process runs.
func (p plan) names() []string {
	out := make([]string, len(p.local))
	for i, m := range p.local {
		out[i] = m.name
	}
	return out
}

// productsOnly is the plan with the products module alone, and its
// backend: Redis, or the embedded database, which holds the orders too.
func (p plan) productsOnly() plan {
	if !p.embedded {
		p.local = slices.DeleteFunc(slices.Clone(p.local), func(m module) bool { return m.name != productsModule })
	}
	return p
}

// backendName names the process's backends in the start-up log.
func (p plan) backendName() string {
	if p.embedded {
		return "embedded"
	}
	var b []string
	if p.uses(postgresBackend) {
		b = append(b, "postgres")
	}
	if p.uses(redisBackend) {
		b = append(b, "redis")
	}
	if len(p.remote) > 0 {
		b = append(b, "remote modules")
	}
	return strings.Join(b, "+")
}

// resolve checks the configuration (every key's rule) and resolves its
// modules against the table: the modules it names exist, the modules
// they call that run elsewhere have a URL (and the build has the Connect
// adapters), the process has the backends its modules keep their data
// in, and nothing is set that the process would ignore. Every problem is
// named.
func resolve(c config.Config) (plan, error) {
	if err := c.Validate(); err != nil {
		return plan{}, err
	}
	p, problems := resolveModules(c)
	if len(problems) > 0 {
		return plan{}, fmt.Errorf("invalid configuration: %s", strings.Join(problems, "; "))
	}
	return p, nil
}

func resolveModules(c config.Config) (plan, []string) {
	table := modules()
	p := plan{cfg: c}
	var problems []string
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	known := make([]string, len(table))
	for i, m := range table {
		known[i] = m.name
	}
	names := c.Modules
	if len(names) == 1 && names[0] == allModules {
		names = known
	}
	for i, n := range names {
		switch {
		case !slices.Contains(known, n):
			problem("modules: %q is not a module: name %s, or %s for every one", n, strings.Join(known, ", "), allModules)
		case slices.Contains(names[:i], n):
			problem("modules names %s twice", n)
		}
	}
	if len(problems) > 0 {
		return plan{}, problems
	}
	for _, m := range table {
		if slices.Contains(names, m.name) {
			p.local = append(p.local, m)
		}
	}
	// The modules called that run elsewhere, and the URL of each.
	listed := strings.Join(c.Modules, ",")
	for _, m := range table {
		if p.runs(m.name) {
			if m.urlKey != "" && m.url(c) != "" {
				problem("%s is for a process that calls the %s module in another process; modules %s runs it here", m.urlKey, m.name, listed)
			}
			continue
		}
		calledBy := slices.IndexFunc(p.local, func(l module) bool { return slices.Contains(l.calls, m.name) })
		if calledBy < 0 {
			if m.urlKey != "" && m.url(c) != "" {
				problem("%s is for a process that calls the %s module; modules %s does not", m.urlKey, m.name, listed)
			}
			continue
		}
		p.remote = append(p.remote, m)
		if m.url(c) == "" {
			problem("modules %s calls the %s module, which runs in another process: set %s to its URL",
				listed, m.name, config.EnvName(m.urlKey))
		}
	}

	// The backends the modules keep their data in.
	needPG, needRedis := p.uses(postgresBackend), p.uses(redisBackend)
	switch {
	case needPG && needRedis && c.PostgresURL == "" && c.RedisURL == "":
		p.embedded = true
	case needPG && needRedis && (c.PostgresURL == "") != (c.RedisURL == ""):
		missing, set := "AIRSHIP_REDIS_URL", "postgres_url"
		if c.PostgresURL == "" {
			missing, set = "AIRSHIP_POSTGRES_URL", "redis_url"
		}
		problem("%s is not set but %s is: set both AIRSHIP_POSTGRES_URL and AIRSHIP_REDIS_URL for the production backends, or neither for the embedded store",
			missing, set)
	case needPG && !needRedis && c.PostgresURL == "":
		problem("modules %s needs AIRSHIP_POSTGRES_URL (the orders module keeps its data in PostgreSQL)", listed)
	case needRedis && !needPG && c.RedisURL == "":
		problem("modules %s needs AIRSHIP_REDIS_URL (the products module keeps its data in Redis)", listed)
	}
	if !needPG && c.PostgresURL != "" {
		problem("postgres_url is for the orders module, which modules %s does not run: unset it", listed)
	}
	if !needRedis && c.RedisURL != "" {
		problem("redis_url is for the products module, which modules %s does not run: unset it", listed)
	}
	if !p.runs(ordersModule) && c.AMQPURL != "" {
		problem("amqp_url is for the orders module's events, which modules %s does not run: unset it", listed)
	}

	// The module token: a process that serves modules to others checks
	// it, one that calls others sends it.
	switch {
	case !p.servesAPI() && c.ModuleToken == "" && c.ModuleAuth != config.ModuleAuthOptional:
		problem("modules %s needs AIRSHIP_MODULE_TOKEN (%d or more visible ASCII characters, the same in every process of the deployment: "+
			"it refuses calls without it); set module_auth optional to also take calls without a token during a rolling upgrade",
			listed, config.MinModuleTokenLength)
	case p.servesAPI() && len(p.remote) == 0 && c.ModuleToken != "":
		problem("module_token is for modules in separate processes; modules %s runs every module it calls here: unset it", listed)
	}
	return p, problems
}

// buildable reports, when the process would call or serve a module over
// Connect, whether this binary has the modules' Connect adapters (a build
// with -tags remote).
func (p plan) buildable() error {
	var missing []string
	for _, m := range p.remote {
		if m.dial == nil {
			missing = append(missing, "calls the "+m.name+" module in another process")
		}
	}
	if !p.servesAPI() {
		for _, m := range p.local {
			if m.serve == nil {
				missing = append(missing, "serves the "+m.name+" module to other processes")
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("modules %s %s, and this airship was built without the modules' Connect adapters: build it with -tags remote (make build-remote)",
		strings.Join(p.cfg.Modules, ","), strings.Join(missing, " and "))
}

// LoadConfig reads the configuration (config.Load) with what the platform
// tells the process for the backends its modules use (internal/cfenv).
// The configuration is checked when it is used (resolve).
func LoadConfig(file string, flags *pflag.FlagSet) (config.Config, error) {
	return config.Load(file, flags, platform)
}

// platform fills in $PORT and the backends bound in $VCAP_SERVICES that
// the process's modules keep their data in.
func platform(c *config.Config, explicitlySet func(key string) bool) error {
	p, _ := resolveModules(*c) // problems are reported when the configuration is used
	need := cfenv.Need{Postgres: p.uses(postgresBackend), Redis: p.uses(redisBackend)}
	return cfenv.Apply(c, os.Getenv, explicitlySet, need)
}

// The modules' start functions.

// startProducts: the products module is its store.
func startProducts(_ context.Context, a *App) error {
	a.products = a.backends.products
	return nil
}

// eventsTimeout bounds the connection handshake with RabbitMQ and the wait
// for the confirms of one batch of events.
const eventsTimeout = 10 * time.Second

// startOrders: the orders service on its store and the products module's
// stock, its recovery sweep and key purge, and with events on the relay
// that publishes them.
func startOrders(_ context.Context, a *App) error {
	cfg, st := a.plan.cfg, a.backends
	// The stock of another process costs a network round trip per call:
	// a placed order's reservation is committed after the answer.
	remoteStock := !a.plan.runs(productsModule)
	svcCfg := orders.Config{
		HoldFor: cfg.ReservationTimeout, KeyTTL: cfg.IdempotencyTTL, KeyStaleAfter: cfg.RequestTimeout, Tx: st.tx,
		CommitInBackground: remoteStock, Observer: a.inst.ordersObserver(),
	}
	if cfg.Events() {
		relay := events.NewRelay(st.outbox, rabbitmq.New(cfg.AMQPURL, cfg.EventsExchange, eventsTimeout), events.Config{
			BatchSize: cfg.EventsBatchSize, Interval: cfg.EventsInterval, Retention: cfg.EventsRetention,
		}, a.log)
		svcCfg.Changed = relay.Notify
		a.inst.Register(telemetry.NewOutboxCollector(relay)) // when metrics are on
		a.relay = relay
		a.closers = append(a.closers, relay.Close)
		a.runners = append(a.runners, relay.Run, relay.Maintain)
	}
	svc := orders.NewService(st.orders, a.products, a.log, svcCfg)
	a.orders, a.ordersService = svc, svc
	a.closers = append(a.closers, func() error { svc.Wait(); return nil })
	a.runners = append(a.runners, func(ctx context.Context) { svc.Run(ctx, cfg.RecoveryInterval) })
	return nil
}

// startGateway: the REST API on the products and orders modules. Its
// readiness is the process's own backends only: a module another process
// runs is not part of it, so that the API keeps answering the requests
// that need only the other module; the outage log probes the remote
// modules to say when they answer again.
func startGateway(_ context.Context, a *App) error {
	cfg := a.plan.cfg
	accessEvery, err := config.AccessLogEvery(cfg.AccessLog)
	if err != nil {
		return err
	}
	var probe func(context.Context) error
	if len(a.remotes) > 0 {
		probe = func(ctx context.Context) error {
			var errList []error
			for _, r := range a.remotes {
				errList = append(errList, r.Ready(ctx))
			}
			return errors.Join(errList...)
		}
	}
	g := gateway.New(a.products, a.orders, a.backends.ready, gateway.Config{
		ImageRoot:      cfg.ProductImageRoot,
		BodyLimit:      cfg.BodyLimit,
		RequestTimeout: cfg.RequestTimeout,
		APIKeys:        cfg.APIKeys,
		AccessLogEvery: accessEvery,
		Observer:       a.inst.requestObserver(),
		Tracing:        a.inst.gatewayTracing(),
		Probe:          probe,
	}, a.log)
	a.handler = g
	a.runners = append(a.runners, g.WatchOutages)
	return nil
}
