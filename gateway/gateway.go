// Package gateway is airship's HTTP face: echo routes for every endpoint of
// the API contract, request validation at the edge, and the one error
// handler that turns domain errors into the contract's error bodies.
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/airshipltd/airship/gateway/apidocs"
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
}

// New returns the API. ready reports whether what the process cannot
// serve without answers (its backends); it serves /readyz.
func New(p Products, o Orders, ready func(context.Context) error, cfg Config, log *slog.Logger) *Gateway {
	probe := cfg.Probe
	if probe == nil {
		probe = ready
	}
	g := &Gateway{products: p, orders: o, ready: ready, cfg: cfg, log: log,
		outages: newOutageLog(log, probe), routes: map[string]struct{}{}}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = g.errorHandler
	// Client addresses come from the connection only: X-Forwarded-For and
	// X-Real-IP are not trusted unless a proxy is configured in front.
	e.IPExtractor = echo.ExtractIPDirect()
	// The chain, outermost first. The router has run before it, so every
	// middleware knows the route (c.Path()).
	e.Use(requestID, securityHeaders)
	if cfg.Tracing != nil {
		e.Use(g.traced(cfg.Tracing))
	}
	e.Use(
		g.observe, // answers errors; metrics and the access log
		middleware.Recover(),
		requireKey(cfg.APIKeys),
		g.deadline,
	)

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

// ServeHTTP serves a request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.echo.ServeHTTP(w, r) }

// Routes lists the routes the gateway serves.
func (g *Gateway) Routes() []*echo.Route { return g.echo.Routes() }

// WatchOutages follows backend outages until ctx ends: while one lasts it
// probes the backends every second, summarizes every ten, and logs when
// they answer again (see outageLog).
func (g *Gateway) WatchOutages(ctx context.Context) { g.outages.watch(ctx) }

// requestID gives every request an id, sent back in X-Request-Id, logged
// with it and carried in its context to the modules it calls: the
// client's own if it is a short token of safe characters (reqid.Valid), a
// new one otherwise.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ids := c.Request().Header.Values(reqid.Header)
		id := ""
		if len(ids) == 1 && reqid.Valid(ids[0]) {
			id = ids[0]
		} else {
			id = uuid.NewString()
		}
		c.Response().Header().Set(reqid.Header, id)
		c.SetRequest(c.Request().WithContext(reqid.With(c.Request().Context(), id)))
		return next(c)
	}
}

// securityHeaders tells browsers to take every response for the type it
// declares.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderXContentTypeOptions, "nosniff")
		return next(c)
	}
}

// deadline bounds the backend work of each request, so that a backend that
// does not answer yields 503 in bounded time.
func (g *Gateway) deadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if g.cfg.RequestTimeout <= 0 {
			return next(c)
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), g.cfg.RequestTimeout)
		defer cancel()
		c.SetRequest(c.Request().WithContext(ctx))
		// The error is answered here, while the context still tells whether
		// the deadline passed or the client went away.
		if err := next(c); err != nil {
			c.Error(err)
		}
		return nil
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
