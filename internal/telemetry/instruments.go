package telemetry

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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
)

// Instruments are the metrics and the tracing of a running airship;
// either may be nil (off), and then nothing records into it.
type Instruments struct {
	Metrics *Metrics
	Tracing *Tracing
}

// NewInstruments sets up metrics when metrics is true and tracing when the
// OTEL_* environment asks for it; OpenTelemetry's errors go to log.
func NewInstruments(ctx context.Context, metrics bool, build Build, log *slog.Logger) (Instruments, error) {
	var in Instruments
	if metrics {
		in.Metrics = NewMetrics(build)
	}
	tr, err := TracingFromEnv(ctx, build.Version, log)
	if err != nil {
		return Instruments{}, err
	}
	in.Tracing = tr
	return in, nil
}

// Tracer is the tracer of airship's spans, or nil when tracing is off.
func (in Instruments) Tracer() trace.Tracer {
	if in.Tracing == nil {
		return nil
	}
	return in.Tracing.Tracer()
}

// Register exports c's metrics, when metrics are on.
func (in Instruments) Register(c prometheus.Collector) {
	if in.Metrics != nil {
		_ = in.Metrics.Register(c)
	}
}

// SQLConnector is the instrumentation of a SQL backend's connector:
// every statement timed into the metrics under its name (names: text →
// name) and traced as a child span of the request's; nil when both are
// off.
func (in Instruments) SQLConnector(backend string, names map[string]string) func(driver.Connector) driver.Connector {
	if in.Metrics == nil && in.Tracing == nil {
		return nil
	}
	tracer := in.Tracer()
	return func(c driver.Connector) driver.Connector {
		return SQLConnector(c, in.Metrics, tracer, backend, names)
	}
}

// RegisterPool exports a SQL pool's statistics as go_sql_* with
// db_name=backend, when metrics are on.
func (in Instruments) RegisterPool(db *sql.DB, backend string) {
	in.Register(collectors.NewDBStatsCollector(db, backend))
}

// Redis is the instrumentation of a Redis client with a pool of
// poolSize: tracing (redisotel: a span per command and pipeline) and
// metrics (per command, script — named by scripts — and pipeline; the
// pool's statistics), as configured.
func (in Instruments) Redis(poolSize int, scripts map[string]string) func(redis.UniversalClient) error {
	return func(rdb redis.UniversalClient) error {
		if in.Tracing != nil {
			if err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(in.Tracing.Provider())); err != nil {
				return fmt.Errorf("redis tracing: %w", err)
			}
		}
		if in.Metrics != nil || in.Tracing != nil {
			// After redisotel's hook, so that it names redisotel's spans.
			rdb.AddHook(NewRedisHook(in.Metrics, in.Tracing != nil, scripts))
		}
		in.Register(NewRedisPoolCollector(rdb.PoolStats, poolSize))
		return nil
	}
}

// ListenMetrics listens on addr, the metrics listener's own address
// (metrics_addr); nil when metrics are off.
func (in Instruments) ListenMetrics(addr string) (net.Listener, error) {
	if in.Metrics == nil {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener on %s (metrics_addr): %w", addr, err)
	}
	return ln, nil
}

// ServeMetrics serves /metrics on ln (see ListenMetrics) until ctx ends.
func (in Instruments) ServeMetrics(ctx context.Context, ln net.Listener, log *slog.Logger) {
	log.Info("metrics listening", "addr", ln.Addr().String(), "path", "/metrics")
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", in.Metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics listener", "err", err)
	}
}

// Close flushes the spans still buffered.
func (in Instruments) Close() error {
	if in.Tracing == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := in.Tracing.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}
