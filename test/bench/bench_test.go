// Package bench benchmarks the API's hot paths through the real echo
// router on the production backends (PostgreSQL and Redis), with a fresh
// database and Redis key prefix made by internal/testbackend:
//
//	go test ./test/bench -run '^$' -bench . -benchmem
//
// Each request is served by calling the handler directly with an
// httptest recorder, so the numbers are the server's own cost: routing,
// middleware, decoding, the stores' round trips and encoding, without a
// network client.
package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/airshipltd/airship/app"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/telemetry"
	"github.com/airshipltd/airship/internal/testbackend"
)

// newAPI returns the handler of an airship on its own PostgreSQL database
// and Redis key prefix, both removed when b ends.
func newAPI(b *testing.B) http.Handler {
	b.Helper()
	cfg := config.Defaults()
	cfg.PostgresURL = testbackend.PostgresURL(b)
	cfg.RedisURL = testbackend.RedisURL()
	cfg.RedisPrefix = testbackend.RedisPrefix(b)
	log, err := telemetry.NewLogger(io.Discard, "error", "json")
	if err != nil {
		b.Fatal(err)
	}
	a, err := app.New(b.Context(), cfg, log)
	if err != nil {
		b.Fatalf("start airship: %v", err)
	}
	b.Cleanup(func() { a.Close() })
	return a.Handler()
}

// serve sends one request through h and fails b unless it answers want.
func serve(b *testing.B, h http.Handler, method, path string, body []byte, want int) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: status %d, want %d: %s", method, path, rec.Code, want, rec.Body.String())
	}
	return rec
}

func createProduct(b *testing.B, h http.Handler, id string) {
	body := fmt.Sprintf(`{"id": %q, "title": "Bench %s", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 2000000000}`, id, id)
	serve(b, h, http.MethodPost, "/products", []byte(body), http.StatusOK)
}

// orderBody returns a create-order body with one line per product.
func orderBody(ids ...string) []byte {
	lines := make([]string, len(ids))
	for i, id := range ids {
		lines[i] = fmt.Sprintf(`{"product_id": %q, "price": "100000.99", "quantity": 1}`, id)
	}
	return []byte(`{"order_details": [` + strings.Join(lines, ", ") + `]}`)
}

func createOrder(b *testing.B, h http.Handler, ids ...string) int64 {
	rec := serve(b, h, http.MethodPost, "/orders", orderBody(ids...), http.StatusOK)
	var out struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		b.Fatalf("create order: %v: %s", err, rec.Body.String())
	}
	return out.ID
}

func BenchmarkAPI(b *testing.B) {
	h := newAPI(b)

	ids := make([]string, 10)
	for i := range ids {
		ids[i] = "bench_" + strconv.Itoa(i)
		createProduct(b, h, ids[i])
	}
	oneLine := createOrder(b, h, ids[0])
	tenLines := createOrder(b, h, ids...)
	for range 60 { // more than the default page of 50
		createOrder(b, h, ids[0])
	}

	b.Run("GetProduct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serve(b, h, http.MethodGet, "/products/"+ids[0], nil, http.StatusOK)
		}
	})
	b.Run("GetOrder/lines=1", func(b *testing.B) {
		path := "/orders/" + strconv.FormatInt(oneLine, 10)
		b.ReportAllocs()
		for b.Loop() {
			serve(b, h, http.MethodGet, path, nil, http.StatusOK)
		}
	})
	b.Run("GetOrder/lines=10", func(b *testing.B) {
		path := "/orders/" + strconv.FormatInt(tenLines, 10)
		b.ReportAllocs()
		for b.Loop() {
			serve(b, h, http.MethodGet, path, nil, http.StatusOK)
		}
	})
	b.Run("CreateOrder", func(b *testing.B) {
		body := orderBody(ids[1])
		b.ReportAllocs()
		for b.Loop() {
			serve(b, h, http.MethodPost, "/orders", body, http.StatusOK)
		}
	})
	b.Run("ListOrders", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serve(b, h, http.MethodGet, "/orders", nil, http.StatusOK)
		}
	})
}
