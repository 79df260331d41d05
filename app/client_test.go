package app_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airshipltd/airship/app"
	"github.com/airshipltd/airship/client"
	"github.com/airshipltd/airship/internal/apitest"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/testbackend"
)

// The Go client (package client) against a live airship, on every
// backend (and split, in a build with -tags remote); every request and
// answer is checked against the OpenAPI document on the way.

// api returns a client of s that sends through the OpenAPI-checking
// transport.
func (s *server) api(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	hc := &http.Client{Transport: apitest.NewTransport(t, nil)}
	c, err := client.New(s.url, append([]client.Option{client.WithHTTPClient(hc)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var theOdyssey = client.NewProduct{ID: "the_odyssey", Title: "The Odyssey", PassengerCapacity: 101, MaximumSpeed: 5, InStock: 10}

func lineOf(id string, quantity int32) client.NewOrderLine {
	return client.NewOrderLine{ProductID: id, Price: client.Price("100000.99"), Quantity: quantity}
}

// TestClientExampleSession runs the contract's example session through
// the client.
func TestClientExampleSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b)
		c := s.api(t)
		ctx := t.Context()
		if err := c.CreateProduct(ctx, theOdyssey); err != nil {
			t.Fatal(err)
		}
		p, err := c.GetProduct(ctx, "the_odyssey")
		want := client.Product{ID: "the_odyssey", Title: "The Odyssey", PassengerCapacity: 101, MaximumSpeed: 5, InStock: 10}
		if err != nil || p != want {
			t.Fatalf("GetProduct = %+v, %v; want %+v", p, err, want)
		}
		id, err := c.CreateOrder(ctx, client.NewIdempotencyKey(), lineOf("the_odyssey", 1))
		if err != nil || id != 1 {
			t.Fatalf("CreateOrder = %d, %v; want 1", id, err)
		}
		o, err := c.GetOrder(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		want.InStock = 9
		l := o.OrderDetails
		if o.ID != 1 || len(l) != 1 || l[0].ID != 1 || l[0].ProductID != "the_odyssey" || l[0].Quantity != 1 ||
			l[0].Price.String() != "100000.99" || l[0].Image != "http://www.example.com/airship/images/the_odyssey.jpg" ||
			l[0].Product == nil || *l[0].Product != want {
			t.Fatalf("GetOrder = %+v", o)
		}
		if err := c.DeleteProduct(ctx, "the_odyssey"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetProduct(ctx, "the_odyssey"); !errors.Is(err, client.ErrProductNotFound) {
			t.Fatalf("GetProduct of a deleted product: %v", err)
		}
		var orders []client.Order
		for o, err := range c.ListOrders(client.ListOrdersOptions{}).All(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			orders = append(orders, o)
		}
		if len(orders) != 1 || orders[0].ID != 1 || len(orders[0].OrderDetails) != 1 ||
			orders[0].OrderDetails[0].Price.String() != "100000.99" {
			t.Fatalf("ListOrders = %+v", orders)
		}
		// Extended: the order outlives its product, whose line is null.
		o, err = c.GetOrder(ctx, 1)
		if err != nil || len(o.OrderDetails) != 1 || o.OrderDetails[0].Product != nil {
			t.Fatalf("GetOrder after the product's deletion = %+v, %v; want a line with no product", o, err)
		}
		// PATCH and PUT.
		if err := c.CreateProduct(ctx, theOdyssey); err != nil {
			t.Fatal(err)
		}
		p, err = c.UpdateProduct(ctx, "the_odyssey", client.ProductPatch{Title: client.Ptr("Renamed"), InStock: client.Ptr[int32](40)})
		if err != nil || p.Title != "Renamed" || p.InStock != 40 {
			t.Fatalf("UpdateProduct = %+v, %v", p, err)
		}
		id, err = c.CreateOrder(ctx, "", lineOf("the_odyssey", 1))
		if err != nil {
			t.Fatal(err)
		}
		updated, err := c.UpdateOrder(ctx, id, client.OrderLineUpdate{ID: id, Price: client.Ptr(client.Price("9.99")), Quantity: client.Ptr[int32](3)})
		if err != nil || len(updated.OrderDetails) != 1 || updated.OrderDetails[0].Quantity != 3 || updated.OrderDetails[0].Price.String() != "9.99" {
			t.Fatalf("UpdateOrder = %+v, %v", updated, err)
		}
		if err := c.DeleteOrder(ctx, id); err != nil {
			t.Fatal(err)
		}
		if p, err := c.GetProduct(ctx, "the_odyssey"); err != nil || p.InStock != 40 {
			t.Fatalf("stock after the order's deletion: %+v, %v; want 40", p, err)
		}
		if err := c.Ready(ctx); err != nil {
			t.Fatalf("Ready: %v", err)
		}
	})
}

// expectCode checks that err is the *Error of an answer with status and
// code.
func expectCode(t *testing.T, what string, err error, status int, code client.Code) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) || !errors.Is(err, code) || e.Status != status || e.RequestID == "" || e.Message == "" {
		t.Errorf("%s: %#v; want a %d %s with a message and a request id", what, err, status, code)
	}
}

