package app_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"

	"github.com/airshipltd/airship/app"
	"github.com/airshipltd/airship/internal/release"
	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/orders/sqlstore"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/redisstore"
)

// exposition is one scrape of /metrics, parsed by Prometheus' own parser.
type exposition map[string]*dto.MetricFamily

// scrape reads the metrics of a through its metrics handler, in the text
// format Prometheus asks for by default.
func scrape(t *testing.T, a *app.App) exposition {
	t.Helper()
	h := a.MetricsHandler()
	if h == nil {
		t.Fatal("metrics are off")
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: Content-Type %q, want the Prometheus text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// series returns the sample of name whose labels include want, or nil.
func (e exposition) series(name string, want map[string]string) *dto.Metric {
	f, ok := e[name]
	if !ok {
		return nil
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is the value of a counter or gauge, the count of a histogram, or 0
// if the series does not exist.
func (e exposition) value(name string, labels ...string) float64 {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	m := e.series(name, want)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// TestMetricsExposition drives a scripted session through the API on
// PostgreSQL and Redis, with a backend outage and work for the recovery
// sweep, and checks that every metric airship exports is there, parsed
// by Prometheus' own text parser, and moved by exactly what the session
// did.
func TestMetricsExposition(t *testing.T) {
	cfg, _, redisProxy := outageConfig(t)
	s := startWith(t, cfg)
	before := scrape(t, s.app)
	began := time.Now()

	// The API's port does not serve metrics.
	s.expectError(s.plain("GET", "/metrics", ""), 404, "NOT_FOUND")

	// Requests.
	product := `{"id": "metered", "title": "Metered", "passenger_capacity": 3, "maximum_speed": 9, "in_stock": 5}`
	s.expect(s.do("POST", "/products", product), 200, "")
	s.expect(s.do("GET", "/products/metered", ""), 200, "")
	order := func(id string, qty int) string {
		return fmt.Sprintf(`{"order_details": [{"product_id": %q, "price": "10.00", "quantity": %d}]}`, id, qty)
	}
	placed := s.do("POST", "/orders", order("metered", 1))
	s.expect(placed, 200, "")
	s.expectError(s.do("POST", "/orders", order("metered", 50)), 409, "OUT_OF_STOCK")
	s.expectError(s.do("POST", "/orders", order("no-such-airship", 1)), 404, "PRODUCT_NOT_FOUND")
	s.expect(s.do("POST", "/orders", order("metered", 1), "Idempotency-Key", "metrics-key"), 200, "")
	replay := s.do("POST", "/orders", order("metered", 1), "Idempotency-Key", "metrics-key")
	s.expect(replay, 200, "")
	if replay.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("second request with the key was not a replay")
	}
	for range 3 {
		s.expectError(s.plain("GET", "/no/such/route/"+strconv.Itoa(rand.Int()), ""), 404, "NOT_FOUND")
	}

	// A Redis outage: one 503 and a failed Redis call.
	redisProxy.Stop()
	s.expectUnavailable("GET", "/products/metered", "")
	redisProxy.Start()
	s.eventually("GET", "/products/metered", 200)

	// Work for the recovery sweep: a reservation whose process died (its
	// deadline has passed), and a restock an order deletion left pending.
	ctx := t.Context()
	opts, _ := redis.ParseURL(testbackend.RedisURL())
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	stock := redisstore.New(rdb, cfg.RedisPrefix)
	if _, err := stock.Reserve(ctx, products.Reservation{ID: "died", Deadline: time.Now().Add(-time.Minute),
		Lines: []products.Line{{ProductID: "metered", Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}
	db, err := sqlx.Open("postgres", cfg.PostgresURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := sqlstore.NewPostgres(db)
	var id struct{ ID int64 }
	if err := json.Unmarshal(placed.body, &id); err != nil {
		t.Fatal(err)
	}
	o, err := store.Get(ctx, id.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, o.ID, orders.Change{Expect: o.Lines, RestockID: "left-pending",
		Restock: []products.Line{{ProductID: "metered", Quantity: 1, Incarnation: o.Lines[0].Incarnation}}}); err != nil {
		t.Fatal(err)
	}
	// The restock is replayed once it is older than reservation_timeout.
	deadline := time.Now().Add(cfg.ReservationTimeout + 30*time.Second)
	var after exposition
	for {
		after = scrape(t, s.app)
		if after.value("airship_recovery_restocks_replayed_total") >= 1 &&
			after.value("airship_recovery_reservations_released_total") >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recovery sweep did not replay the restock and release the reservation in time")
		}
		time.Sleep(100 * time.Millisecond)
	}

	delta := func(name string, labels ...string) float64 {
		return after.value(name, labels...) - before.value(name, labels...)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"airship_http_requests_total", []string{"route", "/products", "method", "POST", "status", "2xx"}, 1},
		{"airship_http_requests_total", []string{"route", "/orders", "method", "POST", "status", "2xx"}, 3},
		{"airship_http_requests_total", []string{"route", "/orders", "method", "POST", "status", "4xx"}, 2},
		{"airship_http_requests_total", []string{"route", "unmatched", "method", "GET", "status", "4xx"}, 4},
		{"airship_http_requests_total", []string{"route", "/products/:id", "method", "GET", "status", "5xx"}, 1},
		{"airship_http_request_duration_seconds", []string{"route", "/orders", "method", "POST", "status", "2xx"}, 3},
		{"airship_http_request_duration_seconds", []string{"route", "unmatched", "method", "GET", "status", "4xx"}, 4},
		{"airship_http_request_size_bytes", []string{"route", "/products", "method", "POST"}, 1},
		{"airship_http_response_size_bytes", []string{"route", "/orders", "method", "POST"}, 5},
		{"airship_orders_placed_total", nil, 2},
		{"airship_orders_refused_total", []string{"reason", "out_of_stock"}, 1},
		{"airship_orders_refused_total", []string{"reason", "product_not_found"}, 1},
		{"airship_idempotent_replays_total", nil, 1},
		{"airship_recovery_reservations_released_total", nil, 1},
		{"airship_recovery_reservations_committed_total", nil, 0},
		{"airship_recovery_restocks_replayed_total", nil, 1},
		// Every order attempt reserves in one pipeline; the two placed
		// ones insert with create_order.
		{"airship_backend_request_duration_seconds", []string{"backend", "redis", "operation", "pipeline:reserve"}, 4},
		{"airship_backend_request_duration_seconds", []string{"backend", "postgres", "operation", "create_order"}, 2},
		{"airship_backend_errors_total", []string{"backend", "postgres", "operation", "create_order"}, 0},
	} {
		if got := delta(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Sizes: the request size histogram's sum is the body's length.
	if m := after.series("airship_http_request_size_bytes", map[string]string{"route": "/products", "method": "POST"}); m == nil ||
		m.Histogram.GetSampleSum() != float64(len(product)) {
		t.Errorf("request size of POST /products: %v, want %d", m, len(product))
	}
	// The outage: a failed Redis call (the 503's HMGET), whatever else
	// failed with it.
	if got := sumOf(after, "airship_backend_errors_total", "backend", "redis") - sumOf(before, "airship_backend_errors_total", "backend", "redis"); got < 1 {
		t.Errorf("Redis errors moved by %v during the outage, want at least 1", got)
	}
	if got := after.value("airship_http_requests_in_flight"); got != 0 {
		t.Errorf("in-flight requests %v after the session, want 0", got)
	}
	// The sweep: runs, their duration, the last success.
	if got := delta("airship_recovery_sweeps_total", "result", "ok"); got < 1 {
		t.Errorf("sweeps moved by %v, want at least 1", got)
	}
	if got := delta("airship_recovery_sweep_duration_seconds"); got < 1 {
		t.Errorf("sweep durations observed %v, want at least 1", got)
	}
	if last := after.value("airship_recovery_last_success_timestamp_seconds"); last < float64(began.Unix()) {
		t.Errorf("last sweep success at %v, before the session began (%d)", last, began.Unix())
	}
	// Pools, runtime, process and build.
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"go_sql_open_connections", []string{"db_name", "postgres"}},
		{"go_sql_max_open_connections", []string{"db_name", "postgres"}},
		{"go_sql_wait_count_total", []string{"db_name", "postgres"}},
		{"airship_redis_pool_connections", nil},
		{"airship_redis_pool_idle_connections", nil},
		{"airship_redis_pool_hits_total", nil},
		{"airship_redis_pool_misses_total", nil},
		{"airship_redis_pool_timeouts_total", nil},
		{"airship_redis_pool_max_connections", nil},
		{"go_goroutines", nil},
		{"go_memstats_heap_alloc_bytes", nil},
		{"process_resident_memory_bytes", nil},
		{"process_cpu_seconds_total", nil},
		{"airship_build_info", []string{"version", release.Version, "go_version", runtime.Version(), "build_date", release.BuildDate}},
	} {
		want := map[string]string{}
		for i := 0; i+1 < len(c.labels); i += 2 {
			want[c.labels[i]] = c.labels[i+1]
		}
		if after.series(c.name, want) == nil {
			t.Errorf("no series %s%v", c.name, c.labels)
		}
	}
	if got := after.value("go_sql_max_open_connections", "db_name", "postgres"); got != float64(cfg.PostgresMaxConns) {
		t.Errorf("go_sql_max_open_connections %v, want %d", got, cfg.PostgresMaxConns)
	}
	if got := after.value("airship_redis_pool_max_connections"); got != float64(cfg.RedisPoolSize) {
		t.Errorf("airship_redis_pool_max_connections %v, want %d", got, cfg.RedisPoolSize)
	}
	if got := after.value("airship_redis_pool_hits_total"); got < 1 {
		t.Errorf("airship_redis_pool_hits_total %v, want at least 1", got)
	}
	if got := after.value("airship_build_info"); got != 1 {
		t.Errorf("airship_build_info %v, want 1", got)
	}
	// The latency histograms have classic buckets, ending at +Inf.
	m := after.series("airship_http_request_duration_seconds", map[string]string{"route": "/orders", "method": "POST", "status": "2xx"})
	if m == nil || len(m.Histogram.Bucket) < 10 || !math.IsInf(m.Histogram.Bucket[len(m.Histogram.Bucket)-1].GetUpperBound(), 1) ||
		m.Histogram.Bucket[len(m.Histogram.Bucket)-1].GetCumulativeCount() != m.Histogram.GetSampleCount() {
		t.Errorf("POST /orders latency histogram without classic buckets: %v", m)
	}
}

// sumOf adds the values of every series of name with the label.
func sumOf(e exposition, name, label, value string) float64 {
	f, ok := e[name]
	if !ok {
		return 0
	}
	total := 0.0
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if l.GetName() == label && l.GetValue() == value && m.Counter != nil {
				total += m.Counter.GetValue()
			}
		}
	}
	return total
}

// TestEmbeddedPools: the embedded store serves its reads from a read
// pool beside its one writer connection, and exports both pools.
func TestEmbeddedPools(t *testing.T) {
	c := testConfig()
	c.DataDir = t.TempDir()
	s := startWith(t, c)
	e := scrape(t, s.app)
	if got := e.value("go_sql_max_open_connections", "db_name", "sqlite"); got != 1 {
		t.Errorf("the writer's pool: %v connections; want 1", got)
	}
	if got := e.value("go_sql_max_open_connections", "db_name", "sqlite_reads"); got < 2 {
		t.Errorf("the read pool: %v connections; want several", got)
	}
}

// TestMetricsCardinalityBounded: requests to random paths that match no
// route, with random methods, and to random ids of real routes, add no
// series: routes are labelled by template, unknown ones as "unmatched",
// and methods outside the API's as OTHER.
func TestMetricsCardinalityBounded(t *testing.T) {
	c := testConfig()
	c.DataDir = t.TempDir()
	s := startWith(t, c)
	h := s.app.Handler()
	send := func(method, path string) {
		req := httptest.NewRequest(method, path, nil)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	randomPath := func() string {
		var b strings.Builder
		for range 1 + rand.IntN(4) {
			b.WriteString("/" + strconv.FormatUint(rand.Uint64(), 36))
		}
		return b.String()
	}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}
	// One of each kind first, so that every series the kinds can make
	// exists before the count.
	for _, m := range methods {
		send(m, "/warm/up")
		send(m, "/products/warm-up")
		send(m, "/orders/1")
	}
	send("BREW", "/warm/up")
	before := scrape(t, s.app)
	for i := range 10_000 {
		switch i % 10 {
		case 0:
			send(methods[rand.IntN(len(methods))], "/products/"+strconv.FormatUint(rand.Uint64(), 36))
		case 1:
			send("X"+strconv.Itoa(rand.IntN(1_000_000)), randomPath())
		default:
			send(methods[rand.IntN(len(methods))], randomPath()+"?q="+strconv.Itoa(rand.Int()))
		}
	}
	after := scrape(t, s.app)
	if b, a := seriesOf(before, "airship_"), seriesOf(after, "airship_"); a != b {
		t.Errorf("10,000 requests to random paths added airship series: %d before, %d after", b, a)
	}
	if got := after.value("airship_http_requests_total", "route", "unmatched", "method", "OTHER", "status", "4xx"); got < 1000 {
		t.Errorf("requests with unknown methods counted as OTHER: %v, want at least 1000", got)
	}
}

// seriesOf counts the series whose name starts with prefix.
func seriesOf(e exposition, prefix string) int {
	n := 0
	for name, f := range e {
		if strings.HasPrefix(name, prefix) {
			n += len(f.Metric)
		}
	}
	return n
}
