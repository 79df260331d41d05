package app_test

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/airshipltd/airship/internal/telemetry"
	"github.com/airshipltd/airship/internal/testbackend"
)

// otlpReceiver is an OTLP/HTTP trace receiver: it keeps every span
// exported to it.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" ||
			req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces in protobuf", http.StatusBadRequest)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = gz
		}
		raw, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var export coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &export); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range export.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

// trace returns the spans received with the trace id.
func (r *otlpReceiver) trace(traceID []byte) []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range r.spans {
		if bytes.Equal(s.TraceId, traceID) {
			out = append(out, s)
		}
	}
	return out
}

// attr returns a span attribute as text.
func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			switch v := kv.Value.Value.(type) {
			case *commonpb.AnyValue_StringValue:
				return v.StringValue
			case *commonpb.AnyValue_IntValue:
				return strconv.FormatInt(v.IntValue, 10)
			}
		}
	}
	return ""
}

// TestTraces: with OTEL_EXPORTER_OTLP_ENDPOINT set, POST /orders carrying
// a W3C traceparent yields, at an OTLP/HTTP receiver, a server span that
// is the child of the caller's span, with the route template and status,
// and under it the Redis reservation then the PostgreSQL insert, each
// with its db.system; the request's log lines carry the trace id.
func TestTraces(t *testing.T) {
	recv := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	t.Setenv("OTEL_SERVICE_NAME", "airship-test")

	cfg := backends[0].config(t) // postgres+redis
	cfg.AccessLog = "all"
	var logs testbackend.Buffer
	log, err := telemetry.NewLogger(&logs, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	s := startLogged(t, cfg, log)
	s.expect(s.do("POST", "/products", `{"id": "traced", "title": "Traced", "passenger_capacity": 1, "maximum_speed": 1, "in_stock": 3}`), 200, "")

	const (
		traceHex  = "4bf92f3577b34da6a3ce929d0e0e4736"
		parentHex = "00f067aa0ba902b7"
	)
	traceID, _ := hex.DecodeString(traceHex)
	parentID, _ := hex.DecodeString(parentHex)
	s.expect(s.do("POST", "/orders", `{"order_details": [{"product_id": "traced", "price": "1.00", "quantity": 1}]}`,
		"traceparent", "00-"+traceHex+"-"+parentHex+"-01"), 200, "")

	var spans []*tracepb.Span
	var server, reserve, insert *tracepb.Span
	deadline := time.Now().Add(30 * time.Second)
	for {
		spans = recv.trace(traceID)
		server, reserve, insert = nil, nil, nil
		for _, sp := range spans {
			switch {
			case sp.Kind == tracepb.Span_SPAN_KIND_SERVER:
				server = sp
			case sp.Name == "redis pipeline:reserve":
				reserve = sp
			case sp.Name == "postgres create_order":
				insert = sp
			}
		}
		if server != nil && reserve != nil && insert != nil {
			break
		}
		if time.Now().After(deadline) {
			var names []string
			for _, sp := range spans {
				names = append(names, sp.Name)
			}
			t.Fatalf("spans of the trace after 30s: %v; want the server span, redis pipeline:reserve and postgres create_order", names)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if server.Name != "POST /orders" || !bytes.Equal(server.ParentSpanId, parentID) {
		t.Errorf("server span %q with parent %x, want POST /orders under the caller's span %s", server.Name, server.ParentSpanId, parentHex)
	}
	for k, want := range map[string]string{"http.route": "/orders", "http.request.method": "POST", "http.response.status_code": "200"} {
		if got := attr(server, k); got != want {
			t.Errorf("server span %s = %q, want %q", k, got, want)
		}
	}
	for _, c := range []struct {
		span   *tracepb.Span
		system string
	}{{reserve, "redis"}, {insert, "postgresql"}} {
		if !bytes.Equal(c.span.ParentSpanId, server.SpanId) {
			t.Errorf("%s is not a child of the server span", c.span.Name)
		}
		if got := attr(c.span, "db.system"); got != c.system {
			t.Errorf("%s: db.system %q, want %q", c.span.Name, got, c.system)
		}
		if c.span.Kind != tracepb.Span_SPAN_KIND_CLIENT {
			t.Errorf("%s: kind %v, want client", c.span.Name, c.span.Kind)
		}
	}
	if reserve.EndTimeUnixNano > insert.StartTimeUnixNano {
		t.Error("the PostgreSQL insert started before the Redis reservation ended")
	}
	if attr(insert, "db.operation") != "create_order" {
		t.Errorf("insert span db.operation %q, want create_order", attr(insert, "db.operation"))
	}

	// The access log line of the request carries its trace id.
	found := false
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "request" || rec["route"] != "/orders" {
			continue
		}
		found = true
		if rec["trace_id"] != traceHex {
			t.Errorf("access log line of POST /orders has trace_id %v, want %s: %s", rec["trace_id"], traceHex, line)
		}
	}
	if !found {
		t.Errorf("no access log line for POST /orders:\n%s", logs.String())
	}
}

// TestTracingExportErrorsLogged: when the OTLP endpoint refuses, the
// exporter's errors reach airship's log as JSON lines like every other:
// the process's stderr stays JSON lines from start to exit. OpenTelemetry
// used to print them as plain text through its own logger.
func TestTracingExportErrorsLogged(t *testing.T) {
	addr := testbackend.FreeAddr(t)
	endpoint := testbackend.FreeAddr(t) // nothing listens there
	cmd := exec.Command(binary(t), "serve")
	cmd.Dir = t.TempDir()
	cmd.Env = append(environWithout("AIRSHIP_", "OTEL_", "PORT=", "VCAP_SERVICES="),
		"AIRSHIP_ADDR="+addr, "AIRSHIP_DATA_DIR="+t.TempDir(), "AIRSHIP_METRICS_ADDR=", "AIRSHIP_LOG_LEVEL=info",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+endpoint, "OTEL_BSP_SCHEDULE_DELAY=50", "OTEL_EXPORTER_OTLP_TIMEOUT=2000")
	var stdout, stderr testbackend.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})

	// Requests make spans; their export fails. Wait for the failure to be
	// reported, making a request now and then.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stderr.String(), "traces export") {
		if time.Now().After(deadline) {
			t.Fatalf("no trace export error reported after 60s; stderr:\n%s", stderr.String())
		}
		if resp, err := http.Get("http://" + addr + "/products"); err == nil {
			resp.Body.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("airship exited with %v on SIGTERM", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("airship did not exit on SIGTERM; stderr:\n%s", stderr.String())
	}

	reported := false
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("stderr line is not JSON: %s", line)
			continue
		}
		if msg, _ := rec["err"].(string); strings.Contains(msg, "traces export") {
			reported = true
			if rec["level"] != "WARN" {
				t.Errorf("trace export error logged at %v, want WARN: %s", rec["level"], line)
			}
		}
	}
	if !reported {
		t.Errorf("no JSON line reports the trace export error:\n%s", stderr.String())
	}
	if out := stdout.String(); out != "" {
		t.Errorf("airship serve wrote to stdout: %s", out)
	}
}
