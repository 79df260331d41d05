package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.24.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is OpenTelemetry tracing with spans exported over OTLP/HTTP.
type Tracing struct {
	tp         *sdktrace.TracerProvider
	propagator propagation.TextMapPropagator
}

// TracingEnabled reports whether the environment asks for traces: an
// OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), the SDK is not disabled
// (OTEL_SDK_DISABLED) and the traces exporter is not "none"
// (OTEL_TRACES_EXPORTER).
func TracingEnabled() bool {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	switch e := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")); e {
	case "", "otlp":
		return true
	}
	return false
}

// TracingFromEnv returns tracing as the standard OTEL_* environment
// variables configure it, or nil when TracingEnabled is false: then
// nothing is instrumented and requests pay nothing for tracing.
//
// The exporter reads OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS,
// _TIMEOUT, _COMPRESSION and the TLS settings; the SDK reads
// OTEL_TRACES_SAMPLER[_ARG] (default: parent-based, always on),
// OTEL_BSP_* (batching), OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
// Only OTLP over HTTP (protobuf) is spoken: OTEL_EXPORTER_OTLP_PROTOCOL
// other than http/protobuf is an error.
//
// OpenTelemetry's own errors (a failed export: the collector refuses or
// is not there) and messages go to log, as structured lines like every
// other, instead of plain text on stderr: errors at warn (the API is not
// affected, traces are lost), OpenTelemetry's warnings at debug.
func TracingFromEnv(ctx context.Context, version string, log *slog.Logger) (*Tracing, error) {
	if !TracingEnabled() {
		return nil, nil
	}
	otel.SetLogger(logr.FromSlogHandler(log.Handler()))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("opentelemetry error", "err", err)
	}))
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := os.Getenv(v); p != "" {
			if p != "http/protobuf" {
				return nil, fmt.Errorf("%s=%s: airship exports traces over http/protobuf only", v, p)
			}
			break
		}
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("airship"), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	// The exporter last: nothing after it can fail and leave it open.
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{
		tp:         tp,
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}, nil
}

// Provider is the tracer provider the instrumentation records into.
func (t *Tracing) Provider() trace.TracerProvider { return t.tp }

// Tracer is airship's own tracer (the HTTP server spans).
func (t *Tracing) Tracer() trace.Tracer { return t.tp.Tracer("github.com/airshipltd/airship") }

// Propagator reads and writes W3C traceparent, tracestate and baggage.
func (t *Tracing) Propagator() propagation.TextMapPropagator { return t.propagator }

// Shutdown exports the spans still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.tp.Shutdown(ctx) }
