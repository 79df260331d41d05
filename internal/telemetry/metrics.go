// Package telemetry is airship's instrumentation: the Prometheus registry
// and its collectors (HTTP, backends, pools, orders, Go runtime, process),
// the database/sql and go-redis instrumentation installed where the
// backends are opened, OpenTelemetry tracing configured by the standard
// OTEL_* environment variables, and the log handler that puts the trace id
// on every log line of a traced request.
//
// The domain packages do not import it: the gateway and the orders module
// declare small observer interfaces that the types here implement.
package telemetry

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/airshipltd/airship/internal/errs"
)

// Metrics holds airship's Prometheus registry and the instruments the
// rest of the program records into.
type Metrics struct {
	reg *prometheus.Registry

	// HTTP requests, by route template, method and status class.
	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	httpInFlight  prometheus.Gauge
	httpReqSize   *prometheus.HistogramVec
	httpRespSize  *prometheus.HistogramVec
	backendTime   *prometheus.HistogramVec
	backendErrors *prometheus.CounterVec

	ordersPlaced      prometheus.Counter
	ordersRefused     *prometheus.CounterVec
	replays           prometheus.Counter
	released          prometheus.Counter
	committedBySweep  prometheus.Counter
	restocksReplayed  prometheus.Counter
	sweepDuration     prometheus.Histogram
	sweeps            *prometheus.CounterVec
	sweepLastSuccess  prometheus.Gauge
	refusedOutOfStock prometheus.Counter
	refusedNotFound   prometheus.Counter

	// The series of each label combination, found once: looking a series
	// up by its label values costs more than observing into it.
	httpSeries    seriesCache[httpKey, *httpSeries]
	backendSeries seriesCache[backendKey, *backendSeries]

	// The metrics of the API and of the orders module, registered (so
	// exported) only by a process that runs the module (RegisterAPI,
	// RegisterOrders).
	api, orders         []prometheus.Collector
	apiOnce, ordersOnce sync.Once
}

// seriesCache keeps what create makes for each key, made once.
type seriesCache[K comparable, V any] struct {
	create func(K) V
	mu     sync.RWMutex
	m      map[K]V
}

func (c *seriesCache[K, V]) get(k K) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = c.create(k)
	c.mu.Lock()
	c.m[k] = v
	c.mu.Unlock()
	return v
}

type httpKey struct {
	route, method string
	status        int // the class: 2 for 2xx, 0 for a status out of range
}

type httpSeries struct {
	requests               prometheus.Counter
	duration, reqSize, out prometheus.Observer
}

type backendKey struct{ backend, operation string }

type backendSeries struct {
	duration prometheus.Observer
	errors   prometheus.Counter
}

// observeBackend records one backend call.
func (m *Metrics) observeBackend(backend, operation string, took time.Duration, failed bool) {
	s := m.backendSeries.get(backendKey{backend, operation})
	s.duration.Observe(took.Seconds())
	if failed {
		s.errors.Inc()
	}
}

// Latency buckets, in seconds: requests and backend calls of airship take
// from a tenth of a millisecond (a Redis HMGET) to the request timeout.
var (
	httpBuckets    = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	backendBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	sizeBuckets    = prometheus.ExponentialBuckets(64, 4, 8) // 64 B to 1 MiB
	sweepBuckets   = []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30}
)

// The histograms have classic buckets only: a native histogram's sparse
// buckets cost about 1% of a request's CPU time under load (see
// docs/performance.md), and Prometheus 2 scrapes them only behind a
// feature flag.

// Build identifies the running binary in airship_build_info.
type Build struct{ Version, Commit, Date string }

