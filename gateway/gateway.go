// Package gateway is airship's HTTP face: echo routes for every endpoint of
// the API contract, request validation at the edge, and the one error
// handler that turns domain errors into the contract's error bodies.
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/airshipltd/airship/gateway/apidocs"
	"github.com/airshipltd/airship/internal/bearer"
	"github.com/airshipltd/airship/internal/reqid"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// Products is what the gateway needs from the products module.
type Products interface {
	Get(ctx context.Context, id string) (products.Product, error)
	// Exists answers HEAD /products/{id} without reading the product.
	Exists(ctx context.Context, id string) (bool, error)
	GetMany(ctx context.Context, ids []string) (map[string]products.Product, error)
	Create(ctx context.Context, p products.Product) error
	Update(ctx context.Context, id string, patch products.Patch) (products.Product, error)
	Delete(ctx context.Context, id string) error
	List(ctx context.Context, cursor string, limit int) (products.Page, error)
}

// Orders is what the gateway needs from the orders module.
type Orders interface {
	Place(ctx context.Context, lines []orders.NewLine) (orders.Order, error)
	// PlaceOnce places an order at most once per idempotency key.
	PlaceOnce(ctx context.Context, key string, lines []orders.NewLine) (orders.Placed, error)
	Get(ctx context.Context, id int64) (orders.Order, error)
	List(ctx context.Context, after int64, limit int) ([]orders.Order, error)
	Update(ctx context.Context, id int64, updates []orders.LineUpdate) (orders.Order, error)
	Delete(ctx context.Context, id int64) error
}

// Config tunes the gateway.
type Config struct {
	// ImageRoot prefixes the image URL of every order line.
	ImageRoot string
	// BodyLimit is the largest request body accepted, in bytes.
	BodyLimit int64
	// RequestTimeout bounds the backend work of one request.
	RequestTimeout time.Duration
	// APIKeys, when not empty, are the bearer tokens that mutating
	// requests must present; reads stay public.
	APIKeys []string
	// AccessLogEvery says which successful requests are logged at info:
	// 0 none, 1 all, N one in N (the access_log setting, config.AccessLogEvery).
	AccessLogEvery uint64
	// Observer, when set, is told of every request (metrics).
	Observer RequestObserver
	// Tracing, when set, traces every request.
	Tracing *Tracing
	// Probe, when set, tells whether the backends answer again during an
	// outage (see WatchOutages); otherwise the readiness check does. A
	// gateway whose modules run in other processes is ready without them,
	// but probes them to log an outage's end.
	Probe func(context.Context) error
}

// Gateway serves the API. It is an http.Handler; WatchOutages must run
// beside it for outages to be logged when they end.
type Gateway struct {
	products Products
	orders   Orders
	ready    func(context.Context) error
	cfg      Config
	log      *slog.Logger
	outages  *outageLog
	echo     *echo.Echo
	// routes are the paths of the registered routes (metric labels).
	routes map[string]struct{}
	// sampled counts successes for access_log sample:N (see logAccess).
	sampled atomic.Uint64
	// keys are the digests of the API keys (see authorize).
	keys bearer.Keys
}

// New returns the API. ready reports whether what the process cannot
// serve without answers (its backends); it serves /readyz.
func New(p Products, o Orders, ready func(context.Context) error, cfg Config, log *slog.Logger) *Gateway {
	probe := cfg.Probe
	if probe == nil {
		probe = ready
	}
	g := &Gateway{products: p, orders: o, ready: ready, cfg: cfg, log: log,
		outages: newOutageLog(log, probe), routes: map[string]struct{}{}, keys: bearer.NewKeys(cfg.APIKeys...)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = g.errorHandler
	// Client addresses come from the connection only: X-Forwarded-For and
	// X-Real-IP are not trusted unless a proxy is configured in front.
	e.IPExtractor = echo.ExtractIPDirect()
	// Every request goes through serve (ServeHTTP), which does what a
	// middleware chain would, in one function: no chain is built per
	// request.
	// HEAD is answered wherever GET is (RFC 9110 9.3.2).
	get := func(path string, h echo.HandlerFunc) { e.Match([]string{http.MethodGet, http.MethodHead}, path, h) }
	get("/healthz", g.healthz)
	get("/readyz", g.readyz)

	e.POST("/products", g.createProduct)
	get("/products", g.listProducts)
	get("/products/:id", g.getProduct)
	e.PATCH("/products/:id", g.updateProduct)
	e.DELETE("/products/:id", g.deleteProduct)

	e.POST("/orders", g.createOrder)
	get("/orders", g.listOrders)
	get("/orders/:id", g.getOrder)
	e.PUT("/orders/:id", g.updateOrder)
	e.DELETE("/orders/:id", g.deleteOrder)
	apidocs.Register(get)
	for _, r := range e.Routes() {
		g.routes[r.Path] = struct{}{}
	}
	g.echo = e
	return g
}

// ServeHTTP serves a request: it routes it with echo's router, then
// serves it (serve).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := g.echo.AcquireContext()
	c.Reset(r, w)
	g.echo.Router().Find(r.Method, echo.GetPath(r), c)
	g.serve(c)
	g.echo.ReleaseContext(c)
}

