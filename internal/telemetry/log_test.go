package telemetry

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

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