// NewMetrics returns the registry with the Go runtime and process
// collectors, airship_build_info and the backend instruments, and every
// other instrument of airship, which the modules a process runs register
// (RegisterAPI, RegisterOrders): a process exports only the metrics of its
// modules, so that no alert reads a module's metric from a process that
// does not run it (the recovery sweep's age from the gateway, say).
func NewMetrics(build Build) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg}
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "airship_build_info",
		Help: "Always 1; the labels tell the version, VCS commit, Go version and build date of the running binary.",
		ConstLabels: prometheus.Labels{
			"version": build.Version, "commit": build.Commit, "go_version": runtime.Version(), "build_date": build.Date,
		},
	}, func() float64 { return 1 }))

	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "airship_http_requests_total",
		Help: "HTTP requests answered, by route template, method and status class (2xx, 4xx, 5xx).",
	}, []string{"route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "airship_http_request_duration_seconds",
		Help:    "Time from the request's arrival to its last response byte, by route template, method and status class.",
		Buckets: httpBuckets,
	}, []string{"route", "method", "status"})
	m.httpInFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "airship_http_requests_in_flight", Help: "HTTP requests being served.",
	})
	m.httpReqSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "airship_http_request_size_bytes", Help: "Size of request bodies, by route template and method.",
		Buckets: sizeBuckets,
	}, []string{"route", "method"})
	m.httpRespSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "airship_http_response_size_bytes", Help: "Size of response bodies, by route template and method.",
		Buckets: sizeBuckets,
	}, []string{"route", "method"})
	m.backendTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "airship_backend_request_duration_seconds",
		Help:    "Time of each call to a backend, by backend (postgres, redis) and operation (statement name, Redis command, script or pipeline).",
		Buckets: backendBuckets,
	}, []string{"backend", "operation"})
	m.backendErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "airship_backend_errors_total",
		Help: "Backend calls that failed, by backend and operation (a missing Redis key is not a failure).",
	}, []string{"backend", "operation"})
	m.api = []prometheus.Collector{m.httpRequests, m.httpDuration, m.httpInFlight, m.httpReqSize, m.httpRespSize}
	f(m.backendTime)
	f(m.backendErrors)

	m.ordersPlaced = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "airship_orders_placed_total", Help: "Orders written, their stock taken.",
	})
	m.ordersRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "airship_orders_refused_total",
		Help: "Orders refused, by reason: out_of_stock (409) or product_not_found (404).",
	}, []string{"reason"})
	m.refusedOutOfStock = m.ordersRefused.WithLabelValues("out_of_stock")
	m.refusedNotFound = m.ordersRefused.WithLabelValues("product_not_found")
	m.replays = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "airship_idempotent_replays_total",
		Help: "Order requests with an Idempotency-Key answered with an earlier request's outcome.",
	})
	m.released = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "airship_recovery_reservations_released_total",
		Help: "Expired reservations whose stock the recovery sweep gave back (no order claimed them).",
	})
	m.committedBySweep = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "airship_recovery_reservations_committed_total",
		Help: "Expired reservations the recovery sweep found claimed by an order, and forgot.",
	})
	m.restocksReplayed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "airship_recovery_restocks_replayed_total",
		Help: "Restocks of deleted or reduced orders that the recovery sweep replayed.",
	})
	m.sweepDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "airship_recovery_sweep_duration_seconds", Help: "Time of each run of the recovery sweep.",
		Buckets: sweepBuckets,
	})
	m.sweeps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "airship_recovery_sweeps_total", Help: "Runs of the recovery sweep, by result (ok, error).",
	}, []string{"result"})
	m.sweepLastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "airship_recovery_last_success_timestamp_seconds",
		Help: "Unix time at which the recovery sweep last finished its work.",
	})
	m.orders = []prometheus.Collector{m.ordersPlaced, m.ordersRefused, m.replays, m.released,
		m.committedBySweep, m.restocksReplayed, m.sweepDuration, m.sweeps, m.sweepLastSuccess}
	m.httpSeries = seriesCache[httpKey, *httpSeries]{m: map[httpKey]*httpSeries{}, create: func(k httpKey) *httpSeries {
		class := statusClass(k.status * 100)
		return &httpSeries{
			requests: m.httpRequests.WithLabelValues(k.route, k.method, class),
			duration: m.httpDuration.WithLabelValues(k.route, k.method, class),
			reqSize:  m.httpReqSize.WithLabelValues(k.route, k.method),
			out:      m.httpRespSize.WithLabelValues(k.route, k.method),
		}
	}}
	m.backendSeries = seriesCache[backendKey, *backendSeries]{m: map[backendKey]*backendSeries{}, create: func(k backendKey) *backendSeries {
		return &backendSeries{
			duration: m.backendTime.WithLabelValues(k.backend, k.operation),
			errors:   m.backendErrors.WithLabelValues(k.backend, k.operation),
		}
	}}
	// Series that exist from the start, so that rates and alerts see zero
	// rather than nothing.
	m.sweeps.WithLabelValues("ok")
	m.sweeps.WithLabelValues("error")
	return m
}

