package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airshipltd/airship/app"
	"github.com/airshipltd/airship/internal/apitest"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/testbackend"
)

// backend is one way of running airship; the end-to-end suite runs on each.
type backend struct {
	name string
	// config returns the configuration of the airship a test starts. Each
	// option applies to the process that keeps the orders: the returned
	// configuration, or, split, the orders module's.
	config func(t *testing.T, opts ...func(*config.Config)) config.Config
	// split: the stores are in other processes, not in the one the test
	// starts (which serves the API only).
	split bool
}

var backends = []backend{
	{name: "postgres+redis", config: production(testbackend.PostgresURL)},
	{name: "embedded", config: func(t *testing.T, opts ...func(*config.Config)) config.Config {
		c := testConfig()
		c.DataDir = t.TempDir()
		return with(c, opts)
	}},
	// The old shop's PostgreSQL schema (no rows), adopted in place when
	// airship starts on it.
	{name: "adopted-postgres+redis", config: production(func(t testing.TB) string { return testbackend.LegacyPostgresURL(t) })},
}

// ordersModules maps the URL of an orders module that a split backend
// started to its server (see split_test.go), so that a test can look at
// the process that keeps the orders.
var ordersModules sync.Map

// ordersApp returns the App that keeps the orders s serves: s's own, or,
// split, its orders module's.
func (s *server) ordersApp() *app.App {
	if o, ok := ordersModules.Load(s.cfg.OrdersURL); ok && s.cfg.OrdersURL != "" {
		return o.(*server).app
	}
	return s.app
}

// storeBackends are the backends whose stores the test's own process
// opens (all but split): for what works on the stores themselves, such as
// export and import.
func storeBackends() []backend {
	var out []backend
	for _, b := range backends {
		if !b.split {
			out = append(out, b)
		}
	}
	return out
}

// with applies opts to c.
func with(c config.Config, opts []func(*config.Config)) config.Config {
	for _, o := range opts {
		o(&c)
	}
	return c
}

// production returns the configuration of PostgreSQL (a fresh database
// from postgresURL) and Redis (a fresh key prefix).
func production(postgresURL func(testing.TB) string) func(t *testing.T, opts ...func(*config.Config)) config.Config {
	return func(t *testing.T, opts ...func(*config.Config)) config.Config {
		c := testConfig()
		c.PostgresURL = postgresURL(t)
		c.RedisURL = testbackend.RedisURL()
		c.RedisPrefix = testbackend.RedisPrefix(t)
		return with(c, opts)
	}
}

// testConfig is the default configuration with generous timeouts (the
// suite checks behaviour, and under the race detector, the embedded store
// especially, requests run many times slower than in production) and the
// metrics listener on a free port.
func testConfig() config.Config {
	c := config.Defaults()
	c.RequestTimeout = time.Minute
	c.BackendTimeout = 10 * time.Second
	c.ReservationTimeout = 2 * time.Minute
	c.MetricsAddr = "127.0.0.1:0" // metrics on, on a port of the test's own
	return c
}

// forEachStoreBackend runs fn as a subtest on every backend whose stores
// the test's own process opens.
func forEachStoreBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range storeBackends() {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// forEachBackend runs fn as a subtest on every backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// server is airship under test, served over real HTTP.
type server struct {
	t      *testing.T
	url    string
	client *http.Client
	cfg    config.Config
	app    *app.App
	// stop shuts the server down (as SIGTERM would); the test's clean-up
	// does it otherwise.
	stop func()
}

// testLogger logs warnings and errors to the test's log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func startWith(t *testing.T, cfg config.Config) *server {
	t.Helper()
	return startLogged(t, cfg, testLogger(t))
}

// startLogged is startWith with the given logger.
func startLogged(t *testing.T, cfg config.Config, log *slog.Logger) *server {
	t.Helper()
	a, err := app.New(t.Context(), cfg, log)
	if err != nil {
		t.Fatalf("start airship: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("serve: %v", err)
			}
			a.Close()
		})
	}
	t.Cleanup(stop)
	return &server{t: t, url: "http://" + ln.Addr().String(), client: newClient(t), cfg: cfg, app: a, stop: stop}
}

