package app

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/airshipltd/airship/events"
	"github.com/airshipltd/airship/gateway"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/release"
	"github.com/airshipltd/airship/internal/telemetry"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products/redisstore"
)

// instruments are the metrics and tracing of a running airship; either may
// be nil (off), and then nothing records into it.
type instruments struct {
	metrics *telemetry.Metrics
	tracing *telemetry.Tracing
}

// newInstruments sets up metrics when metrics_addr is set and tracing when
// the OTEL_* environment asks for it; OpenTelemetry's errors go to log.
func newInstruments(ctx context.Context, cfg config.Config, log *slog.Logger) (instruments, error) {
	var in instruments
	if cfg.MetricsAddr != "" {
		in.metrics = telemetry.NewMetrics(telemetry.Build{Version: release.Version, Commit: release.CommitOf(), Date: release.BuildDate})
	}
	tr, err := telemetry.TracingFromEnv(ctx, release.Version, log)
	if err != nil {
		return instruments{}, err
	}
	in.tracing = tr
	return in, nil
}

// ordersObserver is the orders module's observer, or nil; its metrics
// are exported from then on (a process exports the metrics of the modules
// it runs).
func (in instruments) ordersObserver() orders.Observer {
	if in.metrics == nil {
		return nil
	}
	in.metrics.RegisterOrders()
	return in.metrics
}

// requestObserver is the gateway's observer, or nil; the API's metrics
// are exported from then on.
func (in instruments) requestObserver() gateway.RequestObserver {
	if in.metrics == nil {
		return nil
	}
	in.metrics.RegisterAPI()
	return in.metrics
}

// gatewayTracing is the gateway's tracing, or nil.
func (in instruments) gatewayTracing() *gateway.Tracing {
	if in.tracing == nil {
		return nil
	}
	return &gateway.Tracing{Tracer: in.tracing.Tracer(), Propagator: in.tracing.Propagator()}
}

// sqlConnector is the instrumentation of a SQL backend's connector, as
// configured: every statement timed into the metrics under its name
// (names: text → name) and traced as a child span of the request's; nil
// when both are off.
func (in instruments) sqlConnector(backend string, names map[string]string) func(driver.Connector) driver.Connector {
	if in.metrics == nil && in.tracing == nil {
		return nil
	}
	var tracer trace.Tracer
	if in.tracing != nil {
		tracer = in.tracing.Tracer()
	}
	return func(c driver.Connector) driver.Connector {
		return telemetry.SQLConnector(c, in.metrics, tracer, backend, names)
	}
}

// registerPool exports a SQL pool's statistics as go_sql_* with
// db_name=backend, when metrics are on.
func (in instruments) registerPool(db *sql.DB, backend string) {
	if in.metrics != nil {
		_ = in.metrics.Register(collectors.NewDBStatsCollector(db, backend))
	}
}

// redis is the instrumentation of a Redis client with a pool of poolSize:
// tracing (redisotel: a span per command and pipeline) and metrics (per
// command, script and pipeline; the pool's statistics), as configured.
func (in instruments) redis(poolSize int) func(redis.UniversalClient) error {
	return func(rdb redis.UniversalClient) error { return in.instrumentRedis(rdb, poolSize) }
}

func (in instruments) instrumentRedis(rdb redis.UniversalClient, poolSize int) error {
	if in.tracing != nil {
		if err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(in.tracing.Provider())); err != nil {
			return fmt.Errorf("redis tracing: %w", err)
		}
	}
	if in.metrics != nil || in.tracing != nil {
		// After redisotel's hook, so that it names redisotel's spans.
		rdb.AddHook(telemetry.NewRedisHook(in.metrics, in.tracing != nil, redisstore.ScriptNames()))
	}
	if in.metrics != nil {
		_ = in.metrics.Register(telemetry.NewRedisPoolCollector(rdb.PoolStats, poolSize))
	}
	return nil
}

// serveMetrics serves /metrics on ln until ctx ends.
func (in instruments) serveMetrics(ctx context.Context, ln net.Listener, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", in.metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics listener", "err", err)
	}
}

// close flushes the spans still buffered.
func (in instruments) close() error {
	if in.tracing == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := in.tracing.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}

// registerOutbox adds the outbox backlog gauges of relay, when metrics
// are on.
func (in instruments) registerOutbox(relay *events.Relay) {
	if in.metrics != nil {
		_ = in.metrics.Register(telemetry.NewOutboxCollector(relay))
	}
}
