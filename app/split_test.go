//go:build remote

package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"

	ordersv1 "github.com/airshipltd/airship/api/airship/orders/v1"
	productsv1 "github.com/airshipltd/airship/api/airship/products/v1"
	"github.com/airshipltd/airship/app"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/rpc"
	"github.com/airshipltd/airship/internal/telemetry"
	"github.com/airshipltd/airship/internal/testbackend"
)

// In a build with -tags remote the end-to-end suite also runs split: the
// gateway calls the products and orders modules, each served by its own
// App behind a real listener, over Connect.
// Two other layouts run it too, each module list of the module table
// resolving to its own calls: products and orders in one process behind
// a gateway of its own, and the gateway with the orders module in one
// process calling the products module in another.
func init() {
	backends = append(backends,
		backend{name: "split", config: splitConfig, split: true},
		backend{name: "split-products,orders", config: twoProcessConfig, split: true},
		backend{name: "split-gateway,orders", config: gatewayOrdersConfig, split: true})
}

// twoProcessConfig starts the products and orders modules in one process
// (modules products,orders) and returns the configuration of a gateway
// that calls both there.
func twoProcessConfig(t *testing.T, opts ...func(*config.Config)) config.Config {
	m := testConfig()
	m.Modules, m.ModuleToken = []string{"products", "orders"}, moduleToken
	m.RedisURL, m.RedisPrefix = testbackend.RedisURL(), testbackend.RedisPrefix(t)
	m.PostgresURL = testbackend.PostgresURL(t)
	modules := startWith(t, with(m, opts))
	ordersModules.Store(modules.url, modules)
	t.Cleanup(func() { ordersModules.Delete(modules.url) })

	g := testConfig()
	g.Modules, g.ModuleToken = []string{"gateway"}, moduleToken
	g.ProductsURL, g.OrdersURL = modules.url, modules.url
	return g
}

// gatewayOrdersConfig starts the products module alone and returns the
// configuration of a process that runs the gateway and the orders module
// (modules gateway,orders) on it.
func gatewayOrdersConfig(t *testing.T, opts ...func(*config.Config)) config.Config {
	p := testConfig()
	p.Modules, p.ModuleToken = []string{"products"}, moduleToken
	p.RedisURL, p.RedisPrefix = testbackend.RedisURL(), testbackend.RedisPrefix(t)
	productsURL := startWith(t, p).url

	g := with(testConfig(), opts)
	g.Modules, g.ModuleToken = []string{"gateway", "orders"}, moduleToken
	g.PostgresURL = testbackend.PostgresURL(t)
	g.ProductsURL = productsURL
	return g
}

// moduleToken is the module token of the split deployments the tests
// start: every module requires it.
const moduleToken = "split-test-module-token-0123456789abcdef"

// splitConfig starts the products and orders modules on fresh backends
// (opts apply to the orders module's configuration) and returns the
// configuration of a gateway that calls them.
func splitConfig(t *testing.T, opts ...func(*config.Config)) config.Config {
	p := testConfig()
	p.Modules, p.ModuleToken = []string{"products"}, moduleToken
	p.RedisURL = testbackend.RedisURL()
	p.RedisPrefix = testbackend.RedisPrefix(t)
	productsURL := startWith(t, p).url

	o := testConfig()
	o.Modules, o.ModuleToken = []string{"orders"}, moduleToken
	o.PostgresURL = testbackend.PostgresURL(t)
	o.ProductsURL = productsURL
	orders := startWith(t, with(o, opts))
	ordersURL := orders.url
	ordersModules.Store(ordersURL, orders)
	t.Cleanup(func() { ordersModules.Delete(ordersURL) })

	g := testConfig()
	g.Modules, g.ModuleToken = []string{"gateway"}, moduleToken
	g.ProductsURL, g.OrdersURL = productsURL, ordersURL
	return g
}

// counter is a reverse proxy in front of a module that counts the calls
// of each procedure, but for Expired: the orders module's recovery sweep
// calls it in the background, never a request.
type counter struct {
	mu    sync.Mutex
	calls map[string]int
	url   string
}

func countCalls(t *testing.T, target string) *counter {
	c := &counter{calls: map[string]int{}}
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	transport := &http.Transport{}
	proxy.Transport = transport
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := path.Base(r.URL.Path); p != "readyz" && p != "healthz" && p != "Expired" {
			c.mu.Lock()
			c.calls[path.Base(r.URL.Path)]++
			c.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		transport.CloseIdleConnections()
	})
	c.url = srv.URL
	return c
}