func start(t *testing.T, b backend) *server { return startWith(t, b.config(t)) }

// newClient returns the client the suite sends its requests with: every
// request and response is checked against the OpenAPI description, so the
// description cannot drift from what the server does.
func newClient(t *testing.T) *http.Client {
	return &http.Client{Transport: apitest.NewTransport(t, nil)}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request through the OpenAPI-checking client, with a JSON
// Content-Type when there is a body; header pairs replace headers.
func (s *server) do(method, path, body string, header ...string) response {
	s.t.Helper()
	if body != "" {
		header = append([]string{"Content-Type", "application/json"}, header...)
	}
	return s.roundTrip(s.client, method, path, body, http.Header.Set, header)
}

// plain sends a request exactly as given, with a plain client; header
// pairs are added, so that a header can be sent twice.
func (s *server) plain(method, path, body string, header ...string) response {
	s.t.Helper()
	return s.roundTrip(http.DefaultClient, method, path, body, http.Header.Add, header)
}

func (s *server) roundTrip(client *http.Client, method, path, body string, set func(http.Header, string, string), header []string) response {
	s.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		set(req.Header, header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// expect checks a response's status and, if want is not empty, that its
// body is the JSON document want.
func (s *server) expect(r response, status int, want string) {
	s.t.Helper()
	if r.status != status {
		s.t.Fatalf("status %d, body %s; want %d", r.status, r.body, status)
	}
	if want != "" {
		assertJSON(s.t, r.body, want)
	}
}

func assertJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("response %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("body\n  %s\nwant\n  %s", got, want)
	}
}

// expectError checks an error response: status, code, and that the
// message contains each of the given fragments.
func (s *server) expectError(r response, status int, code string, fragments ...string) {
	s.t.Helper()
	if r.status != status {
		s.t.Fatalf("status %d, body %s; want %d %s", r.status, r.body, status, code)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		s.t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	if len(body) != 2 || body["error"] != code {
		s.t.Fatalf("error body %s; want exactly error=%s and message", r.body, code)
	}
	msg, _ := body["message"].(string)
	for _, f := range fragments {
		if !strings.Contains(msg, f) {
			s.t.Fatalf("message %q does not mention %q", msg, f)
		}
	}
}

const odyssey = `{"id": "the_odyssey", "title": "The Odyssey", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 10}`

// TestExampleSession runs the contract's example session verbatim.
func TestExampleSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b)
		s.expect(s.do("POST", "/products", odyssey), 200, `{"id": "the_odyssey"}`)
		s.expect(s.do("GET", "/products/the_odyssey", ""), 200, odyssey)
		s.expect(s.do("POST", "/orders", `{"order_details": [{"product_id": "the_odyssey", "price": "100000.99", "quantity": 1}]}`),
			200, `{"id": 1}`)
		s.expect(s.do("GET", "/orders/1", ""), 200, `{
			"id": 1,
			"order_details": [{
				"id": 1, "product_id": "the_odyssey", "price": "100000.99", "quantity": 1,
				"image": "http://www.example.com/airship/images/the_odyssey.jpg",
				"product": {"id": "the_odyssey", "title": "The Odyssey", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 9}
			}]}`)
		del := s.do("DELETE", "/products/the_odyssey", "")
		if del.status != 204 || len(del.body) != 0 {
			t.Fatalf("DELETE = %d %q; want 204 with an empty body", del.status, del.body)
		}
		s.expectError(s.do("GET", "/products/the_odyssey", ""), 404, "PRODUCT_NOT_FOUND", "the_odyssey")
		s.expect(s.do("GET", "/orders", ""), 200,
			`[{"id": 1, "order_details": [{"id": 1, "product_id": "the_odyssey", "price": "100000.99", "quantity": 1}]}]`)
		// Extended: the order outlives its product.
		s.expect(s.do("GET", "/orders/1", ""), 200, `{
			"id": 1,
			"order_details": [{
				"id": 1, "product_id": "the_odyssey", "price": "100000.99", "quantity": 1,
				"image": "http://www.example.com/airship/images/the_odyssey.jpg",
				"product": null
			}]}`)
	})
}