// TestClientErrorCodes: every code the server can be made to answer
// reaches the caller as an *Error matching its sentinel, through the
// client's calls or, for requests the client cannot send (not JSON, no
// such route), through CheckResponse.
func TestClientErrorCodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b)
		c := s.api(t)
		ctx := t.Context()
		if err := c.CreateProduct(ctx, theOdyssey); err != nil {
			t.Fatal(err)
		}
		bad := theOdyssey
		bad.ID = "a:b*"
		expectCode(t, "invalid id", c.CreateProduct(ctx, bad), 400, client.ErrValidation)
		_, err := c.ListProducts(client.ListProductsOptions{Limit: 1001}).NextPage(ctx)
		expectCode(t, "limit 1001", err, 400, client.ErrValidation)
		_, err = c.CreateOrder(ctx, "has space", lineOf("the_odyssey", 1))
		expectCode(t, "malformed Idempotency-Key", err, 400, client.ErrBadRequest)
		_, err = c.GetProduct(ctx, "nope")
		expectCode(t, "missing product", err, 404, client.ErrProductNotFound)
		expectCode(t, "delete missing product", c.DeleteProduct(ctx, "nope"), 404, client.ErrProductNotFound)
		_, err = c.CreateOrder(ctx, "", lineOf("ghost", 1))
		expectCode(t, "order of a missing product", err, 404, client.ErrProductNotFound)
		_, err = c.GetOrder(ctx, 999)
		expectCode(t, "missing order", err, 404, client.ErrOrderNotFound)
		expectCode(t, "delete missing order", c.DeleteOrder(ctx, 999), 404, client.ErrOrderNotFound)
		expectCode(t, "product exists", c.CreateProduct(ctx, theOdyssey), 409, client.ErrProductExists)
		_, err = c.CreateOrder(ctx, "", lineOf("the_odyssey", 11))
		expectCode(t, "out of stock", err, 409, client.ErrOutOfStock)
		huge := theOdyssey
		huge.ID, huge.Title = "huge", strings.Repeat("x", 2<<20)
		expectCode(t, "too large", c.CreateProduct(ctx, huge), 413, client.ErrPayloadTooLarge)
		key := client.NewIdempotencyKey()
		if _, err := c.CreateOrder(ctx, key, lineOf("the_odyssey", 1)); err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateOrder(ctx, key, lineOf("the_odyssey", 2))
		expectCode(t, "key reused", err, 422, client.ErrIdempotencyKeyReused)

		for _, r := range []struct {
			name, method, path, contentType, body string
			status                                int
			code                                  client.Code
		}{
			{"not JSON", "POST", "/products", "application/json", `{"id": `, 400, client.ErrBadRequest},
			{"no such route", "GET", "/airships", "", "", 404, client.ErrNotFound},
			{"method not allowed", "PUT", "/products", "application/json", "{}", 405, client.ErrMethodNotAllowed},
			{"not JSON's type", "POST", "/products", "text/plain", "{}", 415, client.ErrUnsupportedMediaType},
		} {
			req, err := http.NewRequestWithContext(ctx, r.method, s.url+r.path, strings.NewReader(r.body))
			if err != nil {
				t.Fatal(err)
			}
			if r.contentType != "" {
				req.Header.Set("Content-Type", r.contentType)
			}
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			expectCode(t, r.name, client.CheckResponse(resp), r.status, r.code)
			resp.Body.Close()
		}
		// Nothing refused changed anything: one order, stock 9.
		if p, err := c.GetProduct(ctx, "the_odyssey"); err != nil || p.InStock != 9 {
			t.Fatalf("after the refusals: %+v, %v; want in_stock 9", p, err)
		}
	})
}

