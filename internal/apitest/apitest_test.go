package apitest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/airshipltd/airship/internal/apitest"
)

// recorder is a testing.TB that keeps the errors reported to it.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.TB.Fatalf(format, args...)
}

// fake answers each request with the canned status, headers and body.
type fake struct {
	status int
	header map[string]string
	body   string
}

func (f fake) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	for k, v := range f.header {
		w.Header().Set(k, v)
	}
	if f.body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(f.status)
	_, _ = io.WriteString(w, f.body)
}

const (
	product    = `{"id":"the_odyssey","title":"The Odyssey","passenger_capacity":101,"maximum_speed":5,"in_stock":10}`
	newProduct = product
	newOrder   = `{"order_details":[{"product_id":"the_odyssey","price":"100000.99","quantity":1}]}`
)

func TestTransport(t *testing.T) {
	for _, tc := range []struct {
		name         string
		method, path string
		reqBody      string
		reqHeader    map[string]string
		resp         fake
		wantError    string // "" for none
	}{
		{
			name: "product as documented", method: "GET", path: "/products/the_odyssey",
			resp: fake{status: 200, body: product},
		},
		{
			name: "product missing a field", method: "GET", path: "/products/the_odyssey",
			resp:      fake{status: 200, body: `{"id":"the_odyssey","title":"The Odyssey","passenger_capacity":101,"maximum_speed":5}`},
			wantError: "in_stock",
		},
		{
			name: "product with an extra field", method: "GET", path: "/products/the_odyssey",
			resp:      fake{status: 200, body: strings.Replace(product, `}`, `,"colour":"red"}`, 1)},
			wantError: "colour",
		},
		{
			name: "integer field as a string", method: "GET", path: "/products/the_odyssey",
			resp:      fake{status: 200, body: strings.Replace(product, `"in_stock":10`, `"in_stock":"10"`, 1)},
			wantError: "in_stock",
		},
		{
			name: "undocumented status", method: "GET", path: "/products/the_odyssey",
			resp:      fake{status: http.StatusTeapot, body: `{"error":"TEAPOT","message":"no"}`},
			wantError: "418",
		},
		{
			name: "error code not documented for the operation", method: "GET", path: "/products/the_odyssey",
			resp:      fake{status: 404, body: `{"error":"ORDER_NOT_FOUND","message":"Order ID 1 does not exist"}`},
			wantError: "ORDER_NOT_FOUND",
		},
		{
			name: "error body with a stack trace", method: "GET", path: "/products/the_odyssey",
			resp:      fake{status: 500, body: `{"error":"UNEXPECTED_ERROR","message":"unexpected error","stack":"main.go:1"}`},
			wantError: "stack",
		},
		{
			name: "documented error", method: "GET", path: "/products/nope",
			resp: fake{status: 404, body: `{"error":"PRODUCT_NOT_FOUND","message":"Product ID nope does not exist"}`},
		},
		{
			name: "create product", method: "POST", path: "/products", reqBody: newProduct,
			resp: fake{status: 200, body: `{"id":"the_odyssey"}`},
		},
		{
			name: "invalid request refused", method: "POST", path: "/products", reqBody: `{"id":"the_odyssey"}`,
			resp: fake{status: 400, body: `{"error":"VALIDATION_ERROR","message":"title: is required"}`},
		},
		{
			name: "invalid request accepted", method: "POST", path: "/products", reqBody: `{"id":"the_odyssey"}`,
			resp:      fake{status: 200, body: `{"id":"the_odyssey"}`},
			wantError: "rejects the request",
		},
		{
			name: "order id is an integer", method: "POST", path: "/orders", reqBody: newOrder,
			reqHeader: map[string]string{"Idempotency-Key": "k1", "Authorization": "Bearer secret"},
			resp:      fake{status: 200, body: `{"id":"3"}`},
			wantError: "id",
		},
		{
			name: "idempotency key reused", method: "POST", path: "/orders", reqBody: newOrder,
			reqHeader: map[string]string{"Idempotency-Key": "k1"},
			resp:      fake{status: 422, body: `{"error":"IDEMPOTENCY_KEY_REUSED","message":"different body"}`},
		},
		{
			name: "enriched order with a deleted product", method: "GET", path: "/orders/3",
			resp: fake{status: 200, body: `{"id":3,"order_details":[{"id":3,"product_id":"the_odyssey","price":"100000.99","quantity":1,` +
				`"image":"http://www.example.com/airship/images/the_odyssey.jpg","product":null}]}`},
		},
		{
			name: "price as a number", method: "GET", path: "/orders/3",
			resp: fake{status: 200, body: `{"id":3,"order_details":[{"id":3,"product_id":"the_odyssey","price":100000.99,"quantity":1,` +
				`"image":"http://www.example.com/airship/images/the_odyssey.jpg","product":` + product + `}]}`},
			wantError: "price",
		},
		{
			name: "listed order without image", method: "GET", path: "/orders?limit=1",
			resp: fake{status: 200, header: map[string]string{"Link": `</orders?after=3&limit=1>; rel="next"`},
				body: `[{"id":3,"order_details":[{"id":3,"product_id":"the_odyssey","price":"5.00","quantity":1}]}]`},
		},
		{
			name: "listed order with image", method: "GET", path: "/orders",
			resp: fake{status: 200, body: `[{"id":3,"order_details":[{"id":3,"product_id":"the_odyssey","price":"5.00","quantity":1,` +
				`"image":"http://www.example.com/airship/images/the_odyssey.jpg"}]}]`},
			wantError: "image",
		},
		{
			name: "delete", method: "DELETE", path: "/orders/3",
			resp: fake{status: 204},
		},
		{
			name: "no such route", method: "GET", path: "/nowhere",
			resp: fake{status: 404, body: `{"error":"NOT_FOUND","message":"no such route"}`},
		},
		{
			name: "no such method", method: "PUT", path: "/products/the_odyssey", reqBody: "{}",
			resp: fake{status: 405, body: `{"error":"METHOD_NOT_ALLOWED","message":"method not allowed on this route"}`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.resp)
			defer srv.Close()
			rec := &recorder{TB: t}
			client := &http.Client{Transport: apitest.NewTransport(rec, nil)}

			var body io.Reader
			if tc.reqBody != "" {
				body = strings.NewReader(tc.reqBody)
			}
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.reqBody != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			for k, v := range tc.reqHeader {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(got) != tc.resp.body {
				t.Errorf("the transport changed the response body: got %q, want %q", got, tc.resp.body)
			}

			for _, e := range rec.errors {
				t.Log(e)
			}
			switch {
			case tc.wantError == "" && len(rec.errors) > 0:
				t.Errorf("unexpected drift reported:\n%s", strings.Join(rec.errors, "\n"))
			case tc.wantError != "" && len(rec.errors) == 0:
				t.Errorf("drift not reported; want an error naming %q", tc.wantError)
			case tc.wantError != "" && !strings.Contains(strings.Join(rec.errors, "\n"), tc.wantError):
				t.Errorf("drift reported without naming %q:\n%s", tc.wantError, strings.Join(rec.errors, "\n"))
			}
		})
	}
}

// TestTransportSendsBody checks that the request reaches the server whole.
func TestTransportSendsBody(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"the_odyssey"}`)
	}))
	defer srv.Close()
	rec := &recorder{TB: t}
	client := &http.Client{Transport: apitest.NewTransport(rec, nil)}
	resp, err := client.Post(srv.URL+"/products", "application/json", strings.NewReader(newProduct))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != newProduct {
		t.Errorf("server got body %q, want %q", got, newProduct)
	}
	if len(rec.errors) > 0 {
		t.Errorf("unexpected drift reported:\n%s", strings.Join(rec.errors, "\n"))
	}
}