func (c *counter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = map[string]int{}
	return out
}

// takeWhen is take once the calls are want, or after a few seconds: the
// orders module commits a reservation after answering, so its call may
// come a moment after the response.
func (c *counter) takeWhen(want map[string]int) map[string]int {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		c.mu.Lock()
		done := maps.Equal(c.calls, want)
		c.mu.Unlock()
		if done {
			break
		}
	}
	return c.take()
}

// TestSplitRoundTrips counts the module calls each request of the
// contract's load scenario costs in a split deployment: one call from the
// gateway per module it needs, and the orders module's reservation and
// its commit, each for the whole order; never one call per line.
func TestSplitRoundTrips(t *testing.T) {
	p := testConfig()
	p.Modules, p.ModuleToken = []string{"products"}, moduleToken
	p.RedisURL = testbackend.RedisURL()
	p.RedisPrefix = testbackend.RedisPrefix(t)
	products := countCalls(t, startWith(t, p).url)
	o := testConfig()
	o.Modules, o.ModuleToken = []string{"orders"}, moduleToken
	o.PostgresURL = testbackend.PostgresURL(t)
	o.ProductsURL = products.url
	orders := countCalls(t, startWith(t, o).url)
	g := testConfig()
	g.Modules, g.ModuleToken = []string{"gateway"}, moduleToken
	g.ProductsURL, g.OrdersURL = products.url, orders.url
	s := startWith(t, g)

	three := `{"order_details": [` + strings.Repeat(`{"product_id": "the_odyssey", "price": "1.00", "quantity": 1}, `, 2) +
		`{"product_id": "the_odyssey", "price": "1.00", "quantity": 1}]}`
	steps := []struct {
		method, path, body string
		products, orders   map[string]int
	}{
		{"POST", "/products", odyssey, map[string]int{"Create": 1}, nil},
		{"GET", "/products/the_odyssey", "", map[string]int{"Get": 1}, nil},
		{"POST", "/orders", orderOfOne, map[string]int{"Reserve": 1, "Commit": 1}, map[string]int{"Place": 1}},
		{"POST", "/orders", three, map[string]int{"Reserve": 1, "Commit": 1}, map[string]int{"Place": 1}},
		{"GET", "/orders/2", "", map[string]int{"GetMany": 1}, map[string]int{"Get": 1}},
		{"DELETE", "/products/the_odyssey", "", map[string]int{"Delete": 1}, nil},
		{"GET", "/orders", "", nil, map[string]int{"List": 1}},
	}
	products.take()
	orders.take()
	for _, st := range steps {
		r := s.do(st.method, st.path, st.body)
		if r.status >= 300 {
			t.Fatalf("%s %s: %d %s", st.method, st.path, r.status, r.body)
		}
		for name, c := range map[string]struct {
			got, want map[string]int
		}{"products": {products.takeWhen(st.products), st.products}, "orders": {orders.takeWhen(st.orders), st.orders}} {
			if !maps.Equal(c.got, c.want) {
				t.Errorf("%s %s called the %s module %v; want %v", st.method, st.path, name, c.got, c.want)
			}
		}
	}
}

// endless is a body of zero bytes that never ends, made as it is read.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestSplitBoundsReplies: a module whose reply is larger than its limit
// (a broken or hostile module, or a message nobody sized for) fails the
// request cleanly, 503 in the contract's format, and the gateway reads no
// more of it than the limit: a reply of 128 MiB costs it a few MiB.
func TestSplitBoundsReplies(t *testing.T) {
	module := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/proto")
		w.WriteHeader(http.StatusOK)
		io.Copy(w, io.LimitReader(endless{}, 128<<20))
	}))
	t.Cleanup(func() {
		module.CloseClientConnections()
		module.Close()
	})
	g := testConfig()
	g.Modules = []string{"gateway"}
	g.ProductsURL, g.OrdersURL = module.URL, module.URL
	s := startWith(t, g)

	s.do("GET", "/healthz", "") // the client's first request loads what it checks responses against
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := s.do("GET", "/products", "")
	runtime.ReadMemStats(&after)
	s.expectError(r, 503, "SERVICE_UNAVAILABLE")
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("a reply of 128 MiB from the products module cost the gateway %d MiB of allocations; want it to stop at the limit", grew>>20)
	} else {
		t.Logf("a reply of 128 MiB from the products module cost the gateway %d MiB of allocations", grew>>20)
	}
	s.expectError(s.do("GET", "/orders", ""), 503, "SERVICE_UNAVAILABLE")
}

