package docs

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/airshipltd/airship/events/eventstest"
	"github.com/airshipltd/airship/internal/testbackend"
)

// TestDocEvents serves with the README's RabbitMQ URL, on a vhost of the
// test's own: an order placed sends the old system's order_created to
// the queue the old products service consumed.
func TestDocEvents(t *testing.T) {
	b := docBlocks(t, "README.md", 1)[0]
	amqpURL := testbackend.AMQPURL(t)
	serve := commands(rewrite(t, b, sub{"amqp://guest:guest@127.0.0.1:5672/", amqpURL}))
	if len(serve) != 1 {
		t.Fatalf("%s: want one command, got %q", b, texts(serve))
	}
	old := eventstest.NamekoHandler(t, amqpURL, "orders", "order_created", "products", "handle_order_created")

	addr, _, env, _ := listeners(t)
	srv := newShell(t, env...).start(serve[0], "http://"+addr+"/readyz")
	base := "http://" + addr
	post(t, base+"/products", `{"id": "the_odyssey", "title": "The Odyssey", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 10}`)
	order := post(t, base+"/orders", `{"order_details": [{"product_id": "the_odyssey", "price": "100000.99", "quantity": 1}]}`)

	m := old.AwaitCount(t, 1, time.Minute)[0]
	want := fmt.Sprintf(`{"order":{"id":%v,"order_details":[{"id":1,"product_id":"the_odyssey","price":"100000.99","quantity":1}]}}`, order["id"])
	if m.RoutingKey != "order_created" || string(m.Body) != want {
		t.Errorf("event %s %s; want order_created %s", m.RoutingKey, m.Body, want)
	}
	srv.stop()
}

// TestDocTracing serves with the OpenTelemetry variables of the README and
// of docs/operations.md, the collector's address the test's OTLP/HTTP
// receiver: a request that carries a sampled traceparent reaches it as a
// span of that trace, with the resource the variables name.
func TestDocTracing(t *testing.T) {
	for _, c := range []struct {
		file     string
		endpoint string            // the collector's host:port in the example
		resource map[string]string // attributes the spans' resource must have
	}{
		{"README.md", "localhost:4318", map[string]string{"service.name": "airship"}},
		{"docs/operations.md", "otel-collector:4318", map[string]string{"service.name": "airship", "deployment.environment": "prod"}},
	} {
		t.Run(path.Base(c.file), func(t *testing.T) {
			b := docBlocks(t, c.file, 1)[0]
			col := newCollector(t)
			serve := commands(rewrite(t, b, sub{c.endpoint, col.addr}))
			if len(serve) != 1 {
				t.Fatalf("%s: want one command, got %q", b, texts(serve))
			}
			addr, _, env, _ := listeners(t)
			srv := newShell(t, env...).start(serve[0], "http://"+addr+"/readyz")

			trace := strings.Repeat("4bf92f3577b34da6", 2)
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/products/the_odyssey", nil)
			req.Header.Set("traceparent", "00-"+trace+"-00f067aa0ba902b7-01")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()

			got := col.await(t, trace)
			for k, v := range c.resource {
				if got[k] != v {
					t.Errorf("the spans' resource has %s=%q; want %q (all: %v)", k, got[k], v, got)
				}
			}
			srv.stop()
		})
	}
}

// post sends a JSON body and returns the JSON answer, which must be 200.
func post(t *testing.T, url, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &v) != nil {
		t.Fatalf("POST %s: %s %s", url, resp.Status, raw)
	}
	return v
}

// get fetches a JSON answer, which must be 200, into v.
func get(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, v) != nil {
		t.Fatalf("GET %s: %s %s", url, resp.Status, raw)
	}
}

// A collector is an OTLP/HTTP receiver of traces (protobuf): it keeps the
// resource attributes of the spans of each trace it receives.
type collector struct {
	addr string

	mu     sync.Mutex
	traces map[string]map[string]string // trace id → resource attributes
}

func newCollector(t *testing.T) *collector {
	c := &collector{traces: map[string]map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(c.receive))
	t.Cleanup(srv.Close)
	c.addr = strings.TrimPrefix(srv.URL, "http://")
	return c
}

func (c *collector) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	if r.URL.Path != "/v1/traces" || err != nil {
		http.Error(w, fmt.Sprintf("%s: %v", r.URL.Path, err), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, rs := range req.ResourceSpans {
		attrs := map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			attrs[kv.Key] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.traces[hex.EncodeToString(s.TraceId)] = attrs
			}
		}
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// await waits for a span of the trace, for up to a minute, and returns
// its resource's attributes.
func (c *collector) await(t *testing.T, trace string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		c.mu.Lock()
		attrs, ok := c.traces[trace]
		c.mu.Unlock()
		if ok {
			return attrs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no span of trace %s reached the collector in a minute", trace)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