// RegisterAPI registers the metrics of the REST API (requests by route,
// in flight, their sizes), for a process that serves it: modules all or
// gateway. Calls after the first do nothing.
func (m *Metrics) RegisterAPI() {
	m.apiOnce.Do(func() { m.reg.MustRegister(m.api...) })
}

// RegisterOrders registers the metrics of the orders module (orders placed
// and refused, idempotent replays, the recovery sweep), for a process that
// runs it: modules all or orders. Calls after the first do nothing.
func (m *Metrics) RegisterOrders() {
	m.ordersOnce.Do(func() { m.reg.MustRegister(m.orders...) })
}

// Register adds a collector (a pool's statistics, a backlog) to the
// registry.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// Gatherer is the registry, for tests and for serving.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves the registry in the Prometheus text format, or in the
// protobuf format to a Prometheus that asks for it. A collector that fails
// (the outbox backlog while the database is down) leaves out its own
// series only: the rest, the backends' errors among them, are served all
// the same, and promhttp_metric_handler_errors_total counts the failure.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry: m.reg, MaxRequestsInFlight: 4, Timeout: 10 * time.Second,
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// statusClass is the label of an HTTP status: "2xx" to "5xx".
func statusClass(status int) string {
	switch {
	case status >= 100 && status < 600:
		return strconv.Itoa(status/100) + "xx"
	}
	return "other"
}

// RequestStarted implements gateway.RequestObserver.
func (m *Metrics) RequestStarted() { m.httpInFlight.Inc() }

// RequestFinished implements gateway.RequestObserver.
func (m *Metrics) RequestFinished(route, method string, status int, took time.Duration, reqSize, respSize int64) {
	m.httpInFlight.Dec()
	s := m.httpSeries.get(httpKey{route, method, status / 100})
	s.requests.Inc()
	s.duration.Observe(took.Seconds())
	s.reqSize.Observe(float64(max(reqSize, 0)))
	s.out.Observe(float64(max(respSize, 0)))
}

// OrderPlaced implements orders.Observer.
func (m *Metrics) OrderPlaced() { m.ordersPlaced.Inc() }

// OrderRefused implements orders.Observer.
func (m *Metrics) OrderRefused(kind errs.Kind) {
	switch kind {
	case errs.OutOfStock:
		m.refusedOutOfStock.Inc()
	case errs.ProductNotFound:
		m.refusedNotFound.Inc()
	}
}

// IdempotentReplay implements orders.Observer.
func (m *Metrics) IdempotentReplay() { m.replays.Inc() }

// ReservationSettled implements orders.Observer.
func (m *Metrics) ReservationSettled(released bool) {
	if released {
		m.released.Inc()
	} else {
		m.committedBySweep.Inc()
	}
}

// RestockReplayed implements orders.Observer.
func (m *Metrics) RestockReplayed() { m.restocksReplayed.Inc() }

// RecoverySwept implements orders.Observer.
func (m *Metrics) RecoverySwept(took time.Duration, err error) {
	m.sweepDuration.Observe(took.Seconds())
	if err != nil {
		m.sweeps.WithLabelValues("error").Inc()
		return
	}
	m.sweeps.WithLabelValues("ok").Inc()
	m.sweepLastSuccess.SetToCurrentTime()
}

// Backlogger reports how many events wait in an outbox and how long the
// oldest has waited (events.Relay).
type Backlogger interface {
	Backlog(ctx context.Context) (count int, oldest time.Duration, err error)
}

// NewOutboxCollector returns the collector of the outbox backlog: the
// pending events and the age of the oldest, read at each scrape (one
// indexed query, bounded by a second).
func NewOutboxCollector(b Backlogger) prometheus.Collector { return outboxCollector{b} }

var (
	outboxPendingDesc = prometheus.NewDesc("airship_events_outbox_pending",
		"Order events written to the outbox and not yet confirmed by RabbitMQ.", nil, nil)
	outboxOldestDesc = prometheus.NewDesc("airship_events_outbox_oldest_age_seconds",
		"Age of the oldest pending order event (0 when none waits).", nil, nil)
)

type outboxCollector struct{ b Backlogger }

func (c outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxPendingDesc
	ch <- outboxOldestDesc
}

func (c outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, oldest, err := c.b.Backlog(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(outboxPendingDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(outboxPendingDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(outboxOldestDesc, prometheus.GaugeValue, oldest.Seconds())
}