// TestSplitModulesRequireTheToken: every procedure of each module, in
// the Connect, gRPC and gRPC-Web protocols, refuses a call without the
// module token or with another (Unauthenticated) before it reads it, and
// takes a call with it; /healthz and /readyz stay open. With module_auth
// optional a module also takes calls that carry no token, never one with
// a wrong token. A gateway without the token gets nothing from modules
// that require it.
func TestSplitModulesRequireTheToken(t *testing.T) {
	p := testConfig()
	p.Modules, p.ModuleToken = []string{"products"}, moduleToken
	p.RedisURL, p.RedisPrefix = testbackend.RedisURL(), testbackend.RedisPrefix(t)
	products := startWith(t, p)
	o := testConfig()
	o.Modules, o.ModuleToken = []string{"orders"}, moduleToken
	o.PostgresURL, o.ProductsURL = testbackend.PostgresURL(t), products.url
	orders := startWith(t, o)
	optional := p
	optional.ModuleAuth = config.ModuleAuthOptional
	productsOptional := startWith(t, optional)
	optional.ModuleToken = ""
	productsNoToken := startWith(t, optional)

	h1 := &http.Client{}
	h2c := &http.Client{Transport: &http.Transport{Protocols: new(http.Protocols)}}
	h2c.Transport.(*http.Transport).Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(func() {
		h1.CloseIdleConnections()
		h2c.CloseIdleConnections()
	})
	protocols := []struct {
		name   string
		client *http.Client
		opts   []connect.ClientOption
	}{
		{"connect", h1, nil},
		{"grpc", h2c, []connect.ClientOption{connect.WithGRPC()}},
		{"grpc-web", h1, []connect.ClientOption{connect.WithGRPCWeb()}},
	}
	wrong := strings.Repeat("w", len(moduleToken))
	modules := []struct {
		name    string
		url     string
		service protoreflect.ServiceDescriptor
		// accepted says which tokens the module takes ("" for none).
		accepted map[string]bool
	}{
		{"products", products.url, productsv1.File_airship_products_v1_products_proto.Services().Get(0),
			map[string]bool{moduleToken: true}},
		{"orders", orders.url, ordersv1.File_airship_orders_v1_orders_proto.Services().Get(0),
			map[string]bool{moduleToken: true}},
		{"products, module_auth optional", productsOptional.url, productsv1.File_airship_products_v1_products_proto.Services().Get(0),
			map[string]bool{moduleToken: true, "": true}},
		{"products, module_auth optional, no token", productsNoToken.url, productsv1.File_airship_products_v1_products_proto.Services().Get(0),
			map[string]bool{"": true}},
	}
	for _, m := range modules {
		methods := m.service.Methods()
		if methods.Len() < 6 {
			t.Fatalf("%s: %d procedures; the descriptor is not the service's", m.name, methods.Len())
		}
		for i := range methods.Len() {
			procedure := "/" + string(m.service.FullName()) + "/" + string(methods.Get(i).Name())
			for _, proto := range protocols {
				for _, token := range []string{"", moduleToken, wrong} {
					opts := append(slices.Clone(proto.opts), rpc.SendToken(token))
					// An empty message is a valid request of every
					// procedure: taken, it is refused by the module's
					// rules or finds nothing, and changes nothing.
					c := connect.NewClient[emptypb.Empty, emptypb.Empty](proto.client, m.url+procedure, opts...)
					_, err := c.CallUnary(t.Context(), connect.NewRequest(&emptypb.Empty{}))
					refused := connect.CodeOf(err) == connect.CodeUnauthenticated
					if refused == m.accepted[token] {
						what := map[string]string{"": "no token", moduleToken: "the module token", wrong: "a wrong token"}[token]
						t.Errorf("%s: %s %s with %s: %v; want it %s", m.name, proto.name, procedure, what, err,
							map[bool]string{true: "taken", false: "refused (unauthenticated)"}[m.accepted[token]])
					}
				}
			}
		}
		for _, path := range []string{"/healthz", "/readyz"} {
			resp, err := h1.Get(m.url + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: GET %s without a token: %s; want 200", m.name, path, resp.Status)
			}
		}
	}

	// A gateway without the token: the modules refuse its calls.
	g := testConfig()
	g.Modules = []string{"gateway"}
	g.ProductsURL, g.OrdersURL = products.url, orders.url
	s := startWith(t, g)
	s.expectError(s.do("GET", "/products/the_odyssey", ""), 500, "UNEXPECTED_ERROR")
	s.expectError(s.do("GET", "/orders", ""), 500, "UNEXPECTED_ERROR")
}

