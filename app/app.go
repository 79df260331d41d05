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
	"sync"
	"time"

	"github.com/airshipltd/airship/gateway"
	"github.com/airshipltd/airship/orders"
)

// App is a running airship: its backends, its HTTP handler and the work
// it does in the background.
type App struct {
	cfg      Config
	log      *slog.Logger
	backends *backends
	handler  http.Handler
	inst     instruments
	// runners run beside the server until it stops: the recovery sweep,
	// the purge of expired idempotency keys, the outage log.
	runners []func(context.Context)
}

// New opens the backends and builds the API; Close releases them.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	accessEvery, err := gateway.ParseAccessLog(cfg.AccessLog)
	if err != nil {
		return nil, err
	}
	in, err := newInstruments(ctx, cfg)
	if err != nil {
		return nil, err
	}
	b, err := openBackends(ctx, cfg, log, in)
	if err != nil {
		return nil, errors.Join(err, in.close())
	}
	svc := orders.NewService(b.orders, b.products, log, orders.Config{
		HoldFor: cfg.ReservationTimeout, KeyTTL: cfg.IdempotencyTTL, KeyStaleAfter: cfg.RequestTimeout, Tx: b.tx,
		Observer: in.ordersObserver(),
	})
	g := gateway.New(b.products, svc, b.ready, gateway.Config{
		ImageRoot:      cfg.ProductImageRoot,
		BodyLimit:      cfg.BodyLimit,
		RequestTimeout: cfg.RequestTimeout,
		APIKeys:        cfg.APIKeys,
		AccessLogEvery: accessEvery,
		Observer:       in.requestObserver(),
		Tracing:        in.gatewayTracing(),
	}, log)
	// Gauges of other modules' state (such as an outbox backlog) are
	// registered here, next to the collectors of the backends: in.metrics.
	a := &App{cfg: cfg, log: log, backends: b, handler: g, inst: in}
	a.runners = []func(context.Context){
		func(ctx context.Context) { svc.RunRecovery(ctx, cfg.RecoveryInterval) },
		func(ctx context.Context) { every(ctx, time.Hour, "purge idempotency keys", svc.PurgeKeys, log) },
		g.WatchOutages,
	}
	return a, nil
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

// Close closes the backends' connection pools and flushes the spans not
// exported yet.
func (a *App) Close() error { return errors.Join(a.backends.close(), a.inst.close()) }

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
			return fmt.Errorf("metrics listener on %s (metrics_addr): %w", a.cfg.MetricsAddr, err)
		}
	}
	srv := &http.Server{
		Handler:           a.handler,
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
	a.log.Info("airship listening", "addr", ln.Addr().String())

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

// Run serves the configuration until ctx ends: the serve command.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err // before logging: a value that fails its rule is never printed
	}
	log.Info("starting airship", append([]any{"version", Version}, cfg.Masked()...)...)
	if len(cfg.APIKeys) == 0 {
		log.Warn("AIRSHIP_API_KEYS is not set: anyone who can reach the API can change products and orders")
	}
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
