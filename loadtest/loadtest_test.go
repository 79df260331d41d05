package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var validID = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

func TestProductID(t *testing.T) {
	tests := []struct {
		row, run string
		user, n  int
		want     string
	}{
		{"the_odyssey", "k3f9", 0, 0, "the_odyssey-k3f9-0-0"},
		{"the_odyssey", "k3f9", 2, 41, "the_odyssey-k3f9-2-41"},
		{"with space/slash", "r", 1, 7, "with_space_slash-r-1-7"},
		{strings.Repeat("x", 200), "r", 12, 345, strings.Repeat("x", 128-len("-r-12-345")) + "-r-12-345"},
	}
	for _, tt := range tests {
		got := ProductID(tt.row, tt.run, tt.user, tt.n)
		if got != tt.want {
			t.Errorf("ProductID(%q, %q, %d, %d) = %q, want %q", tt.row, tt.run, tt.user, tt.n, got, tt.want)
		}
		if !validID.MatchString(got) {
			t.Errorf("ProductID(%q, ...) = %q is not a valid product id", tt.row, got)
		}
	}
}

func TestProductIDsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, row := range DefaultRows() {
		for user := range 12 {
			for n := range 12 {
				id := ProductID(row.ID, "run", user, n)
				if seen[id] {
					t.Fatalf("duplicate id %q", id)
				}
				seen[id] = true
			}
		}
	}
}