// TestSplitLogsCarryTheRequest: a products hash with a non-integer
// in_stock makes the products module fail; the gateway answers 500 with
// its request id, and the log of every process the request went through
// has a line with that request id and the caller's trace id, the products
// module's with the real cause. The request id and trace context travel
// from the gateway to the orders module and on to the products module,
// whether the modules export traces or not.
func TestSplitLogsCarryTheRequest(t *testing.T) {
	for _, modulesTrace := range []bool{false, true} {
		t.Run(map[bool]string{false: "modules not tracing", true: "modules tracing"}[modulesTrace], func(t *testing.T) {
			recv := newOTLPReceiver(t)
			tracing := func() {
				t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
				t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
			}
			if modulesTrace {
				tracing()
			}
			logged := func() (*slog.Logger, *testbackend.Buffer) {
				var b testbackend.Buffer
				l, err := telemetry.NewLogger(&b, "info", "json")
				if err != nil {
					t.Fatal(err)
				}
				return l, &b
			}
			p := testConfig()
			p.Modules, p.ModuleToken = []string{"products"}, moduleToken
			p.RedisURL, p.RedisPrefix = testbackend.RedisURL(), testbackend.RedisPrefix(t)
			productsLog, productsLogs := logged()
			products := startLogged(t, p, productsLog)
			o := testConfig()
			o.Modules, o.ModuleToken = []string{"orders"}, moduleToken
			o.PostgresURL, o.ProductsURL = testbackend.PostgresURL(t), products.url
			ordersLog, ordersLogs := logged()
			orders := startLogged(t, o, ordersLog)
			tracing() // the gateway traces, and takes the caller's traceparent
			g := testConfig()
			g.Modules, g.ModuleToken = []string{"gateway"}, moduleToken
			g.ProductsURL, g.OrdersURL = products.url, orders.url
			gatewayLog, gatewayLogs := logged()
			s := startLogged(t, g, gatewayLog)

			s.expect(s.do("POST", "/products", odyssey), 200, "")
			opts, _ := redis.ParseURL(testbackend.RedisURL())
			rdb := redis.NewClient(opts)
			t.Cleanup(func() { rdb.Close() })
			if err := rdb.HSet(t.Context(), p.RedisPrefix+"product:{the_odyssey}", "in_stock", "many").Err(); err != nil {
				t.Fatal(err)
			}

			requests := []struct {
				method, path, body, id, trace string
				// logs are the processes the request goes through, each
				// with what its line must hold besides the ids.
				logs map[string]*testbackend.Buffer
				// cause is what the products module's line says.
				cause string
			}{
				{"GET", "/products/the_odyssey", "", "corrupt-get", "4bf92f3577b34da6a3ce929d0e0e4736",
					map[string]*testbackend.Buffer{"gateway": gatewayLogs, "products": productsLogs}, `field in_stock`},
				{"POST", "/orders", orderOfOne, "corrupt-order", "5bf92f3577b34da6a3ce929d0e0e4737",
					map[string]*testbackend.Buffer{"gateway": gatewayLogs, "orders": ordersLogs, "products": productsLogs}, "attempt to compare"},
			}
			defer func() {
				if t.Failed() {
					t.Logf("logs of products:\n%s\norders:\n%s\ngateway:\n%s", productsLogs, ordersLogs, gatewayLogs)
				}
			}()
			for _, r := range requests {
				resp := s.do(r.method, r.path, r.body, "X-Request-Id", r.id, "traceparent", "00-"+r.trace+"-00f067aa0ba902b7-01")
				s.expectError(resp, 500, "UNEXPECTED_ERROR", r.id)
				if got := resp.header.Get("X-Request-Id"); got != r.id {
					t.Errorf("%s %s: X-Request-Id %q; want %q", r.method, r.path, got, r.id)
				}
				for name, logs := range r.logs {
					line := logLine(logs, func(rec map[string]any) bool { return rec["request_id"] == r.id && rec["level"] == "ERROR" })
					switch {
					case line == nil:
						t.Errorf("%s %s: the %s process logged no error with request id %s:\n%s", r.method, r.path, name, r.id, logs)
					case line["trace_id"] != r.trace:
						t.Errorf("%s %s: the %s process logged trace id %v; want the caller's %s: %v", r.method, r.path, name, line["trace_id"], r.trace, line)
					case name == "products" && !strings.Contains(fmt.Sprint(line["err"]), r.cause):
						t.Errorf("%s %s: the products process logged %v; want the cause (%s)", r.method, r.path, line, r.cause)
					}
				}
			}
		})
	}
}