// TestErrorCodes produces every status and error code of the contract's table.
func TestErrorCodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b)
		s.expect(s.do("POST", "/products", odyssey), 200, "")
		s.expect(s.do("POST", "/products", strings.Replace(odyssey, "the_odyssey", "low", 1)), 200, "")
		s.expect(s.do("PATCH", "/products/low", `{"in_stock": 1}`), 200, "")
		order := `{"order_details": [{"product_id": "the_odyssey", "price": 99.99, "quantity": 1}]}`
		s.expect(s.do("POST", "/orders", order), 200, `{"id": 1}`)

		cases := []struct {
			name, method, path, body string
			header                   []string
			status                   int
			code                     string
			fragments                []string
		}{
			{"invalid JSON", "POST", "/products", `{"id": `, nil, 400, "BAD_REQUEST", nil},
			{"wrong content type", "POST", "/products", odyssey, []string{"Content-Type", "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE", []string{"Content-Type"}},
			{"another charset", "POST", "/products", odyssey, []string{"Content-Type", "application/json; charset=iso-8859-1"}, 415, "UNSUPPORTED_MEDIA_TYPE", []string{"charset"}},
			{"invalid UTF-8", "POST", "/products", "{\"id\": \"a\xff\"}", nil, 400, "BAD_REQUEST", nil},
			{"unparsable limit", "GET", "/products?limit=ten", "", nil, 400, "BAD_REQUEST", []string{"limit"}},
			{"unparsable after", "GET", "/orders?after=x", "", nil, 400, "BAD_REQUEST", []string{"after"}},
			{"not an object", "POST", "/products", `[1, 2]`, nil, 400, "VALIDATION_ERROR", []string{"body"}},
			{"missing field", "POST", "/products", `{"id": "x", "title": "X", "passenger_capacity": 1, "maximum_speed": 1}`, nil, 400, "VALIDATION_ERROR", []string{"in_stock"}},
			{"integer as string", "POST", "/products", strings.Replace(odyssey, "101", `"101"`, 1), nil, 400, "VALIDATION_ERROR", []string{"passenger_capacity"}},
			{"float", "POST", "/products", strings.Replace(odyssey, ": 5,", ": 5.5,", 1), nil, 400, "VALIDATION_ERROR", []string{"maximum_speed"}},
			{"negative", "POST", "/products", strings.Replace(odyssey, ": 10}", ": -1}", 1), nil, 400, "VALIDATION_ERROR", []string{"in_stock"}},
			{"huge", "POST", "/products", strings.Replace(odyssey, ": 10}", ": 1e400}", 1), nil, 400, "VALIDATION_ERROR", []string{"in_stock"}},
			{"bad id", "POST", "/products", strings.Replace(odyssey, "the_odyssey", "a:b*", 1), nil, 400, "VALIDATION_ERROR", []string{"id"}},
			{"empty title", "POST", "/products", strings.Replace(odyssey, "The Odyssey", "", 1), nil, 400, "VALIDATION_ERROR", []string{"title"}},
			{"unknown field", "POST", "/products", strings.Replace(odyssey, "}", `, "colour": "red"}`, 1), nil, 400, "VALIDATION_ERROR", []string{"colour"}},
			{"empty patch", "PATCH", "/products/the_odyssey", `{}`, nil, 400, "VALIDATION_ERROR", nil},
			{"patch id", "PATCH", "/products/the_odyssey", `{"id": "other"}`, nil, 400, "VALIDATION_ERROR", []string{"id"}},
			{"no lines", "POST", "/orders", `{"order_details": []}`, nil, 400, "VALIDATION_ERROR", []string{"order_details"}},
			{"three decimals", "POST", "/orders", `{"order_details": [{"product_id": "the_odyssey", "price": "1.001", "quantity": 1}]}`, nil, 400, "VALIDATION_ERROR", []string{"order_details[0].price"}},
			{"negative price", "POST", "/orders", `{"order_details": [{"product_id": "the_odyssey", "price": -1, "quantity": 1}]}`, nil, 400, "VALIDATION_ERROR", []string{"price"}},
			{"17 digits", "POST", "/orders", `{"order_details": [{"product_id": "the_odyssey", "price": "12345678901234567", "quantity": 1}]}`, nil, 400, "VALIDATION_ERROR", []string{"price"}},
			{"zero quantity", "POST", "/orders", `{"order_details": [{"product_id": "the_odyssey", "price": "1", "quantity": 0}]}`, nil, 400, "VALIDATION_ERROR", []string{"quantity"}},
			{"limit 0", "GET", "/products?limit=0", "", nil, 400, "VALIDATION_ERROR", []string{"limit"}},
			{"limit 1001", "GET", "/orders?limit=1001", "", nil, 400, "VALIDATION_ERROR", []string{"limit"}},
			{"bad cursor", "GET", "/products?cursor=%25%25", "", nil, 400, "VALIDATION_ERROR", []string{"cursor"}},
			{"garbage cursor", "GET", "/products?cursor=zzz", "", nil, 400, "VALIDATION_ERROR", []string{"cursor"}},
			{"negative after", "GET", "/orders?after=-5", "", nil, 400, "VALIDATION_ERROR", []string{"after"}},
			{"unknown line", "PUT", "/orders/1", `{"order_details": [{"id": 999, "quantity": 2}]}`, nil, 400, "VALIDATION_ERROR", []string{"999"}},
			{"get missing product", "GET", "/products/nope", "", nil, 404, "PRODUCT_NOT_FOUND", []string{"nope"}},
			{"delete missing product", "DELETE", "/products/nope", "", nil, 404, "PRODUCT_NOT_FOUND", []string{"nope"}},
			{"patch missing product", "PATCH", "/products/nope", `{"title": "X"}`, nil, 404, "PRODUCT_NOT_FOUND", []string{"nope"}},
			{"order of missing product", "POST", "/orders", `{"order_details": [{"product_id": "the_odyssey", "price": "1", "quantity": 1}, {"product_id": "ghost", "price": "1", "quantity": 1}]}`, nil, 404, "PRODUCT_NOT_FOUND", []string{"ghost"}},
			{"missing order", "GET", "/orders/999", "", nil, 404, "ORDER_NOT_FOUND", []string{"999"}},
			{"non-integer order id", "GET", "/orders/abc", "", nil, 404, "ORDER_NOT_FOUND", nil},
			{"delete missing order", "DELETE", "/orders/999", "", nil, 404, "ORDER_NOT_FOUND", nil},
			{"no such route", "GET", "/airships", "", nil, 404, "NOT_FOUND", nil},
			{"method not allowed", "PUT", "/products", odyssey, nil, 405, "METHOD_NOT_ALLOWED", nil},
			{"product exists", "POST", "/products", odyssey, nil, 409, "PRODUCT_EXISTS", []string{"the_odyssey"}},
			{"out of stock", "POST", "/orders", `{"order_details": [{"product_id": "low", "price": "1", "quantity": 2}]}`, nil, 409, "OUT_OF_STOCK", []string{"low"}},
			{"too large", "POST", "/products", `{"title": "` + strings.Repeat("x", 2<<20) + `"}`, nil, 413, "PAYLOAD_TOO_LARGE", nil},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				s := s.on(t)
				s.expectError(s.do(c.method, c.path, c.body, c.header...), c.status, c.code, c.fragments...)
			})
		}
		// None of the refused requests changed anything.
		s.expect(s.do("GET", "/products/the_odyssey", ""), 200, strings.Replace(odyssey, ": 10}", ": 9}", 1))
		s.expect(s.do("GET", "/products/low", ""), 200, "")
		s.expect(s.do("GET", "/orders", ""), 200,
			`[{"id": 1, "order_details": [{"id": 1, "product_id": "the_odyssey", "price": "99.99", "quantity": 1}]}]`)
	})
}

