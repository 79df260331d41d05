package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/airshipltd/airship/internal/reqid"
)

// LogHandler wraps h so that every record logged with the context of a
// request carries its request_id (reqid), unless the record names it
// itself, and the context of a traced request its trace_id and span_id:
// in the gateway and, over module calls, in every module's process.
// Records without either in their context are passed on as they are.
//
// Durations speak one unit: an attribute whose value is a time.Duration
// is written as a number of milliseconds (to the microsecond) under its
// key with "_ms" appended, so "latency" of 825118 ns is logged as
// "latency_ms":0.825 in JSON and latency_ms=0.825 in text, whatever the
// format and wherever the line comes from.
func LogHandler(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if hasDuration(r) {
		r = inMillis(r)
	}
	if id := reqid.From(ctx); id != "" && !hasAttr(r, "request_id") {
		r.AddAttrs(slog.String("request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

// hasAttr reports whether r has an attribute named key.
func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}

// hasDuration reports whether r has an attribute, or a group holding
// one, whose value is a duration.
func hasDuration(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = isDuration(a)
		return !found
	})
	return found
}

func isDuration(a slog.Attr) bool {
	switch a.Value.Kind() {
	case slog.KindDuration:
		return true
	case slog.KindGroup:
		for _, g := range a.Value.Group() {
			if isDuration(g) {
				return true
			}
		}
	}
	return false
}

// inMillis returns r with its durations in milliseconds (see LogHandler).
func inMillis(r slog.Record) slog.Record {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(millis(a))
		return true
	})
	return out
}

// Millis is the attribute that LogHandler writes for a duration d named
// key: key+"_ms", a number of milliseconds to the microsecond.
func Millis(key string, d time.Duration) slog.Attr {
	return slog.Float64(key+"_ms", float64(d.Microseconds())/1000)
}

func millis(a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindDuration:
		return Millis(a.Key, a.Value.Duration())
	case slog.KindGroup:
		if !isDuration(a) {
			return a
		}
		group := a.Value.Group()
		out := make([]slog.Attr, len(group))
		for i, g := range group {
			out[i] = millis(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	}
	return a
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = millis(a)
	}
	return traceHandler{h.Handler.WithAttrs(out)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// NewLogger returns a slog logger writing to w; a line logged with the
// context of a traced request carries its trace_id and span_id.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log_level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(LogHandler(slog.NewJSONHandler(w, opts))), nil
	case "text":
		return slog.New(LogHandler(slog.NewTextHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("log_format %q: want json or text", format)
}
