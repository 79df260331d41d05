// Package client is the Go client of the airship shop API.
//
// Its requests and documents are generated from the API's OpenAPI
// description (gateway/apidocs/openapi.yaml) by oapi-codegen; this package
// adds what the contract asks of a caller:
//
//   - every error answer as an [*Error] with the status, the contract's
//     code, the message and the request id; errors.Is matches it against
//     the code's sentinel ([ErrProductNotFound], [ErrOutOfStock], …);
//   - Idempotency-Key on order creation ([NewIdempotencyKey]);
//   - retries with exponential backoff and jitter after a 503 or a network
//     error, only where repeating a request is safe (reads, and POST
//     /orders with an Idempotency-Key), honouring Retry-After and bounded
//     by the context ([Retry]);
//   - pagers that follow the Link rel="next" header of GET /products and
//     GET /orders ([Pager]);
//   - bearer API keys for servers that require them ([WithAPIKey]).
//
// Money is [decimal.Decimal], sent and read as a JSON string such as
// "100000.99", never a float.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/client/internal/gen"
)

// The API's documents. Prices are [decimal.Decimal].
type (
	// Product is a product as the API answers it: ID, Title,
	// PassengerCapacity, MaximumSpeed and InStock.
	Product = gen.Product
	// NewProduct is the body of CreateProduct: all five fields.
	NewProduct = gen.NewProduct
	// ProductPatch sets the fields that are not nil (at least one); [Ptr]
	// makes the pointers.
	ProductPatch = gen.ProductPatch
	// NewOrderLine is a line of an order to place: ProductID, Price and
	// Quantity.
	NewOrderLine = gen.NewOrderLine
	// OrderLineUpdate names a line of an order by ID and sets its Price,
	// Quantity or both (the fields that are not nil).
	OrderLineUpdate = gen.OrderLineUpdate
	// Order is an order as UpdateOrder and ListOrders answer it.
	Order = gen.Order
	// OrderLine is a line of an Order.
	OrderLine = gen.OrderLine
	// EnrichedOrder is an order as GetOrder answers it: each line with its
	// image URL and its product's current document.
	EnrichedOrder = gen.EnrichedOrder
	// EnrichedOrderLine is a line of an EnrichedOrder; Product is nil when
	// the product was deleted after the order was placed.
	EnrichedOrderLine = gen.EnrichedOrderLine
)

// Ptr returns a pointer to v, for the optional fields of ProductPatch and
// OrderLineUpdate.
func Ptr[T any](v T) *T { return &v }

// Price parses a decimal such as "100000.99" for a NewOrderLine or an
// OrderLineUpdate; it panics if s is not a decimal (for constants).
func Price(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// Client calls one airship API. It is safe for concurrent use.
type Client struct {
	gen   *gen.Client
	base  *url.URL
	doer  gen.HttpRequestDoer
	retry Retry
	auth  string // "Bearer <key>", or empty
}

// Option configures a Client.
type Option func(*Client) error

// WithHTTPClient sends the requests with hc instead of a plain
// *http.Client on http.DefaultTransport.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return fmt.Errorf("client: nil *http.Client")
		}
		c.doer = hc
		return nil
	}
}

// WithAPIKey sends key as a bearer token (Authorization: Bearer <key>),
// which a server started with AIRSHIP_API_KEYS requires for every change.
func WithAPIKey(key string) Option {
	return func(c *Client) error {
		if key == "" || strings.ContainsAny(key, "\r\n") {
			return fmt.Errorf("client: API key must be a non-empty single line")
		}
		c.auth = "Bearer " + key
		return nil
	}
}

// New returns a client of the API at baseURL, such as
// http://localhost:8000.
func New(baseURL string, opts ...Option) (*Client, error) {
	base, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http:// or https:// and a host", baseURL)
	}
	c := &Client{base: base, retry: DefaultRetry, doer: &http.Client{}}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	genOpts := []gen.ClientOption{gen.WithHTTPClient(c.doer)}
	if c.auth != "" {
		genOpts = append(genOpts, gen.WithRequestEditorFn(c.authorize))
	}
	if c.gen, err = gen.NewClient(base.String(), genOpts...); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return c, nil
}

func (c *Client) authorize(_ context.Context, req *http.Request) error {
	req.Header.Set("Authorization", c.auth)
	return nil
}

// NewIdempotencyKey returns a fresh random Idempotency-Key for CreateOrder
// (128 bits, hex). Keep it with the order it is for: every retry of that
// order, by this client or after a restart, must send the same key.
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// CreateProduct creates a product; ErrProductExists if its id is taken.
// It is sent once: a create that reached the server and is sent again
// would answer PRODUCT_EXISTS.
func (c *Client) CreateProduct(ctx context.Context, p NewProduct) error {
	return c.call(ctx, false, http.StatusOK, nil, func() (*http.Response, error) {
		return c.gen.CreateProduct(ctx, p)
	})
}

// GetProduct returns the product with this id; ErrProductNotFound if there
// is none.
func (c *Client) GetProduct(ctx context.Context, id string) (Product, error) {
	var p Product
	err := c.call(ctx, true, http.StatusOK, &p, func() (*http.Response, error) {
		return c.gen.GetProduct(ctx, id)
	})
	return p, err
}

// UpdateProduct sets the fields of patch that are not nil and returns the
// product as it is now.
func (c *Client) UpdateProduct(ctx context.Context, id string, patch ProductPatch) (Product, error) {
	var p Product
	err := c.call(ctx, false, http.StatusOK, &p, func() (*http.Response, error) {
		return c.gen.UpdateProduct(ctx, id, patch)
	})
	return p, err
}