// TestProductLifecycle covers PATCH and listing with the Link header.
func TestProductPagination(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b)
		for i := range 7 {
			s.expect(s.do("POST", "/products", fmt.Sprintf(
				`{"id": "p%d", "title": "P%d", "passenger_capacity": %d, "maximum_speed": 1, "in_stock": 1}`, i, i, i)), 200, "")
		}
		// Following Link from the first page reaches the end, every
		// product once, whatever the page size.
		for limit := 1; limit <= 8; limit++ {
			seen := map[string]int{}
			for _, page := range s.pages(fmt.Sprintf("/products?limit=%d", limit), limit) {
				for _, p := range page {
					seen[p["id"].(string)]++
				}
			}
			for i := range 7 {
				if id := fmt.Sprintf("p%d", i); seen[id] != 1 {
					t.Fatalf("limit %d: %s listed %d times; want once (%v)", limit, id, seen[id], seen)
				}
			}
		}

		s.expect(s.do("PATCH", "/products/p1", `{"title": "Renamed", "in_stock": 40}`), 200,
			`{"id": "p1", "title": "Renamed", "passenger_capacity": 1, "maximum_speed": 1, "in_stock": 40}`)
	})
}

func TestOrderPaginationAndChanges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b)
		s.expect(s.do("POST", "/products", odyssey), 200, "")
		for range 5 {
			s.expect(s.do("POST", "/orders", `{"order_details": [{"product_id": "the_odyssey", "price": "5", "quantity": 1}]}`), 200, "")
		}
		var ids []float64
		for _, page := range s.pages("/orders?limit=2", 2) {
			for _, o := range page {
				ids = append(ids, o["id"].(float64))
			}
		}
		if fmt.Sprint(ids) != "[1 2 3 4 5]" {
			t.Fatalf("listed orders %v; want [1 2 3 4 5], newest last", ids)
		}
		s.expect(s.do("GET", "/orders?after=4", ""), 200,
			`[{"id": 5, "order_details": [{"id": 5, "product_id": "the_odyssey", "price": "5.00", "quantity": 1}]}]`)

		// PUT moves stock by the difference; DELETE gives it back.
		s.expect(s.do("PUT", "/orders/5", `{"order_details": [{"id": 5, "price": "9.99", "quantity": 3}]}`), 200,
			`{"id": 5, "order_details": [{"id": 5, "product_id": "the_odyssey", "price": "9.99", "quantity": 3}]}`)
		s.expect(s.do("GET", "/products/the_odyssey", ""), 200, strings.Replace(odyssey, ": 10}", ": 3}", 1))
		s.expectError(s.do("PUT", "/orders/5", `{"order_details": [{"id": 5, "quantity": 7}]}`), 409, "OUT_OF_STOCK", "the_odyssey")
		if r := s.do("DELETE", "/orders/5", ""); r.status != 204 {
			t.Fatalf("DELETE /orders/5 = %d %s", r.status, r.body)
		}
		s.expect(s.do("GET", "/products/the_odyssey", ""), 200, strings.Replace(odyssey, ": 10}", ": 6}", 1))
		s.expectError(s.do("GET", "/orders/5", ""), 404, "ORDER_NOT_FOUND")
	})
}

