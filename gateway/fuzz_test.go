package gateway

// Fuzz targets for hostile input: request decoding and validation (the
// FuzzDecode* targets) and the whole router (FuzzRouter). Their seed corpora
// live in testdata/fuzz/<FuzzName>/ and run with every `go test`; fuzz one
// with, for example:
//
//	go test ./gateway -run '^$' -fuzz '^FuzzDecodeNewOrder$' -fuzztime 60s

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// fuzzBodyLimit is small, so that the fuzzer reaches PAYLOAD_TOO_LARGE.
const fuzzBodyLimit = 4 << 10

// maxMessage bounds an error message, whatever the request.
const maxMessage = 4 << 10

// contractStatus is the status of each error code of the contract.
var contractStatus = map[string]int{
	CodeBadRequest:         http.StatusBadRequest,
	CodeValidation:         http.StatusBadRequest,
	CodeProductNotFound:    http.StatusNotFound,
	CodeOrderNotFound:      http.StatusNotFound,
	CodeNotFound:           http.StatusNotFound,
	CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	CodeProductExists:      http.StatusConflict,
	CodeOutOfStock:         http.StatusConflict,
	CodePayloadTooLarge:    http.StatusRequestEntityTooLarge,
	CodeUnsupportedMedia:   http.StatusUnsupportedMediaType,
	CodeServiceUnavailable: http.StatusServiceUnavailable,
	CodeUnexpected:         http.StatusInternalServerError,
	// Extended: Idempotency-Key and access control.
	"IDEMPOTENCY_KEY_REUSED": http.StatusUnprocessableEntity,
	"IDEMPOTENCY_KEY_IN_USE": http.StatusConflict,
	"UNAUTHORIZED":           http.StatusUnauthorized,
}

// bodyContext returns an echo context for a POST of body.
func bodyContext(body []byte, contentType string) echo.Context {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set(echo.HeaderContentType, contentType)
	}
	return echo.New().NewContext(req, httptest.NewRecorder())
}

// decodeBody runs body through readJSON and decode, twice, and checks that
// both runs agree and that any error is a contract refusal.
func decodeBody[T any](t *testing.T, body []byte, decode func(object) (T, error)) (T, bool) {
	t.Helper()
	run := func() (T, error) {
		var zero T
		o, err := readJSON(bodyContext(body, echo.MIMEApplicationJSON), fuzzBodyLimit)
		if err != nil {
			return zero, err
		}
		return decode(o)
	}
	v1, err1 := run()
	v2, err2 := run()
	if fmt.Sprint(err1) != fmt.Sprint(err2) || !reflect.DeepEqual(v1, v2) {
		t.Fatalf("decoding %q twice differs:\n  %v %v\n  %v %v", body, v1, err1, v2, err2)
	}
	if err1 != nil {
		checkRefusal(t, body, err1)
		return v1, false
	}
	return v1, true
}

// checkRefusal checks that err is a 400 or 413 with a contract code and a
// bounded, valid message.
func checkRefusal(t *testing.T, body []byte, err error) {
	t.Helper()
	var api *apiError
	if !errors.As(err, &api) {
		t.Fatalf("decoding %q: %T %v; want an *apiError", body, err, err)
	}
	switch {
	case api.status == http.StatusBadRequest && (api.body.Error == CodeBadRequest || api.body.Error == CodeValidation):
	case api.status == http.StatusRequestEntityTooLarge && api.body.Error == CodePayloadTooLarge:
	default:
		t.Fatalf("decoding %q: %d %s; want 400 BAD_REQUEST/VALIDATION_ERROR or 413", body, api.status, api.body.Error)
	}
	if m := api.body.Message; m == "" || len(m) > maxMessage || !utf8.ValidString(m) {
		t.Fatalf("decoding %q: message of %d bytes %q", body, len(m), truncateForLog(m))
	}
}

func truncateForLog(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// reencode decodes the JSON of v through readJSON and decode.
func reencode[T any](t *testing.T, v any, decode func(object) (T, error)) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	o, err := readJSON(bodyContext(b, echo.MIMEApplicationJSON), 1<<20)
	if err != nil {
		t.Fatalf("re-read %s: %v", b, err)
	}
	got, err := decode(o)
	if err != nil {
		t.Fatalf("decoded value %s refused: %v", b, err)
	}
	return got
}

// Checks of decoded values: what reaches a backend is valid by construction.

func checkCount(t *testing.T, what string, n, lowest int64) {
	t.Helper()
	if n < lowest || n > maxCount {
		t.Fatalf("%s = %d accepted; want %d to %d", what, n, lowest, maxCount)
	}
}

func checkTitle(t *testing.T, title string) {
	t.Helper()
	if strings.TrimSpace(title) == "" || utf8.RuneCountInString(title) > maxTitleLength || !utf8.ValidString(title) {
		t.Fatalf("title %q accepted", title)
	}
}