// DeleteProduct deletes the product with this id; ErrProductNotFound if
// there is none. Orders that name it keep their lines.
func (c *Client) DeleteProduct(ctx context.Context, id string) error {
	return c.call(ctx, false, http.StatusNoContent, nil, func() (*http.Response, error) {
		return c.gen.DeleteProduct(ctx, id)
	})
}

// ListProductsOptions are the query of ListProducts.
type ListProductsOptions struct {
	// Limit is the page size, 1 to 1000; 0 means the server's default (50).
	Limit int
}

// ListProducts returns a pager over every product, page by page.
func (c *Client) ListProducts(opts ListProductsOptions) *Pager[Product] {
	var params gen.ListProductsParams
	if opts.Limit != 0 {
		params.Limit = &opts.Limit
	}
	return &Pager[Product]{c: c, first: func(ctx context.Context) (*http.Response, error) {
		return c.gen.ListProducts(ctx, &params)
	}}
}

// CreateOrder places an order of lines and returns its id.
//
// With a non-empty idempotencyKey (see NewIdempotencyKey) the request
// carries it as Idempotency-Key and is retried like a read: the server
// answers a repeat with the first answer and places no second order. With
// an empty key the request is sent once, since a retry of an order that
// did land would place it twice.
func (c *Client) CreateOrder(ctx context.Context, idempotencyKey string, lines ...NewOrderLine) (int64, error) {
	var params gen.CreateOrderParams
	if idempotencyKey != "" {
		params.IdempotencyKey = &idempotencyKey
	}
	body := gen.NewOrder{OrderDetails: lines}
	var created gen.OrderID
	err := c.call(ctx, idempotencyKey != "", http.StatusOK, &created, func() (*http.Response, error) {
		return c.gen.CreateOrder(ctx, &params, body)
	})
	return created.ID, err
}

// GetOrder returns the order with this id, each line with its image and
// its product's current document; ErrOrderNotFound if there is none.
func (c *Client) GetOrder(ctx context.Context, id int64) (EnrichedOrder, error) {
	var o EnrichedOrder
	err := c.call(ctx, true, http.StatusOK, &o, func() (*http.Response, error) {
		return c.gen.GetOrder(ctx, id)
	})
	return o, err
}

// UpdateOrder changes the price or quantity of existing lines of an order
// and returns the order as it is now. Stock moves by the difference
// (ErrOutOfStock if it cannot).
func (c *Client) UpdateOrder(ctx context.Context, id int64, lines ...OrderLineUpdate) (Order, error) {
	var o Order
	body := gen.OrderUpdate{OrderDetails: lines}
	err := c.call(ctx, false, http.StatusOK, &o, func() (*http.Response, error) {
		return c.gen.UpdateOrder(ctx, id, body)
	})
	return o, err
}

// DeleteOrder deletes an order; its quantities go back into stock.
func (c *Client) DeleteOrder(ctx context.Context, id int64) error {
	return c.call(ctx, false, http.StatusNoContent, nil, func() (*http.Response, error) {
		return c.gen.DeleteOrder(ctx, id)
	})
}

// ListOrdersOptions are the query of ListOrders.
type ListOrdersOptions struct {
	// Limit is the page size, 1 to 1000; 0 means the server's default (50).
	Limit int
	// After starts the listing after the order with this id (0: from the
	// first).
	After int64
}

// ListOrders returns a pager over the orders, oldest first, page by page.
func (c *Client) ListOrders(opts ListOrdersOptions) *Pager[Order] {
	var params gen.ListOrdersParams
	if opts.Limit != 0 {
		params.Limit = &opts.Limit
	}
	if opts.After != 0 {
		params.After = &opts.After
	}
	return &Pager[Order]{c: c, first: func(ctx context.Context) (*http.Response, error) {
		return c.gen.ListOrders(ctx, &params)
	}}
}

// Ready returns nil if the server is ready (GET /readyz answers 200), and
// the server's answer otherwise (ErrServiceUnavailable while a backend is
// down).
func (c *Client) Ready(ctx context.Context) error {
	return c.call(ctx, true, http.StatusOK, nil, func() (*http.Response, error) {
		return c.gen.Readyz(ctx)
	})
}

// maxBody is the largest response body the client reads.
const maxBody = 64 << 20

// buffers holds the buffers response bodies are read into.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// call sends a request with send, retried as c.retry says if safe, and
// reads its answer: the status want, with its JSON body decoded into out
// (if not nil), or an *Error.
func (c *Client) call(ctx context.Context, safe bool, want int, out any, send func() (*http.Response, error)) error {
	attempt := func() error { return c.attempt(send, want, out) }
	var err error
	if !safe || c.retry.MaxAttempts <= 1 {
		err = attempt()
	} else {
		err = c.retry.do(ctx, attempt)
	}
	if ne, ok := err.(*networkError); ok {
		return ne.err // the transport's own error, as http.Client returns it
	}
	return err
}

// attempt sends a request once and reads its answer.
func (c *Client) attempt(send func() (*http.Response, error), want int, out any) error {
	resp, err := send()
	if err != nil {
		return &networkError{err}
	}
	buf := buffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 { // keep no huge buffer
			buf.Reset()
			buffers.Put(buf)
		}
	}()
	buf.Reset()
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if err != nil {
		return &networkError{fmt.Errorf("read response: %w", err)}
	}
	if resp.StatusCode != want {
		return responseError(resp, buf.Bytes())
	}
	if out != nil {
		if err := json.Unmarshal(buf.Bytes(), out); err != nil {
			return fmt.Errorf("client: decode answer %d: %w", resp.StatusCode, err)
		}
	}
	return nil
}