func TestParseRows(t *testing.T) {
	rows := DefaultRows()
	if len(rows) != 10 {
		t.Fatalf("embedded csv: %d rows, want 10", len(rows))
	}
	want := Row{ID: "the_odyssey", Title: "The Odyssey", PassengerCapacity: 101, MaximumSpeed: 5, InStock: 10}
	if rows[0] != want {
		t.Errorf("first row = %+v, want %+v", rows[0], want)
	}

	// Columns in another order, an extra column.
	got, err := ParseRows(strings.NewReader("in_stock;id;extra;title;maximum_speed;passenger_capacity\n3;a;x;A;2;1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Row{ID: "a", Title: "A", PassengerCapacity: 1, MaximumSpeed: 2, InStock: 3}); got[0] != want {
		t.Errorf("reordered columns: %+v, want %+v", got[0], want)
	}

	for name, in := range map[string]string{
		"no rows":        "id;title;passenger_capacity;maximum_speed;in_stock\n",
		"missing column": "id;title;passenger_capacity;maximum_speed\na;A;1;2\n",
		"not a number":   "id;title;passenger_capacity;maximum_speed;in_stock\na;A;1;2;x\n",
		"negative":       "id;title;passenger_capacity;maximum_speed;in_stock\na;A;1;2;-1\n",
		"empty id":       "id;title;passenger_capacity;maximum_speed;in_stock\n;A;1;2;3\n",
	} {
		if _, err := ParseRows(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRecorderSummary(t *testing.T) {
	start := time.Unix(1000, 0)
	r := newRecorder(start, 2)
	// Second 0: step 0 gets 1..100 ms; second 2: step 1 gets one 5 ms error.
	for i := 1; i <= 100; i++ {
		r.record(0, start.Add(500*time.Millisecond), time.Duration(i)*time.Millisecond, nil)
	}
	r.record(1, start.Add(2500*time.Millisecond), 5*time.Millisecond, fmt.Errorf("status 500"))
	r.record(1, start.Add(2600*time.Millisecond), 5*time.Millisecond, fmt.Errorf("status 500"))
	s := r.summary(start.Add(4*time.Second), []string{"a", "b"})

	if s.Seconds != 4 {
		t.Errorf("seconds = %v, want 4", s.Seconds)
	}
	a := s.Steps[0]
	if a.Requests != 100 || a.Errors != 0 || a.RPS != 25 {
		t.Errorf("step a: requests %d errors %d rps %v, want 100, 0, 25", a.Requests, a.Errors, a.RPS)
	}
	if a.AvgMS != 50.5 {
		t.Errorf("step a: avg %v ms, want 50.5", a.AvgMS)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", a.P50MS, 50}, {"p90", a.P90MS, 90}, {"p95", a.P95MS, 95}, {"p99", a.P99MS, 99}, {"max", a.MaxMS, 100}} {
		if c.got < c.want*0.999 || c.got > c.want*1.001 {
			t.Errorf("step a: %s = %v ms, want %v (±0.1%%)", c.name, c.got, c.want)
		}
	}
	b := s.Steps[1]
	if b.Requests != 2 || b.Errors != 2 || len(b.ErrorSamples) != 1 {
		t.Errorf("step b: requests %d errors %d samples %q, want 2, 2, one sample", b.Requests, b.Errors, b.ErrorSamples)
	}
	if s.Total.Requests != 102 || s.Total.Errors != 2 {
		t.Errorf("total: requests %d errors %d, want 102, 2", s.Total.Requests, s.Total.Errors)
	}
	// Seconds 0 to 3, with the empty ones in between.
	if len(s.Timeline) != 4 {
		t.Fatalf("timeline has %d seconds, want 4: %+v", len(s.Timeline), s.Timeline)
	}
	wantCounts := []int64{100, 0, 2, 0}
	for i, sec := range s.Timeline {
		if sec.Second != i || sec.Requests != wantCounts[i] {
			t.Errorf("timeline[%d] = %+v, want second %d with %d requests", i, sec, i, wantCounts[i])
		}
	}
	if s.Timeline[2].Errors != 2 {
		t.Errorf("timeline[2].Errors = %d, want 2", s.Timeline[2].Errors)
	}
}

func TestWriteTable(t *testing.T) {
	s := Summary{
		Steps: []Stats{{Name: "get product", Requests: 1234, Errors: 1, RPS: 41.13, AvgMS: 1.234, P50MS: 1, P90MS: 2, P95MS: 3, P99MS: 4.5, MaxMS: 12.25,
			ErrorSamples: []string{"status 500, want 200: boom"}}},
		Total: Stats{Name: "total", Requests: 1234, Errors: 1, RPS: 41.13, AvgMS: 1.234, P50MS: 1, P90MS: 2, P95MS: 3, P99MS: 4.5, MaxMS: 12.25},
	}
	var b strings.Builder
	if err := WriteTable(&b, s); err != nil {
		t.Fatal(err)
	}
	want := `step              requests  errors       rps    avg ms    p50 ms    p90 ms    p95 ms    p99 ms    max ms
get product           1234       1      41.1      1.23      1.00      2.00      3.00      4.50     12.25
total                 1234       1      41.1      1.23      1.00      2.00      3.00      4.50     12.25
error in get product: status 500, want 200: boom
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

// fakeShop is a tiny in-memory implementation of the endpoints the
// scenario calls, enough to exercise the load generator.
type fakeShop struct {
	mu       sync.Mutex
	products map[string]json.RawMessage
	orders   []json.RawMessage
	hits     map[string]int
}

func newFakeShop() *fakeShop {
	return &fakeShop{products: map[string]json.RawMessage{}, hits: map[string]int{}}
}

func (f *fakeShop) handler() http.Handler {
	mux := http.NewServeMux()
	hit := func(name string) {
		f.mu.Lock()
		f.hits[name]++
		f.mu.Unlock()
	}
	mux.HandleFunc("POST /products", func(w http.ResponseWriter, r *http.Request) {
		hit("create product")
		var p struct {
			ID string `json:"id"`
		}
		var raw json.RawMessage
		if json.NewDecoder(r.Body).Decode(&raw) != nil || json.Unmarshal(raw, &p) != nil || !validID.MatchString(p.ID) {
			http.Error(w, `{"error":"VALIDATION_ERROR"}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.products[p.ID]; ok {
			http.Error(w, `{"error":"PRODUCT_EXISTS"}`, http.StatusConflict)
			return
		}
		f.products[p.ID] = raw
		fmt.Fprintf(w, `{"id": %q}`, p.ID)
	})
	mux.HandleFunc("GET /products/{id}", func(w http.ResponseWriter, r *http.Request) {
		hit("get product")
		f.mu.Lock()
		defer f.mu.Unlock()
		p, ok := f.products[r.PathValue("id")]
		if !ok {
			http.Error(w, `{"error":"PRODUCT_NOT_FOUND"}`, http.StatusNotFound)
			return
		}
		w.Write(p)
	})
	mux.HandleFunc("DELETE /products/{id}", func(w http.ResponseWriter, r *http.Request) {
		hit("delete product")
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.products[r.PathValue("id")]; !ok {
			http.Error(w, `{"error":"PRODUCT_NOT_FOUND"}`, http.StatusNotFound)
			return
		}
		delete(f.products, r.PathValue("id"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		hit("create order")
		var o struct {
			OrderDetails []struct {
				ProductID string `json:"product_id"`
				Price     string `json:"price"`
				Quantity  int    `json:"quantity"`
			} `json:"order_details"`
		}
		if json.NewDecoder(r.Body).Decode(&o) != nil || len(o.OrderDetails) != 1 ||
			o.OrderDetails[0].Price != "100000.99" || o.OrderDetails[0].Quantity != 1 {
			http.Error(w, `{"error":"VALIDATION_ERROR"}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.products[o.OrderDetails[0].ProductID]; !ok {
			http.Error(w, `{"error":"PRODUCT_NOT_FOUND"}`, http.StatusNotFound)
			return
		}
		id := len(f.orders) + 1
		doc, _ := json.Marshal(map[string]any{"id": id, "order_details": o.OrderDetails})
		f.orders = append(f.orders, doc)
		fmt.Fprintf(w, `{"id": %d}`, id)
	})
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		hit("get order")
		id, err := strconv.Atoi(r.PathValue("id"))
		f.mu.Lock()
		defer f.mu.Unlock()
		if err != nil || id < 1 || id > len(f.orders) {
			http.Error(w, `{"error":"ORDER_NOT_FOUND"}`, http.StatusNotFound)
			return
		}
		w.Write(f.orders[id-1])
	})
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
		hit("list orders")
		f.mu.Lock()
		defer f.mu.Unlock()
		page := f.orders[:min(50, len(f.orders))]
		w.Write([]byte("["))
		for i, o := range page {
			if i > 0 {
				w.Write([]byte(","))
			}
			w.Write(o)
		}
		w.Write([]byte("]"))
	})
	return mux
}

func TestRunAgainstFake(t *testing.T) {
	shop := newFakeShop()
	srv := httptest.NewServer(shop.handler())
	defer srv.Close()

	var progress strings.Builder
	s, err := Run(t.Context(), Config{
		URL: srv.URL, Users: 3, RampUp: 500 * time.Millisecond, Hold: 1500 * time.Millisecond,
		Progress: &syncWriter{w: &progress},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Errors != 0 {
		t.Errorf("%d errors: %+v", s.Total.Errors, s.Steps)
	}
	if s.Total.Requests < 60 {
		t.Errorf("only %d requests in 2 s", s.Total.Requests)
	}
	if s.Seconds < 1.9 || s.Seconds > 5 {
		t.Errorf("ran %.2f s, want about 2", s.Seconds)
	}
	if s.Interrupted {
		t.Error("interrupted without cancel")
	}

	// Counts add up: per step, in the total, in the timeline, and with
	// what the server saw. An iteration cut short by the end of the run
	// makes the steps differ by at most one per user.
	var sum, perSecond int64
	for i, st := range s.Steps {
		sum += st.Requests
		shop.mu.Lock()
		served := shop.hits[StepNames[i]]
		shop.mu.Unlock()
		if st.Requests > int64(served) || int64(served)-st.Requests > 3 {
			t.Errorf("%s: %d recorded, %d served", st.Name, st.Requests, served)
		}
		if d := s.Steps[0].Requests - st.Requests; d < 0 || d > 3 {
			t.Errorf("%s: %d requests, create product %d", st.Name, st.Requests, s.Steps[0].Requests)
		}
	}
	for _, sec := range s.Timeline {
		perSecond += sec.Requests
	}
	if sum != s.Total.Requests || perSecond != s.Total.Requests {
		t.Errorf("steps add up to %d, timeline to %d, total is %d", sum, perSecond, s.Total.Requests)
	}
	shop.mu.Lock()
	left := len(shop.products)
	shop.mu.Unlock()
	if left != 0 {
		t.Errorf("%d products left behind", left)
	}
	if lines := strings.Count(progress.String(), "\n"); lines < 1 {
		t.Errorf("no progress lines: %q", progress.String())
	}

	dir := t.TempDir()
	paths, err := WriteReports(filepath.Join(dir, "out"), s)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 {
		t.Fatalf("wrote %q", paths)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "out", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Summary
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.Total.Requests != s.Total.Requests || len(back.Steps) != numSteps || back.Users != 3 {
		t.Errorf("summary.json: total %d steps %d users %d", back.Total.Requests, len(back.Steps), back.Users)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "out", "latency.svg"))
	if err != nil {
		t.Fatal(err)
	}
	c := parseChart(t, svg)
	if pts := c.points("latency", "p50"); len(pts) == 0 {
		t.Errorf("latency.svg has no p50 line:\n%s", svg)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	shop := newFakeShop()
	srv := httptest.NewServer(shop.handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	s, err := Run(ctx, Config{URL: srv.URL, Users: 2, RampUp: 0, Hold: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("took %s after cancel", took)
	}
	if !s.Interrupted || s.Total.Requests == 0 || s.Total.Errors != 0 {
		t.Errorf("interrupted %v, requests %d, errors %d", s.Interrupted, s.Total.Requests, s.Total.Errors)
	}
	shop.mu.Lock()
	defer shop.mu.Unlock()
	if len(shop.products) != 0 {
		t.Errorf("%d products left behind", len(shop.products))
	}
}

// TestRunLeavesNothingWhenCutShort: a run interrupted while a product is
// being created leaves no product behind, however long the server takes
// to create it (a create cut short used to land after the clean-up).
func TestRunLeavesNothingWhenCutShort(t *testing.T) {
	shop := newFakeShop()
	h := shop.handler()
	created := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/products" {
			select {
			case created <- struct{}{}:
			default:
			}
			time.Sleep(300 * time.Millisecond) // the server goes on after the client's cancel
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-created; cancel() }()
	s, err := Run(ctx, Config{URL: srv.URL, Users: 1, Hold: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Interrupted {
		t.Fatal("run not interrupted")
	}
	srv.Close() // waits for the create cut short to land
	shop.mu.Lock()
	defer shop.mu.Unlock()
	if len(shop.products) != 0 {
		t.Fatalf("%d products left behind", len(shop.products))
	}
}

func TestRunCountsErrors(t *testing.T) {
	// A server that refuses to delete: every delete is an error, the rest works.
	shop := newFakeShop()
	h := shop.handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			http.Error(w, `{"error":"UNEXPECTED_ERROR"}`, http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s, err := Run(t.Context(), Config{URL: srv.URL, Users: 1, Hold: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	del := s.Steps[StepDeleteProduct]
	if del.Requests == 0 || del.Errors != del.Requests || s.Total.Errors != del.Errors {
		t.Errorf("delete: %d requests %d errors; total errors %d", del.Requests, del.Errors, s.Total.Errors)
	}
	if len(del.ErrorSamples) == 0 || !strings.Contains(del.ErrorSamples[0], "500 UNEXPECTED_ERROR") {
		t.Errorf("error samples: %q", del.ErrorSamples)
	}
	if !strings.Contains(s.FirstError, "500 UNEXPECTED_ERROR") {
		t.Errorf("first error %q", s.FirstError)
	}
	// One request in six failed: over 1%, within 20%.
	if err := s.Check(0.01); err == nil || !strings.Contains(err.Error(), "500 UNEXPECTED_ERROR") {
		t.Errorf("Check(0.01) = %v, want the error rate and the first error", err)
	}
	if err := s.Check(0.2); err != nil {
		t.Errorf("Check(0.2) = %v", err)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestRunSpreadsUsersOverURLs: with several URLs (replicas), user i calls
// the (i mod n)th, so that every replica gets its share.
func TestRunSpreadsUsersOverURLs(t *testing.T) {
	a, b := newFakeShop(), newFakeShop()
	srvA, srvB := httptest.NewServer(a.handler()), httptest.NewServer(b.handler())
	defer srvA.Close()
	defer srvB.Close()
	s, err := Run(t.Context(), Config{URL: srvA.URL + "," + srvB.URL + "/", Users: 2, Hold: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Errors != 0 {
		t.Errorf("%d errors: %+v", s.Total.Errors, s.Steps)
	}
	for name, shop := range map[string]*fakeShop{"first": a, "second": b} {
		shop.mu.Lock()
		hits := shop.hits["create order"]
		shop.mu.Unlock()
		if hits == 0 {
			t.Errorf("the %s URL got no orders", name)
		}
	}
	if _, err := Run(t.Context(), Config{URL: srvA.URL + ",localhost:1", Users: 2, Hold: time.Second}); err == nil {
		t.Error("a URL list with a URL that is not http(s) accepted")
	}
}