// TestClientAPIKey: writes need the key, which WithAPIKey sends.
func TestClientAPIKey(t *testing.T) {
	const key = "key-one-0123456789abcdef"
	cfg := backends[1].config(t) // access control does not depend on the store
	cfg.APIKeys = []string{key}
	s := startWith(t, cfg)
	expectCode(t, "no key", s.api(t).CreateProduct(t.Context(), theOdyssey), 401, client.ErrUnauthorized)
	expectCode(t, "wrong key", s.api(t, client.WithAPIKey("key-two-0123456789abcdef")).CreateProduct(t.Context(), theOdyssey),
		401, client.ErrUnauthorized)
	c := s.api(t, client.WithAPIKey(key))
	if err := c.CreateProduct(t.Context(), theOdyssey); err != nil {
		t.Fatal(err)
	}
	if _, err := s.api(t).GetProduct(t.Context(), "the_odyssey"); err != nil {
		t.Fatalf("a read without a key: %v", err)
	}
	if err := c.DeleteProduct(t.Context(), "the_odyssey"); err != nil {
		t.Fatal(err)
	}
}

// TestClientPager follows the Link headers of both listings over several
// pages.
func TestClientPager(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b)
		c := s.api(t)
		ctx := t.Context()
		for i := range 7 {
			if err := c.CreateProduct(ctx, client.NewProduct{ID: fmt.Sprintf("p%d", i), Title: "P", InStock: 10}); err != nil {
				t.Fatal(err)
			}
		}
		pager := c.ListProducts(client.ListProductsOptions{Limit: 2})
		var sizes []int
		var ids []string
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(page))
			for _, p := range page {
				ids = append(ids, p.ID)
			}
		}
		slices.Sort(ids)
		if fmt.Sprint(sizes) != "[2 2 2 1]" || fmt.Sprint(ids) != "[p0 p1 p2 p3 p4 p5 p6]" {
			t.Fatalf("pages of %v with %v; want [2 2 2 1] with p0 to p6 once each", sizes, ids)
		}
		if _, err := pager.NextPage(ctx); !errors.Is(err, client.ErrNoMorePages) {
			t.Fatalf("NextPage after the last: %v", err)
		}

		for range 5 {
			if _, err := c.CreateOrder(ctx, "", lineOf("p0", 1)); err != nil {
				t.Fatal(err)
			}
		}
		var orders []int64
		for o, err := range c.ListOrders(client.ListOrdersOptions{Limit: 2}).All(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			orders = append(orders, o.ID)
		}
		if fmt.Sprint(orders) != "[1 2 3 4 5]" {
			t.Fatalf("orders %v; want [1 2 3 4 5]", orders)
		}
		orders = nil
		for o, err := range c.ListOrders(client.ListOrdersOptions{Limit: 2, After: 3}).All(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			orders = append(orders, o.ID)
		}
		if fmt.Sprint(orders) != "[4 5]" {
			t.Fatalf("orders after 3: %v; want [4 5]", orders)
		}
	})
}

// serveOn serves airship with cfg on ln until the test ends.
func serveOn(t *testing.T, cfg config.Config, ln net.Listener) {
	t.Helper()
	a, err := app.New(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("start airship: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		a.Close()
	})
}