var priceLimit = decimal.New(1, 16)

func checkPrice(t *testing.T, what string, p decimal.Decimal) {
	t.Helper()
	if p.IsNegative() || !p.Equal(p.Truncate(2)) || p.GreaterThanOrEqual(priceLimit) {
		t.Fatalf("%s = %s accepted", what, p)
	}
}

func checkProduct(t *testing.T, p products.Product) {
	t.Helper()
	if !products.ValidID(p.ID) {
		t.Fatalf("product id %q accepted", p.ID)
	}
	checkTitle(t, p.Title)
	checkCount(t, "passenger_capacity", p.PassengerCapacity, 0)
	checkCount(t, "maximum_speed", p.MaximumSpeed, 0)
	checkCount(t, "in_stock", p.InStock, 0)
}

func checkPatch(t *testing.T, p products.Patch) {
	t.Helper()
	if p.Title == nil && p.PassengerCapacity == nil && p.MaximumSpeed == nil && p.InStock == nil {
		t.Fatal("empty patch accepted")
	}
	if p.Title != nil {
		checkTitle(t, *p.Title)
	}
	for name, n := range map[string]*int64{"passenger_capacity": p.PassengerCapacity, "maximum_speed": p.MaximumSpeed, "in_stock": p.InStock} {
		if n != nil {
			checkCount(t, name, *n, 0)
		}
	}
}

func checkNewLines(t *testing.T, lines []orders.NewLine) {
	t.Helper()
	if len(lines) < 1 || len(lines) > orders.MaxLines {
		t.Fatalf("%d lines accepted", len(lines))
	}
	for i, l := range lines {
		if !products.ValidID(l.ProductID) {
			t.Fatalf("line %d: product id %q accepted", i, l.ProductID)
		}
		checkPrice(t, fmt.Sprintf("line %d price", i), l.Price)
		checkCount(t, fmt.Sprintf("line %d quantity", i), l.Quantity, 1)
	}
}

func checkLineUpdates(t *testing.T, updates []orders.LineUpdate) {
	t.Helper()
	if len(updates) < 1 || len(updates) > orders.MaxLines {
		t.Fatalf("%d line updates accepted", len(updates))
	}
	seen := map[int64]bool{}
	for i, u := range updates {
		checkCount(t, fmt.Sprintf("update %d id", i), u.ID, 1)
		if seen[u.ID] {
			t.Fatalf("line %d updated twice", u.ID)
		}
		seen[u.ID] = true
		if u.Price == nil && u.Quantity == nil {
			t.Fatalf("update %d changes nothing", i)
		}
		if u.Price != nil {
			checkPrice(t, fmt.Sprintf("update %d price", i), *u.Price)
		}
		if u.Quantity != nil {
			checkCount(t, fmt.Sprintf("update %d quantity", i), *u.Quantity, 1)
		}
	}
}

func FuzzDecodeProduct(f *testing.F) {
	f.Add([]byte(`{"id": "the_odyssey", "title": "The Odyssey", "passenger_capacity": 101, "maximum_speed": 5, "in_stock": 10}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, ok := decodeBody(t, body, decodeProduct)
		if !ok {
			return
		}
		checkProduct(t, p)
		if again := reencode(t, p, decodeProduct); again != p {
			t.Fatalf("round trip %+v → %+v", p, again)
		}
	})
}

func FuzzDecodePatch(f *testing.F) {
	f.Add([]byte(`{"title": "Renamed", "in_stock": 40}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, ok := decodeBody(t, body, decodePatch)
		if !ok {
			return
		}
		checkPatch(t, p)
		doc := map[string]any{}
		if p.Title != nil {
			doc["title"] = *p.Title
		}
		for name, n := range map[string]*int64{"passenger_capacity": p.PassengerCapacity, "maximum_speed": p.MaximumSpeed, "in_stock": p.InStock} {
			if n != nil {
				doc[name] = *n
			}
		}
		if again := reencode(t, doc, decodePatch); !reflect.DeepEqual(again, p) {
			t.Fatalf("round trip %+v → %+v", p, again)
		}
	})
}

