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

	"github.com/airshipltd/airship/events"
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
	// runners run beside the server until it stops: the recovery sweep,
	// the purge of expired idempotency keys, the outage log, and with
	// events on the event relay, its purge and its backlog log.
	runners []func(context.Context)
	// relay publishes the order events; nil when events are off.
	relay *events.Relay
}

// backlogLogEvery is the period of the event backlog's log line.
const backlogLogEvery = 30 * time.Second

// New opens the backends and builds the API; Close releases them.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b, err := openBackends(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	var relay *events.Relay
	svcCfg := orders.Config{
		HoldFor: cfg.ReservationTimeout, KeyTTL: cfg.IdempotencyTTL, KeyStaleAfter: cfg.RequestTimeout, Tx: b.tx,
	}
	if cfg.Events() {
		relay = events.NewRelay(b.outbox, events.NewAMQP(cfg.AMQPURL, cfg.EventsExchange, eventsTimeout), events.Config{
			BatchSize: cfg.EventsBatchSize, Interval: cfg.EventsInterval, Retention: cfg.EventsRetention,
		}, log)
		svcCfg.Changed = relay.Notify
	}
	svc := orders.NewService(b.orders, b.products, log, svcCfg)
	g := gateway.New(b.products, svc, b.ready, gateway.Config{
		ImageRoot:      cfg.ProductImageRoot,
		BodyLimit:      cfg.BodyLimit,
		RequestTimeout: cfg.RequestTimeout,
		APIKeys:        cfg.APIKeys,
	}, log)
	a := &App{cfg: cfg, log: log, backends: b, handler: g, relay: relay}
	a.runners = []func(context.Context){
		func(ctx context.Context) { svc.RunRecovery(ctx, cfg.RecoveryInterval) },
		func(ctx context.Context) { every(ctx, time.Hour, "purge idempotency keys", svc.PurgeKeys, log) },
		g.WatchOutages,
	}
	if relay != nil {
		a.runners = append(a.runners,
			relay.Run,
			func(ctx context.Context) { every(ctx, time.Hour, "purge published events", relay.Purge, log) },
			func(ctx context.Context) { every(ctx, backlogLogEvery, "event backlog", relay.LogBacklog, log) },
		)
	}
	return a, nil
}

// eventsTimeout bounds the connection handshake with RabbitMQ and the wait
// for the confirms of one batch of events.
const eventsTimeout = 10 * time.Second

// Events returns the event relay, whose Backlog tells how many events
// wait in the outbox and for how long; nil when events are off.
func (a *App) Events() *events.Relay { return a.relay }

// Handler returns the API's HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// Close closes the backends' connection pools and the connection to
// RabbitMQ.
func (a *App) Close() error {
	var err error
	if a.relay != nil {
		err = a.relay.Close()
	}
	return errors.Join(err, a.backends.close())
}

// Serve serves the API on ln and runs the recovery sweep until ctx ends,
// then shuts down gracefully: it stops accepting, lets in-flight requests
// finish (up to the shutdown timeout) and stops the sweep.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
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