// TestClientRetriesAfterConnectionRefused: a read sent before airship
// listens is retried until it does.
func TestClientRetriesAfterConnectionRefused(t *testing.T) {
	addr := testbackend.FreeAddr(t)
	var refusals atomic.Int32
	retry := client.Retry{MaxAttempts: 10, InitialInterval: 10 * time.Millisecond, MaxInterval: 100 * time.Millisecond,
		OnRetry: func(err error, _ time.Duration) {
			if refusals.Add(1) > 1 {
				return
			}
			var op *net.OpError
			if !errors.As(err, &op) || op.Op != "dial" {
				t.Errorf("first retry after %v, want connection refused", err)
			}
			ln, err := net.Listen("tcp", addr) // airship comes up
			if err != nil {
				t.Errorf("listen on %s: %v", addr, err)
				return
			}
			serveOn(t, backends[1].config(t), ln)
		}}
	c, err := client.New("http://"+addr, client.WithRetry(retry),
		client.WithHTTPClient(&http.Client{Transport: apitest.NewTransport(t, nil)}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(t.Context()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if refusals.Load() != 1 {
		t.Fatalf("%d retries, want 1", refusals.Load())
	}
}

// TestClientRetriesThroughAnOutage: a read that gets 503 while Redis is
// down is retried, and succeeds once Redis is back; an order without an
// Idempotency-Key is not retried, one with a key is.
func TestClientRetriesThroughAnOutage(t *testing.T) {
	cfg, _, rdb := outageConfig(t)
	s := startWith(t, cfg)
	ctx := t.Context()
	var retries atomic.Int32
	var back func()
	retry := client.Retry{MaxAttempts: 20, InitialInterval: 50 * time.Millisecond, MaxInterval: 500 * time.Millisecond,
		OnRetry: func(err error, _ time.Duration) {
			if !errors.Is(err, client.ErrServiceUnavailable) {
				t.Errorf("retry after %v, want SERVICE_UNAVAILABLE", err)
			}
			if retries.Add(1) == 1 && back != nil {
				back()
			}
		}}
	c := s.api(t, client.WithRetry(retry))
	if err := c.CreateProduct(ctx, theOdyssey); err != nil {
		t.Fatal(err)
	}

	rdb.Stop()
	back = rdb.Start
	p, err := c.GetProduct(ctx, "the_odyssey")
	if err != nil || p.ID != "the_odyssey" || retries.Load() == 0 {
		t.Fatalf("GetProduct through an outage: %+v, %v after %d retries", p, err, retries.Load())
	}

	rdb.Stop()
	retries.Store(0)
	_, err = c.CreateOrder(ctx, "", lineOf("the_odyssey", 1))
	expectCode(t, "unkeyed order during the outage", err, 503, client.ErrServiceUnavailable)
	if n := retries.Load(); n != 0 {
		t.Fatalf("an order without an Idempotency-Key was retried %d times", n)
	}
	id, err := c.CreateOrder(ctx, client.NewIdempotencyKey(), lineOf("the_odyssey", 1))
	if err != nil || retries.Load() == 0 {
		t.Fatalf("keyed order through an outage: %d, %v after %d retries", id, err, retries.Load())
	}
	if p, err := c.GetProduct(ctx, "the_odyssey"); err != nil || p.InStock != 9 {
		t.Fatalf("after the outage: %+v, %v; want in_stock 9 (one order)", p, err)
	}
}

// TestClientHonoursRetryAfter: a 503 with Retry-After (from a proxy in
// front of airship) is retried after the wait it asks for.
func TestClientHonoursRetryAfter(t *testing.T) {
	s := start(t, backends[1])
	target, _ := url.Parse(s.url)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var first atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error": "SERVICE_UNAVAILABLE", "message": "draining"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	var waits []time.Duration
	c, err := client.New(front.URL, client.WithRetry(client.Retry{MaxAttempts: 3, InitialInterval: time.Millisecond,
		MaxInterval: time.Millisecond, OnRetry: func(_ error, d time.Duration) { waits = append(waits, d) }}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.api(t).CreateProduct(t.Context(), theOdyssey); err != nil {
		t.Fatal(err)
	}
	if p, err := c.GetProduct(t.Context(), "the_odyssey"); err != nil || p.ID != "the_odyssey" {
		t.Fatalf("GetProduct: %+v, %v", p, err)
	}
	if fmt.Sprint(waits) != "[1s]" {
		t.Fatalf("waits %v, want [1s] (the Retry-After)", waits)
	}
}
