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

// observe is the middleware that answers errors, then records every
// request: the observer (metrics) and the access log.
func (g *Gateway) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		began := time.Now()
		if g.cfg.Observer != nil {
			g.cfg.Observer.RequestStarted()
		}
		if err := next(c); err != nil {
			c.Error(err)
		}
		took := time.Since(began)
		req, res := c.Request(), c.Response()
		route := g.routeOf(c)
		if g.cfg.Observer != nil {
			g.cfg.Observer.RequestFinished(route, methodLabel(req.Method), res.Status, took, req.ContentLength, res.Size)
		}
		g.logAccess(c.Request().Context(), c, route, took)
		return nil
	}
}

// logAccess writes the access log line of a request, at the level its
// outcome and the access_log setting give.
func (g *Gateway) logAccess(ctx context.Context, c echo.Context, route string, took time.Duration) {
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
		slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
		slog.String("method", req.Method), slog.String("uri", req.RequestURI), slog.String("route", route),
		slog.Int("status", status), slog.Duration("latency", took),
		slog.Int64("bytes_in", max(req.ContentLength, 0)), slog.Int64("bytes_out", c.Response().Size))
}

// Tracing is what the gateway needs to trace requests.
type Tracing struct {
	Tracer     trace.Tracer
	Propagator propagation.TextMapPropagator
}

// traced starts the server span of each request, as the child of the
// caller's span when the request carries a W3C traceparent, and puts it in
// the request's context: the backends' spans and the log lines of the
// request hang from it.
func (g *Gateway) traced(t *Tracing) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			route := g.routeOf(c)
			ctx := t.Propagator.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
			ctx, span := t.Tracer.Start(ctx, req.Method+" "+route,
				trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(
					semconv.HTTPRequestMethodKey.String(methodLabel(req.Method)),
					semconv.HTTPRoute(route),
					semconv.URLPath(req.URL.Path),
					semconv.URLScheme("http"),
					semconv.UserAgentOriginal(req.UserAgent()),
					attribute.String("http.request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
				))
			defer span.End()
			c.SetRequest(req.WithContext(ctx))
			if err := next(c); err != nil {
				c.Error(err)
			}
			status := c.Response().Status
			span.SetAttributes(semconv.HTTPResponseStatusCode(status),
				attribute.Int64("http.response.body.size", c.Response().Size))
			if status >= http.StatusInternalServerError {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			return nil
		}
	}
}