// logLine returns the first JSON log line of logs that match accepts.
func logLine(logs *testbackend.Buffer, match func(map[string]any) bool) map[string]any {
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && match(rec) {
			return rec
		}
	}
	return nil
}

// TestSplitMetricsPerModule: a process exports the metrics of the modules
// it runs and of their backends, and none of the others', which would
// stand still and mislead the alerts (the gateway's and the products
// module's recovery sweep age grew forever, AirshipRecoverySweepStale).
func TestSplitMetricsPerModule(t *testing.T) {
	p := testConfig()
	p.Modules, p.ModuleToken = []string{"products"}, moduleToken
	p.RedisURL, p.RedisPrefix = testbackend.RedisURL(), testbackend.RedisPrefix(t)
	products := startWith(t, p)
	o := testConfig()
	o.Modules, o.ModuleToken = []string{"orders"}, moduleToken
	o.PostgresURL, o.ProductsURL = testbackend.PostgresURL(t), products.url
	orders := startWith(t, o)
	g := testConfig()
	g.Modules, g.ModuleToken = []string{"gateway"}, moduleToken
	g.ProductsURL, g.OrdersURL = products.url, orders.url
	gateway := startWith(t, g)
	all := startWith(t, backends[0].config(t)) // postgres+redis, every module
	for _, s := range []*server{gateway, all} {
		s.expect(s.do("POST", "/products", odyssey), 200, "")
		s.expect(s.do("POST", "/orders", orderOfOne), 200, "")
		s.expect(s.do("GET", "/orders/1", ""), 200, "")
	}

	// What each module, or backend, exports: families by name prefix.
	owned := map[string][]string{
		"the API":             {"airship_http_"},
		"the orders module":   {"airship_orders_", "airship_idempotent_replays_total", "airship_recovery_"},
		"Redis (products)":    {"airship_redis_pool_"},
		"PostgreSQL (orders)": {"go_sql_"},
	}
	runs := []struct {
		name     string
		app      *app.App
		runs     []string
		backends []string // the backend label values of airship_backend_*
	}{
		{"gateway", gateway.app, []string{"the API"}, nil},
		{"products", products.app, []string{"Redis (products)"}, []string{"redis"}},
		{"orders", orders.app, []string{"the orders module", "PostgreSQL (orders)"}, []string{"postgres"}},
		{"all", all.app, []string{"the API", "the orders module", "Redis (products)", "PostgreSQL (orders)"}, []string{"postgres", "redis"}},
	}
	for _, r := range runs {
		e := scrape(t, r.app)
		if e["airship_build_info"] == nil {
			t.Errorf("%s exports no airship_build_info", r.name)
		}
		for what, prefixes := range owned {
			var found []string
			for name := range e {
				for _, prefix := range prefixes {
					if strings.HasPrefix(name, prefix) {
						found = append(found, name)
					}
				}
			}
			slices.Sort(found)
			switch {
			case slices.Contains(r.runs, what) && len(found) == 0:
				t.Errorf("%s exports none of the metrics of %s (%v)", r.name, what, prefixes)
			case !slices.Contains(r.runs, what) && len(found) > 0:
				t.Errorf("%s exports metrics of %s, which it does not run: %v", r.name, what, found)
			}
		}
		var backends []string
		if f := e["airship_backend_request_duration_seconds"]; f != nil {
			for _, m := range f.Metric {
				for _, l := range m.Label {
					if l.GetName() == "backend" && !slices.Contains(backends, l.GetValue()) {
						backends = append(backends, l.GetValue())
					}
				}
			}
		}
		slices.Sort(backends)
		if !slices.Equal(backends, r.backends) {
			t.Errorf("%s exports calls to the backends %v; want %v", r.name, backends, r.backends)
		}
	}
}
