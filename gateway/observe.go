package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.24.0"
	"go.opentelemetry.io/otel/trace"
)

// RequestObserver is told of every request the gateway serves (metrics).
// route is the route's template ("/orders/:id"), never the raw path, or
// UnmatchedRoute; method is one of the methods the API knows or "OTHER".
// Its methods are called on every request: they must be cheap and safe
// for concurrent use.
type RequestObserver interface {
	RequestStarted()
	RequestFinished(route, method string, status int, took time.Duration, reqSize, respSize int64)
}

// UnmatchedRoute is the route of every request that matched no route
// (404), so that hostile paths cannot create new metric series.
const UnmatchedRoute = "unmatched"

// knownMethods are the method label's values; any other method is OTHER.
var knownMethods = map[string]string{
	http.MethodGet: http.MethodGet, http.MethodHead: http.MethodHead, http.MethodPost: http.MethodPost,
	http.MethodPut: http.MethodPut, http.MethodPatch: http.MethodPatch, http.MethodDelete: http.MethodDelete,
	http.MethodOptions: http.MethodOptions,
}

func methodLabel(m string) string {
	if k, ok := knownMethods[m]; ok {
		return k
	}
	return "OTHER"
}

// routeOf returns the route template of a routed request, or
// UnmatchedRoute: echo reports the nearest node's path for a request that
// matched nothing, so only the paths of registered routes are trusted.
func (g *Gateway) routeOf(c echo.Context) string {
	p := c.Path()
	if _, ok := g.routes[p]; ok {
		return p
	}
	return UnmatchedRoute
}

// logAccess writes the access log line of a request, at the level its
// outcome and the access_log setting give.
func (g *Gateway) logAccess(ctx context.Context, c echo.Context, id, route string, took time.Duration) {
	status := c.Response().Status
	level := slog.LevelDebug
	switch {
	case status == http.StatusServiceUnavailable:
		// Logged by errorHandler: an outage once by outageLog, any other
		// 503 as a refusal.
	case status >= http.StatusInternalServerError:
		level = slog.LevelError
	case status >= http.StatusBadRequest:
		level = slog.LevelInfo
	case g.cfg.AccessLogEvery == 1:
		level = slog.LevelInfo
	case g.cfg.AccessLogEvery > 1:
		if g.sampled.Add(1)%g.cfg.AccessLogEvery == 0 {
			level = slog.LevelInfo
		}
	}
	if !g.log.Enabled(ctx, level) {
		return
	}
	req := c.Request()
	g.log.LogAttrs(ctx, level, "request",
		slog.String("request_id", id),
		slog.String("method", req.Method), slog.String("uri", req.RequestURI), slog.String("route", route),
		// Milliseconds to the microsecond, as telemetry.LogHandler writes
		// every duration.
		slog.Int("status", status), slog.Float64("latency_ms", float64(took.Microseconds())/1000),
		slog.Int64("bytes_in", max(req.ContentLength, 0)), slog.Int64("bytes_out", c.Response().Size))
}

// Tracing is what the gateway needs to trace requests.
type Tracing struct {
	Tracer     trace.Tracer
	Propagator propagation.TextMapPropagator
}

// startSpan starts the server span of a request, as the child of the
// caller's span when the request carries a W3C traceparent, and returns
// ctx carrying it: the backends' spans and the log lines of the request
// hang from it.
func (g *Gateway) startSpan(ctx context.Context, req *http.Request, route, id string) (context.Context, trace.Span) {
	t := g.cfg.Tracing
	ctx = t.Propagator.Extract(ctx, propagation.HeaderCarrier(req.Header))
	return t.Tracer.Start(ctx, req.Method+" "+route,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(methodLabel(req.Method)),
			semconv.HTTPRoute(route),
			semconv.URLPath(req.URL.Path),
			semconv.URLScheme("http"),
			semconv.UserAgentOriginal(req.UserAgent()),
			attribute.String("http.request_id", id),
		))
}

// endSpan ends a request's span with its response's status and size.
func endSpan(span trace.Span, res *echo.Response) {
	span.SetAttributes(semconv.HTTPResponseStatusCode(res.Status),
		attribute.Int64("http.response.body.size", res.Size))
	if res.Status >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, http.StatusText(res.Status))
	}
	span.End()
}
