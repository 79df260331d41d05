package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/airshipltd/airship/gateway"
	"github.com/airshipltd/airship/internal/reqid"
	"github.com/airshipltd/airship/products"
)

// stalledProducts answers Get only when its context ends, with the
// context's error; any other method panics (it is nil).
type stalledProducts struct{ gateway.Products }

func (stalledProducts) Get(ctx context.Context, _ string) (products.Product, error) {
	<-ctx.Done()
	return products.Product{}, ctx.Err()
}

func errorBody(t *testing.T, rec *httptest.ResponseRecorder) gateway.ErrorBody {
	t.Helper()
	var b gateway.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("status %d, body %q: %v", rec.Code, rec.Body.String(), err)
	}
	return b
}

// What every response carries, whatever its route and outcome: a request
// id (the client's when it is a valid one), nosniff, and for an error the
// contract's body; a handler that panics answers 500 UNEXPECTED_ERROR
// naming the request id, a backend that outlasts request_timeout 503, a
// write without a key 401; and the access log says how long each took in
// milliseconds.
func TestEveryResponse(t *testing.T) {
	ready := func(context.Context) error { return nil }
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	g := gateway.New(stalledProducts{}, nil, ready, gateway.Config{
		RequestTimeout: 50 * time.Millisecond, AccessLogEvery: 1, BodyLimit: 1 << 10,
		APIKeys: []string{"a-key-long-enough-to-be-accepted-0123456789"},
	}, log)
	for _, c := range []struct {
		name, method, path, id string
		status                 int
		code                   string
	}{
		{"success", http.MethodGet, "/healthz", "", http.StatusOK, ""},
		{"client id", http.MethodGet, "/healthz", "client-id.1", http.StatusOK, ""},
		{"invalid client id", http.MethodGet, "/healthz", "bad id!", http.StatusOK, ""},
		{"no route", http.MethodGet, "/no/such/thing", "", http.StatusNotFound, gateway.CodeNotFound},
		{"timeout", http.MethodGet, "/products/p1", "", http.StatusServiceUnavailable, gateway.CodeServiceUnavailable},
		{"panic", http.MethodGet, "/orders/1", "", http.StatusInternalServerError, gateway.CodeUnexpected},
		{"no key", http.MethodDelete, "/products/p1", "", http.StatusUnauthorized, gateway.CodeUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(t.Context(), c.method, c.path, nil)
			if c.id != "" {
				req.Header.Set(reqid.Header, c.id)
			}
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, req)
			id := rec.Header().Get(reqid.Header)
			switch {
			case !reqid.Valid(id):
				t.Errorf("request id %q", id)
			case reqid.Valid(c.id) && id != c.id:
				t.Errorf("request id %q, want the client's %q", id, c.id)
			case c.id != "" && !reqid.Valid(c.id) && id == c.id:
				t.Errorf("request id %q echoed", id)
			}
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body.String())
			}
			if c.code != "" {
				b := errorBody(t, rec)
				if b.Error != c.code {
					t.Errorf("error %q, want %q", b.Error, c.code)
				}
				if c.status == http.StatusInternalServerError && !strings.Contains(b.Message, id) {
					t.Errorf("message %q does not name the request id %s", b.Message, id)
				}
			}
		})
	}
	// Every request but the 503, which the outage log reports.
	lines := accessLines(&buf)
	if len(lines) != 6 {
		t.Fatalf("%d access lines, want 6:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		ms, ok := l["latency_ms"].(float64)
		if !ok || ms < 0 || l["latency"] != nil {
			t.Errorf("access line without latency_ms in milliseconds: %v", l)
		}
	}
}
