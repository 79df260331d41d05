package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/airshipltd/airship/client"
)

// script is a server that answers each request with the next of its
// handlers (the last one repeats) and records what it got.
type script struct {
	mu       sync.Mutex
	handlers []http.HandlerFunc
	got      []*http.Request
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := len(s.got)
	s.got = append(s.got, r.Clone(context.Background()))
	h := s.handlers[min(n, len(s.handlers)-1)]
	s.mu.Unlock()
	h(w, r)
}

func (s *script) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.got...)
}

func serve(t *testing.T, handlers ...http.HandlerFunc) (*script, string) {
	s := &script{handlers: handlers}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func answer(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
}

const (
	unavailable = `{"error": "SERVICE_UNAVAILABLE", "message": "a backend is unavailable or busy; retry later"}`
	odyssey     = `{"id": "the_odyssey", "title": "The Odyssey", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 10}`
)

// waits records the waits a client's retries took.
type waits struct {
	mu   sync.Mutex
	list []time.Duration
	errs []error
}

func (w *waits) record(err error, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, d)
	w.errs = append(w.errs, err)
}

func newClient(t *testing.T, url string, r client.Retry, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, append([]client.Option{client.WithRetry(r)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fast is a retry policy with short waits.
func fast(w *waits) client.Retry {
	return client.Retry{MaxAttempts: 4, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, OnRetry: w.record}
}

// TestRetryHonoursRetryAfter: a 503 with Retry-After is retried after the
// wait the server asks for, not the backoff's.
func TestRetryHonoursRetryAfter(t *testing.T) {
	srv, url := serve(t, answer(503, unavailable, "Retry-After", "1"), answer(200, odyssey))
	var w waits
	c := newClient(t, url, fast(&w))
	p, err := c.GetProduct(t.Context(), "the_odyssey")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "the_odyssey" || p.InStock != 10 {
		t.Errorf("product %+v", p)
	}
	if n := len(srv.requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	if len(w.list) != 1 || w.list[0] != time.Second {
		t.Errorf("waits %v, want [1s]", w.list)
	}
	if len(w.errs) == 1 && !errors.Is(w.errs[0], client.ErrServiceUnavailable) {
		t.Errorf("OnRetry got %v, want the 503", w.errs[0])
	}
}

// TestRetryGivesUpWithTheLastAnswer: after MaxAttempts 503s the call
// returns the last one as an *Error.
func TestRetryGivesUpWithTheLastAnswer(t *testing.T) {
	srv, url := serve(t, answer(503, unavailable, "X-Request-Id", "r-1"))
	var w waits
	c := newClient(t, url, fast(&w))
	_, err := c.GetOrder(t.Context(), 3)
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 503 || e.Code != client.ErrServiceUnavailable || e.RequestID != "r-1" {
		t.Fatalf("error %#v, want the 503's *Error", err)
	}
	if n := len(srv.requests()); n != 4 {
		t.Errorf("%d requests, want 4 (MaxAttempts)", n)
	}
	// Exponential, with jitter of ±50% around 1 ms, 1.5 ms, 2.25 ms.
	if len(w.list) != 3 {
		t.Fatalf("waits %v, want 3", w.list)
	}
	for i, d := range w.list {
		if d <= 0 || d > 5*time.Millisecond {
			t.Errorf("wait %d: %v, want within (0, 5ms]", i, d)
		}
	}
}

// TestRetryStopsAtTheDeadline: a wait that would end after the context's
// deadline is not waited for; the call returns the 503 at once.
func TestRetryStopsAtTheDeadline(t *testing.T) {
	srv, url := serve(t, answer(503, unavailable, "Retry-After", "3600"))
	c := newClient(t, url, client.Retry{MaxAttempts: 4, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	_, err := c.GetProduct(ctx, "the_odyssey")
	if !errors.Is(err, client.ErrServiceUnavailable) {
		t.Fatalf("error %v, want the 503", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the call waited for the deadline")
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}

	// Cancelled while waiting: the context's error, and the last answer's.
	srv, url = serve(t, answer(503, unavailable, "Retry-After", "3600"))
	ctx, cancel = context.WithCancel(t.Context())
	c = newClient(t, url, client.Retry{MaxAttempts: 4, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond,
		OnRetry: func(error, time.Duration) { cancel() }})
	_, err = c.GetProduct(ctx, "the_odyssey")
	if !errors.Is(err, context.Canceled) || !errors.Is(err, client.ErrServiceUnavailable) {
		t.Fatalf("error %v, want context.Canceled and the 503", err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestRetryAfterConnectionRefused: a read sent while nothing listens is
// retried until the server is there.
func TestRetryAfterConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connection refused from now on
	s := &script{handlers: []http.HandlerFunc{answer(200, odyssey)}}
	srv := httptest.NewUnstartedServer(s)
	var w waits
	r := fast(&w)
	r.OnRetry = func(err error, d time.Duration) {
		w.record(err, d)
		if len(w.list) == 1 { // the server comes up after the first refusal
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Errorf("listen again on %s: %v", addr, err)
				return
			}
			srv.Listener = ln
			srv.Start()
		}
	}
	t.Cleanup(srv.Close)
	c := newClient(t, "http://"+addr, r)
	p, err := c.GetProduct(t.Context(), "the_odyssey")
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "the_odyssey" {
		t.Errorf("product %+v", p)
	}
	if len(w.errs) == 0 || !isRefused(w.errs[0]) {
		t.Errorf("first retry after %v, want connection refused", w.errs)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

func isRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// TestNoRetryOfAnUnkeyedOrder: POST /orders without an Idempotency-Key is
// sent once whatever the answer; with one it is retried, with the same
// key each time.
func TestNoRetryOfAnUnkeyedOrder(t *testing.T) {
	line := client.NewOrderLine{ProductID: "the_odyssey", Price: client.Price("100000.99"), Quantity: 1}

	srv, url := serve(t, answer(503, unavailable))
	var w waits
	c := newClient(t, url, fast(&w))
	if _, err := c.CreateOrder(t.Context(), "", line); !errors.Is(err, client.ErrServiceUnavailable) {
		t.Fatalf("error %v, want the 503", err)
	}
	if n := len(srv.requests()); n != 1 || len(w.list) != 0 {
		t.Fatalf("unkeyed order: %d requests, %d retries; want 1 and none", n, len(w.list))
	}

	// Nor after a network error: the order may have landed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	c = newClient(t, refused, fast(&w))
	if _, err := c.CreateOrder(t.Context(), "", line); !isRefused(err) {
		t.Fatalf("error %v, want connection refused", err)
	}
	if len(w.list) != 0 {
		t.Fatalf("unkeyed order retried after a network error: %v", w.errs)
	}

	// Keyed: retried, the same key and body each time, until it lands.
	srv, url = serve(t, answer(503, unavailable), answer(503, unavailable), answer(200, `{"id": 7}`))
	c = newClient(t, url, fast(&w))
	key := client.NewIdempotencyKey()
	id, err := c.CreateOrder(t.Context(), key, line)
	if err != nil || id != 7 {
		t.Fatalf("keyed order: %d, %v; want 7", id, err)
	}
	reqs := srv.requests()
	if len(reqs) != 3 {
		t.Fatalf("keyed order: %d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if got := r.Header.Get("Idempotency-Key"); got != key {
			t.Errorf("attempt %d: Idempotency-Key %q, want %q", i+1, got, key)
		}
	}
	if len(key) != 32 || key == client.NewIdempotencyKey() {
		t.Errorf("NewIdempotencyKey: %q", key)
	}
}

// TestNoRetryOfOtherAnswers: only 503 and network errors are retried.
func TestNoRetryOfOtherAnswers(t *testing.T) {
	for _, status := range []int{400, 404, 409, 429, 500, 502} {
		srv, url := serve(t, answer(status, `{"error": "UNEXPECTED_ERROR", "message": "x"}`))
		c := newClient(t, url, client.DefaultRetry)
		if _, err := c.GetProduct(t.Context(), "x"); err == nil {
			t.Fatalf("%d: no error", status)
		}
		if n := len(srv.requests()); n != 1 {
			t.Errorf("%d: %d requests, want 1", status, n)
		}
	}
	// Writes other than a keyed order: never retried.
	srv, url := serve(t, answer(503, unavailable))
	c := newClient(t, url, client.DefaultRetry)
	c.CreateProduct(t.Context(), client.NewProduct{ID: "a", Title: "A"})
	c.UpdateProduct(t.Context(), "a", client.ProductPatch{InStock: client.Ptr[int32](1)})
	c.DeleteProduct(t.Context(), "a")
	c.UpdateOrder(t.Context(), 1, client.OrderLineUpdate{ID: 1, Quantity: client.Ptr[int32](2)})
	c.DeleteOrder(t.Context(), 1)
	if n := len(srv.requests()); n != 5 {
		t.Errorf("5 writes: %d requests, want 5", n)
	}
}

func TestRetryOptionsChecked(t *testing.T) {
	for _, r := range []client.Retry{
		{MaxAttempts: 3},
		{MaxAttempts: 3, InitialInterval: time.Second, MaxInterval: time.Millisecond},
		{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: time.Second, MaxElapsed: -1},
	} {
		if _, err := client.New("http://localhost:8000", client.WithRetry(r)); err == nil {
			t.Errorf("WithRetry(%+v) accepted", r)
		}
	}
	if _, err := client.New("http://localhost:8000", client.WithRetry(client.NoRetry)); err != nil {
		t.Errorf("NoRetry: %v", err)
	}
}
