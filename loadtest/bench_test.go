package loadtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airshipltd/airship/client"
)

// cannedShop answers every request of the scenario at once with a fixed
// body, the list of orders a full page of 50, so that a benchmark of an
// iteration measures the load generator's own work per request.
func cannedShop() http.Handler {
	line := `{"id": 1, "product_id": "the_odyssey", "price": "100000.99", "quantity": 1}`
	var page strings.Builder
	page.WriteString("[")
	for i := 1; i <= 50; i++ {
		if i > 1 {
			page.WriteString(",")
		}
		fmt.Fprintf(&page, `{"id": %d, "order_details": [%s]}`, i, line)
	}
	page.WriteString("]")
	product := `{"id": "the_odyssey", "title": "The Odyssey", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 10}`
	enriched := `{"id": 1, "order_details": [{"id": 1, "product_id": "the_odyssey", "price": "100000.99", "quantity": 1,
		"image": "http://www.example.com/airship/images/the_odyssey.jpg", "product": ` + product + `}]}`
	mux := http.NewServeMux()
	reply := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(body))
		}
	}
	mux.HandleFunc("POST /products", reply(`{"id": "the_odyssey"}`))
	mux.HandleFunc("GET /products/{id}", reply(product))
	mux.HandleFunc("DELETE /products/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("POST /orders", reply(`{"id": 1}`))
	mux.HandleFunc("GET /orders/{id}", reply(enriched))
	mux.HandleFunc("GET /orders", reply(page.String()))
	return mux
}

// BenchmarkIteration is one iteration of the scenario (six requests)
// against cannedShop over loopback HTTP.
func BenchmarkIteration(b *testing.B) {
	srv := httptest.NewServer(cannedShop())
	defer srv.Close()
	u := newBenchUser(b, srv.URL)
	ctx := b.Context()
	b.ReportAllocs()
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	n := 0
	for ; b.Loop(); n++ {
		u.iteration(ctx, ctx, n)
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	b.StopTimer()
	// CPU time of the process (load generator and canned server) per
	// iteration: steadier than the wall clock on a busy machine.
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/op")
	if s := u.rec.summary(time.Now(), StepNames); s.Total.Errors != 0 {
		b.Fatalf("%d errors: %v", s.Total.Errors, s.FirstError)
	}
}

func newBenchUser(b *testing.B, url string) *user {
	api, err := client.New(url, client.WithHTTPClient(NewClient(1)), client.WithRetry(client.NoRetry))
	if err != nil {
		b.Fatal(err)
	}
	return &user{run: "bench", rows: DefaultRows(), api: api, rec: newRecorder(time.Now(), numSteps)}
}