// pages follows the Link rel="next" headers from path and returns every
// page, checking that none holds more than limit items.
func (s *server) pages(path string, limit int) [][]map[string]any {
	s.t.Helper()
	var all [][]map[string]any
	for path != "" {
		r := s.do("GET", path, "")
		s.expect(r, 200, "")
		var page []map[string]any
		if err := json.Unmarshal(r.body, &page); err != nil {
			s.t.Fatal(err)
		}
		if len(page) > limit {
			s.t.Fatalf("page of %d; limit %d", len(page), limit)
		}
		all = append(all, page)
		if len(all) > 100 {
			s.t.Fatal("pagination does not end")
		}
		path = nextLink(s.t, r.header.Get("Link"))
	}
	return all
}

// on returns a copy of the server that reports to t (for subtests).
func (s *server) on(t *testing.T) *server {
	c := *s
	c.t = t
	return &c
}

// nextLink returns the target of a Link rel="next" header, or "".
func nextLink(t testing.TB, link string) string {
	t.Helper()
	if link == "" {
		return ""
	}
	target, rel, ok := strings.Cut(link, ">; ")
	if !ok || rel != `rel="next"` || !strings.HasPrefix(target, "<") {
		t.Fatalf("malformed Link header %q", link)
	}
	return strings.TrimPrefix(target, "<")
}

