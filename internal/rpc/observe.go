package rpc

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.24.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/airshipltd/airship/internal/reqid"
)

// A request's id (reqid) and its trace context (W3C traceparent,
// tracestate and baggage) travel with every module call: the client sends
// them as headers (propagate), the module's handler restores them in the
// call's context (incoming), so that every process's log lines about a
// request carry its request_id and trace_id (telemetry.LogHandler) and a
// module's spans hang from the caller's. They travel whether or not a
// process exports traces: a module that does not still logs the caller's
// trace id, and passes it on.

// propagator reads and writes the trace context, as the gateway does.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// propagate is the client interceptor that sends the request id and the
// trace context of the call's context.
func propagate() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if id := reqid.From(ctx); id != "" {
				req.Header().Set(reqid.Header, id)
			}
			propagator.Inject(ctx, propagation.HeaderCarrier(req.Header()))
			return next(ctx, req)
		}
	}
}

// incoming restores, in the context of each call to next, the request id
// and the trace context its caller sent.
func incoming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		if ids := r.Header.Values(reqid.Header); len(ids) == 1 && reqid.Valid(ids[0]) {
			ctx = reqid.With(ctx, ids[0])
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Observe is the handler option of a module's process that logs the
// calls that failed on the module's side (an internal error, with its
// cause, which never leaves the process; a backend unavailable at debug:
// the gateway logs an outage once) and, with tracer set, gives each call a
// server span, the child of its caller's.
func Observe(log *slog.Logger, tracer trace.Tracer) connect.HandlerOption {
	return connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			procedure := req.Spec().Procedure
			var span trace.Span
			if tracer != nil {
				ctx, span = tracer.Start(ctx, procedure, trace.WithSpanKind(trace.SpanKindServer),
					trace.WithAttributes(semconv.RPCSystemKey.String("connect_rpc"), attribute.String("rpc.procedure", procedure),
						attribute.String("http.request_id", reqid.From(ctx))))
				defer span.End()
			}
			resp, err := next(ctx, req)
			if err == nil {
				return resp, nil
			}
			code, cause := connect.CodeOf(err), err
			var ce *causedError
			if errors.As(err, &ce) {
				cause = ce.cause
			}
			if span != nil {
				span.SetAttributes(attribute.String("rpc.connect_rpc.error_code", code.String()))
			}
			switch code {
			case connect.CodeInternal, connect.CodeUnknown, connect.CodeDataLoss:
				log.ErrorContext(ctx, "module call failed", "request_id", reqid.From(ctx), "procedure", procedure,
					"code", code.String(), "err", cause)
				if span != nil {
					span.SetStatus(codes.Error, code.String())
					span.RecordError(cause)
				}
			case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeCanceled:
				log.DebugContext(ctx, "module call failed", "request_id", reqid.From(ctx), "procedure", procedure,
					"code", code.String(), "err", cause)
			}
			return resp, err
		}
	}))
}

// causedError is the Connect error a handler answers with (see
// ServerError), holding the error it came from for the module's log.
type causedError struct {
	ce    *connect.Error
	cause error
}

func (e *causedError) Error() string { return e.ce.Error() }

// Unwrap gives Connect its error, which is what the caller gets.
func (e *causedError) Unwrap() error { return e.ce }