// Routes lists the routes the gateway serves.
func (g *Gateway) Routes() []*echo.Route { return g.echo.Routes() }

// WatchOutages follows backend outages until ctx ends: while one lasts it
// probes the backends every second, summarizes every ten, and logs when
// they answer again (see outageLog).
func (g *Gateway) WatchOutages(ctx context.Context) { g.outages.watch(ctx) }

// nosniff tells browsers to take every response for the type it
// declares. Header values are never changed in place, so every response
// shares this one.
var nosniff = []string{"nosniff"}

// serve does for every routed request, in order: the request id, nosniff,
// the server span when tracing is on, the in-flight gauge, then (run)
// the API key check, the request's deadline, the handler and the answer
// to its error, recovering from a panic; last the metrics and the access
// log. One clock reading starts the request: its deadline and its
// latency are both measured from it.
func (g *Gateway) serve(c echo.Context) {
	began := time.Now()
	req := c.Request()
	ctx, id, idHeader := requestID(req)
	hdr := c.Response().Header()
	hdr[reqid.Header] = idHeader
	hdr[echo.HeaderXContentTypeOptions] = nosniff
	route := g.routeOf(c)
	var span trace.Span
	if g.cfg.Tracing != nil {
		ctx, span = g.startSpan(ctx, req, route, id)
	}
	if g.cfg.Observer != nil {
		g.cfg.Observer.RequestStarted()
	}
	g.run(ctx, c, began)
	took := time.Since(began)
	req, res := c.Request(), c.Response()
	if span != nil {
		endSpan(span, res)
	}
	if g.cfg.Observer != nil {
		g.cfg.Observer.RequestFinished(route, methodLabel(req.Method), res.Status, took, req.ContentLength, res.Size)
	}
	g.logAccess(ctx, c, id, route, took)
}

// requestID returns the request's context carrying its id, the id, and
// the id as a header value: the client's X-Request-Id if it is a short
// token of safe characters (reqid.Valid), a new one otherwise. It is sent
// back in X-Request-Id, logged and carried in the request's context to
// the modules it calls.
func requestID(req *http.Request) (context.Context, string, []string) {
	if ids := req.Header[reqid.Header]; len(ids) == 1 && reqid.Valid(ids[0]) {
		ctx, header := reqid.Carry(req.Context(), ids[0])
		return ctx, ids[0], header
	}
	return reqid.New(req.Context())
}

// run serves the request under its deadline, which bounds its backend
// work so that a backend that does not answer yields 503 in bounded time,
// and answers its error, or a panic of its handler, while the context
// still tells whether the deadline passed or the client went away.
func (g *Gateway) run(ctx context.Context, c echo.Context, began time.Time) {
	if g.cfg.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, began.Add(g.cfg.RequestTimeout))
		defer cancel()
	}
	c.SetRequest(c.Request().WithContext(ctx))
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			g.errorHandler(fmt.Errorf("panic: %v\n%s", r, debug.Stack()), c)
		}
	}()
	err := g.authorize(c)
	if err == nil {
		err = c.Handler()(c)
	}
	if err != nil {
		g.errorHandler(err, c)
	}
}

func (g *Gateway) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (g *Gateway) readyz(c echo.Context) error {
	if err := g.ready(c.Request().Context()); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