// TestConcurrentOrdersNeverOversell: 300 simultaneous single-unit orders
// against a stock of 100 yield exactly 100 successes.
func TestConcurrentOrdersNeverOversell(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b)
		s.expect(s.do("POST", "/products", strings.Replace(odyssey, ": 10}", ": 100}", 1)), 200, "")
		var mu sync.Mutex
		statuses := map[int]int{}
		var wg sync.WaitGroup
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 300}}
		for range 300 {
			wg.Go(func() {
				resp, err := client.Post(s.url+"/orders", "application/json", bytes.NewBufferString(
					`{"order_details": [{"product_id": "the_odyssey", "price": "100000.99", "quantity": 1}]}`))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if statuses[200] != 100 || statuses[409] != 200 {
			t.Fatalf("statuses %v; want exactly 100 × 200 and 200 × 409", statuses)
		}
		s.expect(s.do("GET", "/products/the_odyssey", ""), 200, strings.Replace(odyssey, ": 10}", ": 0}", 1))
		r := s.do("GET", "/orders?limit=1000", "")
		var list []any
		if err := json.Unmarshal(r.body, &list); err != nil || len(list) != 100 {
			t.Fatalf("%d orders listed (%v); want 100", len(list), err)
		}
	})
}

// TestStockOfARecreatedProduct: deleting or reducing an order of a product
// that was deleted and created again under the same id gives nothing to
// the new product, and its line cannot take the new product's stock.
func TestStockOfARecreatedProduct(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b)
		rc1 := strings.Replace(odyssey, "the_odyssey", "rc1", 1)
		order := `{"order_details": [{"product_id": "rc1", "price": "1", "quantity": 3}]}`
		recreate := func() {
			t.Helper()
			if r := s.do("DELETE", "/products/rc1", ""); r.status != 204 {
				t.Fatalf("DELETE /products/rc1 = %d %s", r.status, r.body)
			}
			s.expect(s.do("POST", "/products", rc1), 200, "")
		}
		stockIs := func(want int) {
			t.Helper()
			s.expect(s.do("GET", "/products/rc1", ""), 200, strings.Replace(rc1, ": 10}", fmt.Sprintf(": %d}", want), 1))
		}

		s.expect(s.do("POST", "/products", rc1), 200, "")
		s.expect(s.do("POST", "/orders", order), 200, `{"id": 1}`)
		stockIs(7)
		recreate()
		if r := s.do("DELETE", "/orders/1", ""); r.status != 204 {
			t.Fatalf("DELETE /orders/1 = %d %s", r.status, r.body)
		}
		stockIs(10)

		s.expect(s.do("POST", "/orders", order), 200, `{"id": 2}`)
		recreate()
		s.expect(s.do("PUT", "/orders/2", `{"order_details": [{"id": 2, "quantity": 1}]}`), 200, "")
		stockIs(10)
		s.expectError(s.do("PUT", "/orders/2", `{"order_details": [{"id": 2, "quantity": 5}]}`), 404, "PRODUCT_NOT_FOUND", "rc1")
		stockIs(10)
	})
}
