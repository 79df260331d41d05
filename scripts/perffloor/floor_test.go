package main

import (
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/airshipltd/airship/app"
	airship "github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/telemetry"
	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/orders/sqlstore"
	"github.com/airshipltd/airship/products/redisstore"
)

// The floor runs airship's own statements and scripts: if airship's
// change, the floor must follow, or it measures other work.
func TestSameStatementsAndScripts(t *testing.T) {
	statements := sqlstore.StatementNames()
	for query, want := range map[string]string{insertOrder: "create_order", selectOrder: "get_order"} {
		if got := statements[query]; got != want {
			t.Errorf("the floor's %s statement is not airship's (orders/sqlstore/postgres.go); copy it again:\n%s", want, query)
		}
	}
	scripts := redisstore.ScriptNames()
	if got := scripts[reserveScript.Hash()]; got != "reserve" {
		t.Errorf("scripts/perffloor/reserve.lua is not airship's products/redisstore/lua/reserve.lua; copy it again")
	}
	if got := scripts[releaseScript.Hash()]; got != "release" {
		t.Errorf("scripts/perffloor/release.lua is not airship's products/redisstore/lua/release.lua; copy it again")
	}
}

type answer struct {
	status      int
	contentType string
	body        string
}

func call(t *testing.T, base, method, path, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

var orderCreated = regexp.MustCompile(`^\{"id":([1-9][0-9]*)\}\n$`)

// TestSameAnswers sends the same requests to airship and to the floor on
// the same data and compares status, Content-Type and body byte for byte;
// orders placed through the floor must read back through airship as
// airship's own do, and leave the stock and the reservations as airship's
// do.
func TestSameAnswers(t *testing.T) {
	cfg := airship.Defaults()
	cfg.PostgresURL = testbackend.PostgresURL(t)
	rdb, prefix := testbackend.Redis(t)
	cfg.RedisURL = testbackend.RedisURL()
	cfg.RedisPrefix = prefix
	cfg.MetricsAddr = ""
	log, err := telemetry.NewLogger(io.Discard, "error", "json")
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(t.Context(), cfg, log)
	if err != nil {
		t.Fatalf("start airship: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	airship := httptest.NewServer(a.Handler())
	t.Cleanup(airship.Close)

	f, err := newFloor(t.Context(), config{
		postgresURL: cfg.PostgresURL, redisURL: cfg.RedisURL, redisPrefix: prefix, imageRoot: cfg.ProductImageRoot,
		hold: cfg.ReservationTimeout, postgresConns: cfg.PostgresMaxConns, redisPool: cfg.RedisPoolSize,
	})
	if err != nil {
		t.Fatalf("start the floor: %v", err)
	}
	t.Cleanup(f.close)
	floor := httptest.NewServer(f.handler())
	t.Cleanup(floor.Close)

	// same sends a request to both and wants the same answer.
	same := func(method, path, body string, wantStatus int) answer {
		t.Helper()
		want := call(t, airship.URL, method, path, body)
		got := call(t, floor.URL, method, path, body)
		if want.status != wantStatus {
			t.Fatalf("airship: %s %s: %d %s, want status %d", method, path, want.status, want.body, wantStatus)
		}
		if got != want {
			t.Errorf("%s %s:\nfloor   %d %s %q\nairship %d %s %q", method, path,
				got.status, got.contentType, got.body, want.status, want.contentType, want.body)
		}
		return want
	}
	// place places an order through base and returns its id.
	place := func(base, body string) string {
		t.Helper()
		got := call(t, base, http.MethodPost, "/orders", body)
		m := orderCreated.FindStringSubmatch(got.body)
		if got.status != http.StatusOK || m == nil || got.contentType != "application/json" {
			t.Fatalf("POST /orders at %s: %d %s %q", base, got.status, got.contentType, got.body)
		}
		return m[1]
	}

	for _, body := range []string{
		`{"id": "floor-a", "title": "Zeppelin \"LZ 129\" <Hindenburg> & Co, é \u2028", "passenger_capacity": 72, "maximum_speed": 135, "in_stock": 100}`,
		`{"id": "floor-b", "title": "Blimp", "passenger_capacity": 0, "maximum_speed": 60, "in_stock": 100}`,
	} {
		if got := call(t, airship.URL, http.MethodPost, "/products", body); got.status != http.StatusOK {
			t.Fatalf("create product through airship: %d %s", got.status, got.body)
		}
	}
	same(http.MethodGet, "/products/floor-a", "", http.StatusOK)
	same(http.MethodGet, "/products/floor-b", "", http.StatusOK)
	same(http.MethodGet, "/products/missing", "", http.StatusNotFound)
	same(http.MethodGet, "/products/no%20such", "", http.StatusNotFound)

	// Three lines, two of one product (merged into one reservation line),
	// prices as a string with two decimals, a number, and one decimal.
	order := `{"order_details": [{"product_id": "floor-a", "price": "100000.99", "quantity": 2},
		{"product_id": "floor-b", "price": 5, "quantity": 1}, {"product_id": "floor-a", "price": "1.5", "quantity": 1}]}`
	byAirship := place(airship.URL, order)
	byFloor := place(floor.URL, order)
	one := place(floor.URL, `{"order_details": [{"product_id": "floor-b", "price": "7", "quantity": 2}]}`)
	onAirship := same(http.MethodGet, "/orders/"+byAirship, "", http.StatusOK)
	onFloor := same(http.MethodGet, "/orders/"+byFloor, "", http.StatusOK)
	same(http.MethodGet, "/orders/"+one, "", http.StatusOK)
	// The floor's order is airship's but for its ids.
	ids := regexp.MustCompile(`"id":[0-9]+`)
	if a, f := ids.ReplaceAllString(onAirship.body, `"id":N`), ids.ReplaceAllString(onFloor.body, `"id":N`); a != f {
		t.Errorf("an order placed through the floor reads back unlike one placed through airship:\nfloor   %s\nairship %s", f, a)
	}
	if !strings.Contains(onAirship.body, `"price":"5.00"`) || !strings.Contains(onAirship.body, `"in_stock":94`) {
		t.Errorf("GET /orders/%s: %s; want the line of price 5.00 and floor-a's stock 100 - 3 - 3", byAirship, onAirship.body)
	}
	for _, path := range []string{"/orders/999999", "/orders/0", "/orders/01", "/orders/x", "/orders/12345678901"} {
		same(http.MethodGet, path, "", http.StatusNotFound)
	}

	// Refusals: a missing product (floor-b's stock, taken first, goes
	// back) and too little stock.
	same(http.MethodPost, "/orders", `{"order_details": [{"product_id": "floor-b", "price": "1", "quantity": 1},
		{"product_id": "missing", "price": "1", "quantity": 1}]}`, http.StatusNotFound)
	same(http.MethodPost, "/orders", `{"order_details": [{"product_id": "floor-b", "price": "1", "quantity": 1000}]}`,
		http.StatusConflict)
	if got := same(http.MethodGet, "/products/floor-b", "", http.StatusOK); !strings.Contains(got.body, `"in_stock":96`) {
		t.Errorf("floor-b after the refusals: %s; want its stock 100 - 1 - 1 - 2", got.body)
	}

	// Every reservation was committed or released: no hold, record or
	// index entry is left, and each order claimed its reservation.
	for _, key := range []string{"hold:{floor-a}", "hold:{floor-b}", "reservations"} {
		if n, err := rdb.Exists(t.Context(), prefix+key).Result(); err != nil || n != 0 {
			t.Errorf("Redis key %s%s is left (%d, %v)", prefix, key, n, err)
		}
	}
	if keys, err := rdb.Keys(t.Context(), prefix+"reservation:*").Result(); err != nil || len(keys) != 0 {
		t.Errorf("reservation records left: %v, %v", keys, err)
	}
	db, err := sql.Open("postgres", cfg.PostgresURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var claimed int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM stock_reservations WHERE order_id IN ($1, $2, $3)`,
		byAirship, byFloor, one).Scan(&claimed); err != nil || claimed != 3 {
		t.Errorf("reservations claimed by the three orders: %d (%v), want 3", claimed, err)
	}
}
