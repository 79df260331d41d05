// Package app wires airship together and owns its lifecycle: it reads the
// configuration, opens the backends, migrates them, serves the API and
// shuts down gracefully. It is the only package that knows which store
// implementations are plugged in.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/airshipltd/airship/events"
	"github.com/airshipltd/airship/gateway"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// App is a running airship: its backends, its HTTP handler and the work
// it does in the background.
type App struct {
	cfg      config.Config
	log      *slog.Logger
	backends *backends
	handler  http.Handler
	inst     instruments
	// runners run beside the server until it stops: the recovery sweep,
	// the purge of expired idempotency keys, the outage log, and with
	// events on the event relay, its purge and its backlog log.
	runners []func(context.Context)
	// relay publishes the order events; nil when events are off.
	relay *events.Relay
	// closers release what the modules hold besides the backends.
	closers []func() error
}

// backlogLogEvery is the period of the event backlog's log line.
const backlogLogEvery = 30 * time.Second

// New opens the backends of cfg's modules and builds what the process
// serves: the API (modules all or gateway) or a module's RPC service
// (modules products or orders); Close releases them.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	if err := validate(cfg); err != nil {
		return nil, err
	}
	if cfg.Modules != ModulesAll && remote == nil {
		return nil, fmt.Errorf("modules %s: this airship was built without the remote modules; build it with -tags remote (make build-remote)", cfg.Modules)
	}
	accessEvery, err := config.AccessLogEvery(cfg.AccessLog)
	if err != nil {
		return nil, err
	}
	in, err := newInstruments(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	b, err := openBackends(ctx, cfg, log, in)
	if err != nil {
		return nil, errors.Join(err, in.close())
	}
	a := &App{cfg: cfg, log: log, backends: b, inst: in}
	if err := a.wire(cfg, log, accessEvery); err != nil {
		b.close()
		return nil, errors.Join(err, in.close())
	}
	return a, nil
}

// eventsTimeout bounds the connection handshake with RabbitMQ and the wait
// for the confirms of one batch of events.
const eventsTimeout = 10 * time.Second

// Events returns the event relay, whose Backlog tells how many events
// wait in the outbox and for how long; nil when events are off.
func (a *App) Events() *events.Relay { return a.relay }