func FuzzDecodeNewOrder(f *testing.F) {
	f.Add([]byte(`{"order_details": [{"product_id": "the_odyssey", "price": "100000.99", "quantity": 1}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		lines, ok := decodeBody(t, body, decodeNewOrder)
		if !ok {
			return
		}
		checkNewLines(t, lines)
		doc := make([]map[string]any, len(lines))
		for i, l := range lines {
			doc[i] = map[string]any{"product_id": l.ProductID, "price": l.Price.String(), "quantity": l.Quantity}
		}
		again := reencode(t, map[string]any{"order_details": doc}, decodeNewOrder)
		for i := range lines {
			if again[i].ProductID != lines[i].ProductID || !again[i].Price.Equal(lines[i].Price) || again[i].Quantity != lines[i].Quantity {
				t.Fatalf("round trip line %d: %+v → %+v", i, lines[i], again[i])
			}
		}
	})
}

func FuzzDecodeOrderUpdate(f *testing.F) {
	f.Add([]byte(`{"order_details": [{"id": 1, "price": "9.99", "quantity": 2}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		updates, ok := decodeBody(t, body, decodeOrderUpdate)
		if !ok {
			return
		}
		checkLineUpdates(t, updates)
	})
}

// The fakes behind FuzzRouter. Their mutating methods always succeed, so
// that a refused request (status ≥ 400) is one the gateway refused itself,
// and must not have called any of them. Every call checks that the gateway
// passed on valid values only.

type fakeBackends struct {
	mu        sync.Mutex
	t         *testing.T
	mutations []string
}

func (b *fakeBackends) mutate(what string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mutations = append(b.mutations, what)
}

func (b *fakeBackends) begin(t *testing.T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.t, b.mutations = t, nil
}

func (b *fakeBackends) calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.mutations...)
}

func (b *fakeBackends) errorf(format string, args ...any) {
	b.mu.Lock()
	t := b.t
	b.mu.Unlock()
	t.Errorf(format, args...)
}

// fakeProducts knows one product, the_odyssey.
type fakeProducts struct {
	Products // any method added later panics: the fuzzer then reports a 500
	b        *fakeBackends
}

var odyssey = products.Product{ID: "the_odyssey", Title: "The Odyssey", PassengerCapacity: 101, MaximumSpeed: 5, InStock: 10}

func (p fakeProducts) checkID(id string) {
	if !products.ValidID(id) {
		p.b.errorf("products backend got invalid id %q", id)
	}
}

func (p fakeProducts) Get(_ context.Context, id string) (products.Product, error) {
	p.checkID(id)
	if id != odyssey.ID {
		return products.Product{}, &products.NotFoundError{ID: id}
	}
	return odyssey, nil
}

func (p fakeProducts) Exists(_ context.Context, id string) (bool, error) {
	p.checkID(id)
	return id == odyssey.ID, nil
}

func (p fakeProducts) GetMany(_ context.Context, ids []string) (map[string]products.Product, error) {
	out := map[string]products.Product{}
	for _, id := range ids {
		p.checkID(id)
		if id == odyssey.ID {
			out[id] = odyssey
		}
	}
	return out, nil
}

func (p fakeProducts) Create(_ context.Context, prod products.Product) error {
	p.b.mutate("products.Create")
	p.checkID(prod.ID)
	return nil
}

func (p fakeProducts) Update(_ context.Context, id string, patch products.Patch) (products.Product, error) {
	p.b.mutate("products.Update")
	p.checkID(id)
	return odyssey, nil
}

func (p fakeProducts) Delete(_ context.Context, id string) error {
	p.b.mutate("products.Delete")
	p.checkID(id)
	return nil
}

func (p fakeProducts) List(_ context.Context, cursor string, limit int) (products.Page, error) {
	if limit < 1 || limit > maxLimit {
		p.b.errorf("products backend got limit %d", limit)
	}
	switch cursor {
	case "":
		return products.Page{Products: []products.Product{odyssey}, Next: "next"}, nil
	case "next":
		return products.Page{Products: []products.Product{}}, nil
	}
	return products.Page{}, products.ErrBadCursor
}

// fakeOrders knows orders 1 to 3, of one line each.
type fakeOrders struct {
	Orders
	b *fakeBackends
}

func fakeOrder(id int64) orders.Order {
	return orders.Order{ID: id, Lines: []orders.Line{{ID: id, ProductID: odyssey.ID, Price: decimal.New(500, -2), Quantity: 1}}}
}

func (o fakeOrders) checkID(id int64) {
	if id < 1 || id > maxCount {
		o.b.errorf("orders backend got id %d", id)
	}
}

func (o fakeOrders) checkLines(lines []orders.NewLine) {
	if len(lines) < 1 || len(lines) > orders.MaxLines {
		o.b.errorf("orders backend got %d lines", len(lines))
	}
	for _, l := range lines {
		if !products.ValidID(l.ProductID) || l.Quantity < 1 || l.Quantity > maxCount || l.Price.IsNegative() {
			o.b.errorf("orders backend got line %+v", l)
		}
	}
}

func (o fakeOrders) Place(_ context.Context, lines []orders.NewLine) (orders.Order, error) {
	o.b.mutate("orders.Place")
	o.checkLines(lines)
	return fakeOrder(4), nil
}

func (o fakeOrders) PlaceOnce(_ context.Context, key string, lines []orders.NewLine) (orders.Placed, error) {
	o.b.mutate("orders.PlaceOnce")
	o.checkLines(lines)
	if orders.KeyProblem(key) != "" {
		o.b.errorf("orders backend got idempotency key %q", key)
	}
	return orders.Placed{OrderID: 4}, nil
}

