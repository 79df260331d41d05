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
	"strings"
	"sync"
	"time"

	"github.com/airshipltd/airship/events"
	"github.com/airshipltd/airship/gateway"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/release"
	"github.com/airshipltd/airship/internal/telemetry"
	"github.com/airshipltd/airship/orders"
)

// App is a running airship: its backends, the modules it runs and those
// it calls, its HTTP handler and the work it does in the background.
type App struct {
	plan     plan
	cfg      config.Config
	log      *slog.Logger
	backends *backends
	inst     instruments
	// What each module is to its callers, in this process or another:
	// set by the module's start, or its dial when another process runs it.
	products      productsModuleClient
	orders        gateway.Orders
	ordersService *orders.Service // when the orders module runs here
	// remotes are the modules the process calls in other processes.
	remotes []remoteModule
	// handler serves the REST API (the gateway runs here) or the Connect
	// services of the process's modules.
	handler http.Handler
	// runners are the modules' background work (orders.Service.Run, the
	// gateway's outage log, the event relay), run until the server stops.
	runners []func(context.Context)
	// relay publishes the order events; nil when events are off.
	relay *events.Relay
	// closers release what the modules hold besides the backends.
	closers []func() error
}

// New checks the configuration, opens the backends of its modules and
// starts the modules (see the module table, modules.go); Close releases
// them.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	p, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	return newApp(ctx, p, log)
}

func newApp(ctx context.Context, p plan, log *slog.Logger) (*App, error) {
	if err := p.buildable(); err != nil {
		return nil, err
	}
	ti, err := telemetry.NewInstruments(ctx, p.cfg.MetricsAddr != "",
		telemetry.Build{Version: release.Version, Commit: release.CommitOf(), Date: release.BuildDate}, log)
	if err != nil {
		return nil, err
	}
	in := instruments{ti}
	b, err := openBackends(ctx, p, log, in, false)
	if err != nil {
		return nil, errors.Join(err, in.Close())
	}
	a := &App{plan: p, cfg: p.cfg, log: log, backends: b, inst: in}
	if err := a.start(ctx); err != nil {
		return nil, errors.Join(err, a.Close())
	}
	return a, nil
}

// start makes clients of the modules the process calls in other
// processes, then starts the modules it runs in the table's order, each
// after the modules it calls. A process without the gateway serves its
// modules' Connect services.
func (a *App) start(ctx context.Context) error {
	for _, m := range a.plan.remote {
		r, err := m.dial(a)
		if err != nil {
			return fmt.Errorf("the %s module at %s: %w", m.name, m.url(a.cfg), err)
		}
		a.remotes = append(a.remotes, r)
		a.closers = append(a.closers, r.Close)
	}
	for _, m := range a.plan.local {
		if err := m.start(ctx, a); err != nil {
			return fmt.Errorf("start the %s module: %w", m.name, err)
		}
	}
	if a.plan.servesAPI() {
		return nil
	}
	services := make(map[string]http.Handler, len(a.plan.local))
	for _, m := range a.plan.local {
		path, h := m.serve(a)
		services[path] = h
	}
	a.handler = connectAdapters().serveModules(a, services)
	return nil
}

// Events returns the event relay, whose Backlog tells how many events
// wait in the outbox and for how long; nil when events are off.
func (a *App) Events() *events.Relay { return a.relay }

// Handler returns the API's HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// MetricsHandler serves the Prometheus metrics; nil when metrics_addr is
// empty (metrics off).
func (a *App) MetricsHandler() http.Handler {
	if a.inst.Metrics == nil {
		return nil
	}
	return a.inst.Metrics.Handler()
}

// Close waits for the work the modules do after answering, then closes
// the module clients, the connection to RabbitMQ and the backends'
// connection pools, and flushes the spans not exported yet.
func (a *App) Close() error {
	var errList []error
	for _, c := range a.closers {
		errList = append(errList, c())
	}
	return errors.Join(append(errList, a.backends.close(), a.inst.Close())...)
}

// Serve serves the API on ln and runs the recovery sweep until ctx ends,
// then shuts down gracefully: it stops accepting, lets in-flight requests
// finish (up to the shutdown timeout) and stops the sweep. Metrics are
// served on metrics_addr, a listener of their own, so that the API's port
// never exposes them; an address that cannot be listened on is an error.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	metricsLn, err := a.inst.ListenMetrics(a.cfg.MetricsAddr)
	if err != nil {
		ln.Close()
		return err
	}
	// The API's protocol, and for a module's Connect services also HTTP/2
	// without TLS, which gRPC clients speak.
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(!a.plan.servesAPI())
	srv := &http.Server{
		Handler:           a.handler,
		Protocols:         protocols,
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
		wg.Go(func() { a.inst.ServeMetrics(sweepCtx, metricsLn, a.log) })
	}
	if a.cfg.DebugAddr != "" {
		wg.Go(func() { telemetry.ServeDebug(sweepCtx, a.cfg.DebugAddr, a.log) })
		a.log.Info("pprof listening", "addr", a.cfg.DebugAddr)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("airship listening", "addr", ln.Addr().String(), "modules", strings.Join(a.plan.names(), ","))

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
	err = srv.Shutdown(sctx)
	stopSweep()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	a.log.Info("stopped")
	return nil
}

// Run serves the configuration until ctx ends: the serve command.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	p, err := resolve(cfg)
	if err != nil {
		return err // before logging: a value that fails its rule is never printed
	}
	log.Info("starting airship", append([]any{"version", release.Version, "commit", release.CommitOf(), "backend", p.backendName()}, cfg.Masked()...)...)
	for _, w := range cfg.Warnings(p.servesAPI(), len(p.remote) > 0) {
		log.Warn(w)
	}
	a, err := newApp(ctx, p, log)
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
