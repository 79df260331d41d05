package telemetry

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/airshipltd/airship/internal/reqid"
)

// Every line logged with a request's context carries its request id once,
// whether the line names it or not, and its trace id when traced.
func TestLogHandlerAddsTheRequest(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&out, nil)))
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithRemoteSpanContext(reqid.With(t.Context(), "req-1"),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	log.InfoContext(ctx, "from the context")
	log.InfoContext(ctx, "named", "request_id", "req-1")
	log.Info("no request")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %s", len(lines), out.String())
	}
	for i, line := range lines[:2] {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["request_id"] != "req-1" || rec["trace_id"] != tid.String() || strings.Count(line, `"request_id"`) != 1 {
			t.Errorf("line %d: %s; want request_id req-1 once and trace_id %s", i, line, tid)
		}
	}
	if strings.Contains(lines[2], "request_id") || strings.Contains(lines[2], "trace_id") {
		t.Errorf("a line without a request: %s", lines[2])
	}
}

// Durations are logged in one unit, milliseconds under a key ending in
// _ms, in JSON and in text, at the top level, in groups and in the
// attributes a logger carries.
func TestLogHandlerWritesDurationsInMilliseconds(t *testing.T) {
	var js, text bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&js, nil), slog.NewTextHandler(&text, nil)} {
		log := slog.New(LogHandler(h)).With("retry_in", 1500*time.Millisecond)
		log.Info("timed", "latency", 825118*time.Nanosecond, "status", 200,
			slog.Group("outage", slog.Duration("for", 15*time.Second)))
	}
	var rec map[string]any
	if err := json.Unmarshal(js.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["latency_ms"] != 0.825 || rec["retry_in_ms"] != 1500.0 || rec["status"] != 200.0 {
		t.Errorf("JSON line %s; want latency_ms 0.825, retry_in_ms 1500, status 200", js.String())
	}
	if g, _ := rec["outage"].(map[string]any); g["for_ms"] != 15000.0 {
		t.Errorf("JSON line %s; want outage.for_ms 15000", js.String())
	}
	if _, ok := rec["latency"]; ok {
		t.Errorf("JSON line %s still has latency", js.String())
	}
	for _, want := range []string{"latency_ms=0.825", "retry_in_ms=1500", "outage.for_ms=15000"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text line %s; want %s", text.String(), want)
		}
	}
}