// wire builds the modules of cfg on the backends.
func (a *App) wire(cfg config.Config, log *slog.Logger, accessEvery uint64) error {
	b := a.backends
	// remoteStock: the stock is another process's, so that each of its
	// calls is a network round trip, and a placed order's reservation is
	// committed after the answer.
	newService := func(stock orders.Stock, remoteStock bool) *orders.Service {
		svcCfg := orders.Config{
			HoldFor: cfg.ReservationTimeout, KeyTTL: cfg.IdempotencyTTL, KeyStaleAfter: cfg.RequestTimeout, Tx: b.tx,
			CommitInBackground: remoteStock, Observer: a.inst.ordersObserver(),
		}
		if cfg.Events() {
			a.relay = events.NewRelay(b.outbox, events.NewAMQP(cfg.AMQPURL, cfg.EventsExchange, eventsTimeout), events.Config{
				BatchSize: cfg.EventsBatchSize, Interval: cfg.EventsInterval, Retention: cfg.EventsRetention,
			}, log)
			svcCfg.Changed = a.relay.Notify
			a.inst.registerOutbox(a.relay)
			a.closers = append(a.closers, a.relay.Close)
			a.runners = append(a.runners,
				a.relay.Run,
				func(ctx context.Context) { every(ctx, time.Hour, "purge published events", a.relay.Purge, log) },
				func(ctx context.Context) { every(ctx, backlogLogEvery, "event backlog", a.relay.LogBacklog, log) })
		}
		svc := orders.NewService(b.orders, stock, log, svcCfg)
		a.closers = append(a.closers, func() error { svc.Wait(); return nil })
		a.runners = append(a.runners,
			func(ctx context.Context) { svc.RunRecovery(ctx, cfg.RecoveryInterval) },
			func(ctx context.Context) { every(ctx, time.Hour, "purge idempotency keys", svc.PurgeKeys, log) })
		return svc
	}
	// ready is what the process's /readyz reports; probe, when not nil,
	// tells the outage log when the modules it calls answer again.
	newGateway := func(p gateway.Products, o gateway.Orders, ready, probe func(context.Context) error) {
		g := gateway.New(p, o, ready, gateway.Config{
			ImageRoot:      cfg.ProductImageRoot,
			BodyLimit:      cfg.BodyLimit,
			RequestTimeout: cfg.RequestTimeout,
			APIKeys:        cfg.APIKeys,
			AccessLogEvery: accessEvery,
			Observer:       a.inst.requestObserver(),
			Tracing:        a.inst.gatewayTracing(),
			Probe:          probe,
		}, log)
		a.handler = g
		a.runners = append(a.runners, g.WatchOutages)
	}
	// Readiness reports only what the process cannot serve without: its
	// own backend. A module that another process runs is not part of it:
	// the orders module keeps answering reads while the products module is
	// down, and the gateway the requests that need only the other module,
	// so that a module's outage does not take the whole API out of
	// service.
	switch cfg.Modules {
	case ModuleProducts:
		a.handler = remote.productsHandler(b.products, b.ready, cfg, log, a.inst.moduleTracer())
	case ModuleOrders:
		stock, err := remote.products(cfg)
		if err != nil {
			return err
		}
		a.handler = remote.ordersHandler(newService(stock, true), b.ready, cfg, log, a.inst.moduleTracer())
		a.closers = append(a.closers, stock.Close)
	case ModuleGateway:
		p, err := remote.products(cfg)
		if err != nil {
			return err
		}
		o, err := remote.orders(cfg)
		if err != nil {
			return err
		}
		newGateway(p, o, b.ready, func(ctx context.Context) error { return errors.Join(p.Ready(ctx), o.Ready(ctx)) })
		a.closers = append(a.closers, p.Close, o.Close)
	default:
		newGateway(b.products, newService(b.products, false), b.ready, nil)
	}
	return nil
}

// remote wires modules that run in other processes: set by remote.go in
// a build with -tags remote, nil otherwise, so that the default build
// holds no RPC code.
var remote remoteModules

// remoteModules are the Connect adapters of the modules.
type remoteModules interface {
	// products is a client of the products module at cfg.ProductsURL.
	products(cfg config.Config) (remoteProducts, error)
	// orders is a client of the orders module at cfg.OrdersURL.
	orders(cfg config.Config) (remoteOrders, error)
	// productsHandler serves the products module on store to the callers
	// cfg accepts (module_token, module_auth), logging its failures with
	// their cause and tracing its calls with tracer (nil: off).
	productsHandler(store products.Store, ready func(context.Context) error, cfg config.Config, log *slog.Logger, tracer trace.Tracer) http.Handler
	// ordersHandler serves the orders module as productsHandler serves
	// the products module.
	ordersHandler(svc *orders.Service, ready func(context.Context) error, cfg config.Config, log *slog.Logger, tracer trace.Tracer) http.Handler
}

// remoteProducts is the products module in another process: the gateway's
// Products and the orders module's Stock.
type remoteProducts interface {
	gateway.Products
	orders.Stock
	remoteModule
}

// remoteOrders is the orders module in another process.
type remoteOrders interface {
	gateway.Orders
	remoteModule
}

type remoteModule interface {
	// Ready reports whether the module answers and its backends do.
	Ready(ctx context.Context) error
	// Close closes the client's idle connections.
	Close() error
}

// Handler returns the API's HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// MetricsHandler serves the Prometheus metrics; nil when metrics_addr is
// empty (metrics off).
func (a *App) MetricsHandler() http.Handler {
	if a.inst.metrics == nil {
		return nil
	}
	return a.inst.metrics.Handler()
}