func (o fakeOrders) Get(_ context.Context, id int64) (orders.Order, error) {
	o.checkID(id)
	if id > 3 {
		return orders.Order{}, &orders.NotFoundError{ID: id}
	}
	return fakeOrder(id), nil
}

func (o fakeOrders) List(_ context.Context, after int64, limit int) ([]orders.Order, error) {
	if after < 0 || limit < 2 || limit > maxLimit+1 {
		o.b.errorf("orders backend got after %d, limit %d", after, limit)
	}
	var out []orders.Order
	for id := after + 1; id <= 3 && len(out) < limit; id++ {
		out = append(out, fakeOrder(id))
	}
	return out, nil
}

func (o fakeOrders) Update(_ context.Context, id int64, updates []orders.LineUpdate) (orders.Order, error) {
	o.b.mutate("orders.Update")
	o.checkID(id)
	return fakeOrder(id), nil
}

func (o fakeOrders) Delete(_ context.Context, id int64) error {
	o.b.mutate("orders.Delete")
	o.checkID(id)
	return nil
}

// fuzzRouter is the real router on the fakes, built once per process.
var fuzzRouter = sync.OnceValues(func() (*fakeBackends, http.Handler) {
	b := &fakeBackends{}
	ready := func(context.Context) error { return nil }
	cfg := Config{ImageRoot: "http://img.example", BodyLimit: fuzzBodyLimit, RequestTimeout: 5 * time.Second}
	h := New(fakeProducts{b: b}, fakeOrders{b: b}, ready, cfg, slog.New(slog.DiscardHandler))
	return b, h
})

// FuzzRouter sends arbitrary requests through the real router on in-memory
// fakes: never a 5xx or a panic, every error body is exactly the contract's
// {"error", "message"}, and a refused request changes nothing.
func FuzzRouter(f *testing.F) {
	f.Add("GET", "/products/the_odyssey", "", []byte(nil))
	f.Add("POST", "/orders", "application/json", []byte(`{"order_details": [{"product_id": "the_odyssey", "price": "1", "quantity": 1}]}`))
	f.Fuzz(func(t *testing.T, method, target, contentType string, body []byte) {
		// Build the request as the server would read it off the wire; what
		// net/http cannot parse never reaches the handler.
		if strings.ContainsAny(contentType, "\r\n") {
			return
		}
		var raw bytes.Buffer
		fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\nHost: airship.test\r\n", method, target)
		if contentType != "" {
			fmt.Fprintf(&raw, "Content-Type: %s\r\n", contentType)
		}
		fmt.Fprintf(&raw, "Content-Length: %d\r\n\r\n", len(body))
		raw.Write(body)
		req, err := http.ReadRequest(bufio.NewReader(&raw))
		if err != nil || req.Method != method {
			return
		}
		req.RemoteAddr = "192.0.2.1:4321"

		b, h := fuzzRouter()
		b.begin(t)
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.ServeHTTP(rec, req)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s %q: no answer in 10 s", method, target)
		}
		what := fmt.Sprintf("%s %q (%q, %q) → %d %s", method, target, contentType, truncateForLog(string(body)),
			rec.Code, truncateForLog(rec.Body.String()))
		if rec.Code >= 500 {
			t.Fatalf("server error: %s", what)
		}
		if rec.Code < 400 {
			return
		}
		if calls := b.calls(); len(calls) > 0 {
			t.Fatalf("refused request called %v: %s", calls, what)
		}
		if method == http.MethodHead {
			return
		}
		checkErrorBody(t, what, rec.Code, rec.Header(), rec.Body.Bytes())
	})
}

// checkErrorBody checks that an error response is exactly the contract's
// {"error": CODE, "message": "…"} with the code's status.
func checkErrorBody(t *testing.T, what string, status int, h http.Header, body []byte) {
	t.Helper()
	if ct := h.Get(echo.HeaderContentType); !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		t.Fatalf("error Content-Type %q: %s", ct, what)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || len(doc) != 2 {
		t.Fatalf("error body is not {error, message}: %s", what)
	}
	var code, msg string
	if json.Unmarshal(doc["error"], &code) != nil || json.Unmarshal(doc["message"], &msg) != nil {
		t.Fatalf("error body is not {error, message} strings: %s", what)
	}
	if want, ok := contractStatus[code]; !ok || want != status {
		t.Fatalf("code %s with status %d: %s", code, status, what)
	}
	if msg == "" {
		t.Fatalf("empty message: %s", what)
	}
}

// Compile-time checks that the fakes are what the gateway calls.
var (
	_ Products = fakeProducts{}
	_ Orders   = fakeOrders{}
)