// Close waits for the work the modules do after answering, then closes
// the module clients, the connection to RabbitMQ and the backends'
// connection pools, and flushes the spans not exported yet.
func (a *App) Close() error {
	var errList []error
	for _, c := range a.closers {
		errList = append(errList, c())
	}
	return errors.Join(append(errList, a.backends.close(), a.inst.close())...)
}

// Serve serves the API on ln and runs the recovery sweep until ctx ends,
// then shuts down gracefully: it stops accepting, lets in-flight requests
// finish (up to the shutdown timeout) and stops the sweep. Metrics are
// served on metrics_addr, a listener of their own, so that the API's port
// never exposes them; an address that cannot be listened on is an error.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	var metricsLn net.Listener
	if a.inst.metrics != nil {
		var err error
		if metricsLn, err = net.Listen("tcp", a.cfg.MetricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("metrics listener on %s (metrics_addr): %w", a.cfg.MetricsAddr, err)
		}
	}
	srv := &http.Server{
		Handler:           a.handler,
		Protocols:         a.protocols(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	var wg sync.WaitGroup
	sweepCtx, stopSweep := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSweep()
	for _, run := range a.runners {
		wg.Go(func() { run(sweepCtx) })
	}

	if metricsLn != nil {
		wg.Go(func() { a.inst.serveMetrics(sweepCtx, metricsLn, a.log) })
		a.log.Info("metrics listening", "addr", metricsLn.Addr().String(), "path", "/metrics")
	}
	if a.cfg.DebugAddr != "" {
		dbg := &http.Server{Addr: a.cfg.DebugAddr, Handler: debugMux(), ReadHeaderTimeout: 5 * time.Second}
		wg.Go(func() {
			if err := dbg.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("debug listener", "err", err)
			}
		})
		wg.Go(func() {
			<-sweepCtx.Done()
			dbg.Close()
		})
		a.log.Info("pprof listening", "addr", a.cfg.DebugAddr)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("airship listening", "addr", ln.Addr().String(), "modules", a.cfg.Modules)

	select {
	case err := <-errc:
		stopSweep()
		wg.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	stopSweep()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	a.log.Info("stopped")
	return nil
}

// protocols are the HTTP protocols of the listener: those of the API, and
// for a module's RPC service also HTTP/2 without TLS, which gRPC clients
// speak.
func (a *App) protocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	if a.cfg.Modules == ModuleProducts || a.cfg.Modules == ModuleOrders {
		p.SetUnencryptedHTTP2(true)
	}
	return p
}

// Run serves the configuration until ctx ends: the serve command.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := validate(cfg); err != nil {
		return err // before logging: a value that fails its rule is never printed
	}
	log.Info("starting airship", append([]any{"version", Version, "commit", commit(), "backend", backendName(cfg)}, cfg.Masked()...)...)
	warnOpen(cfg, log)
	a, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	return a.Serve(ctx, ln)
}

// warnOpen warns of what anyone who reaches the process may do: write
// through the API without a key, or call a module without the module
// token; and of a caller of other modules that sends no token.
func warnOpen(cfg config.Config, log *slog.Logger) {
	serves := func(modules ...string) bool { return slices.Contains(modules, cfg.Modules) }
	if serves(ModulesAll, ModuleGateway) && len(cfg.APIKeys) == 0 {
		log.Warn("AIRSHIP_API_KEYS is not set: anyone who can reach the API can change products and orders")
	}
	if serves(ModuleProducts, ModuleOrders) && cfg.ModuleAuth == config.ModuleAuthOptional {
		log.Warn("module_auth is optional: calls to this module that carry no module token are taken, from anyone who can reach it; " +
			"set module_auth required once every caller sends AIRSHIP_MODULE_TOKEN")
	}
	if serves(ModuleGateway, ModuleOrders) && cfg.ModuleToken == "" {
		log.Warn("AIRSHIP_MODULE_TOKEN is not set: calls to other modules carry no token, and a module that requires one refuses them")
	}
}

// every runs fn now and then every period until ctx ends, logging its
// failures.
func every(ctx context.Context, period time.Duration, what string, fn func(context.Context) error, log *slog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			log.Warn(what, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
