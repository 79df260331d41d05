package telemetry

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/airshipltd/airship/internal/errs"
)

func TestStatementNamer(t *testing.T) {
	name := StatementNamer(map[string]string{"SELECT 1 FROM x WHERE id = $1": "get_x"})
	for q, want := range map[string]string{
		"SELECT 1 FROM x WHERE id = $1":      "get_x",
		"\n  SELECT\n a FROM b":              "select",
		"insert into t values (1)":           "insert",
		"WITH o AS (DELETE FROM t) SELECT 1": "with",
		"VACUUM":                             "other",
		"":                                   "other",
		"SELECT pg_sleep(1); DROP TABLE t":   "select",
	} {
		if got := name(q); got != want {
			t.Errorf("name(%q) = %q, want %q", q, got, want)
		}
	}
}

func TestRedisOperation(t *testing.T) {
	h := NewRedisHook(nil, false, map[string]string{"abc123": "reserve"})
	ctx := t.Context()
	cmd := func(args ...any) redis.Cmder { return redis.NewCmd(ctx, args...) }
	for _, c := range []struct {
		cmds []redis.Cmder
		want string
	}{
		{[]redis.Cmder{cmd("hmget", "k", "f")}, "hmget"},
		{[]redis.Cmder{cmd("evalsha", "abc123", 1, "k")}, "script:reserve"},
		{[]redis.Cmder{cmd("evalsha", "fff", 1, "k")}, "script:unknown"},
		{[]redis.Cmder{cmd("CONFIG-SET!", "x")}, "other"},
		{[]redis.Cmder{cmd("script", "load", "return 1")}, "script_load"},
	} {
		if got := h.operation(c.cmds[0]); got != c.want {
			t.Errorf("operation(%v) = %q, want %q", c.cmds[0].Args(), got, c.want)
		}
	}
	for _, c := range []struct {
		cmds []redis.Cmder
		want string
	}{
		{[]redis.Cmder{cmd("set", "r", "v"), cmd("zadd", "i", 1, "r"), cmd("evalsha", "abc123", 2, "a", "b"), cmd("evalsha", "abc123", 2, "c", "d")}, "pipeline:reserve"},
		{[]redis.Cmder{cmd("multi"), cmd("del", "a"), cmd("del", "b"), cmd("zrem", "i", "a"), cmd("exec")}, "pipeline:del+zrem"},
		{[]redis.Cmder{cmd("hmget", "a"), cmd("hmget", "b")}, "pipeline:hmget"},
	} {
		if got := h.pipelineOperation(c.cmds); got != c.want {
			t.Errorf("pipelineOperation = %q, want %q", got, c.want)
		}
	}
}

// TestRedisHookCountsErrors: a failed command is an error of its
// operation; a missing key (redis.Nil) is not.
func TestRedisHookCountsErrors(t *testing.T) {
	m := NewMetrics(Build{Version: "test", Commit: "abc"})
	h := NewRedisHook(m, false, nil)
	ctx := t.Context()
	for _, err := range []error{nil, redis.Nil, errors.New("LOADING"), nil} {
		run := h.ProcessHook(func(context.Context, redis.Cmder) error { return err })
		_ = run(ctx, redis.NewCmd(ctx, "get", "k"))
	}
	if got := testutil.ToFloat64(m.backendErrors.WithLabelValues("redis", "get")); got != 1 {
		t.Errorf("errors of get: %v, want 1", got)
	}
	if got := testutil.CollectAndCount(m.backendTime, "airship_backend_request_duration_seconds"); got != 1 {
		t.Errorf("%d latency series, want 1", got)
	}
}

// TestSQLConnectorTimesStatements: statements run on a connection and
// prepared statements are timed under their names, failures counted, and
// driver.ErrSkip (the driver's "use another way") is neither.
func TestSQLConnectorTimesStatements(t *testing.T) {
	m := NewMetrics(Build{})
	c := SQLConnector(fakeConnector{}, m, nil, "postgres", map[string]string{"SELECT 1": "one"})
	conn, err := c.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, _ = conn.(driver.QueryerContext).QueryContext(ctx, "SELECT 1", nil)
	_, _ = conn.(driver.ExecerContext).ExecContext(ctx, "UPDATE t SET a = 1", nil)
	_, _ = conn.(driver.ExecerContext).ExecContext(ctx, "SKIP", nil)
	st, err := conn.(driver.ConnPrepareContext).PrepareContext(ctx, "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = st.(driver.StmtQueryContext).QueryContext(ctx, nil)
	for op, want := range map[string]uint64{"one": 2, "update": 1, "prepare": 1, "connect": 1, "other": 0} {
		if got := histogramCount(t, m.backendTime.WithLabelValues("postgres", op)); got != want {
			t.Errorf("%s timed %v times, want %v", op, got, want)
		}
	}
	if got := testutil.ToFloat64(m.backendErrors.WithLabelValues("postgres", "update")); got != 1 {
		t.Errorf("update errors %v, want 1", got)
	}
}

// TestSQLConnectorTraces: with a tracer, each call is a client span
// named after the backend and the statement, failed calls marked so,
// driver.ErrSkip not a failure.
func TestSQLConnectorTraces(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	c := SQLConnector(fakeConnector{}, nil, tp.Tracer("test"), "postgres", map[string]string{"SELECT 1": "one"})
	ctx := t.Context()
	conn, err := c.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.(driver.QueryerContext).QueryContext(ctx, "SELECT 1", nil)
	_, _ = conn.(driver.ExecerContext).ExecContext(ctx, "UPDATE t SET a = 1", nil)
	_, _ = conn.(driver.ExecerContext).ExecContext(ctx, "SKIP", nil)
	if _, err := conn.(driver.ConnPrepareContext).PrepareContext(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range spans.Ended() {
		got = append(got, fmt.Sprintf("%s %v %s", s.Name(), s.SpanKind(), s.Status().Code))
	}
	want := []string{"postgres connect client Unset", "postgres one client Unset", "postgres update client Error",
		"postgres other client Unset", "postgres prepare one client Unset"}
	if !slices.Equal(got, want) {
		t.Errorf("spans %q; want %q", got, want)
	}
}

func histogramCount(t *testing.T, o prometheus.Observer) uint64 {
	t.Helper()
	var out dto.Metric
	if err := o.(prometheus.Metric).Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetHistogram().GetSampleCount()
}

func TestOrdersObserver(t *testing.T) {
	m := NewMetrics(Build{})
	m.OrderPlaced()
	m.OrderRefused(errs.OutOfStock)
	m.OrderRefused(errs.ProductNotFound)
	m.OrderRefused(errs.Invalid) // not a refusal counted here
	m.IdempotentReplay()
	m.ReservationSettled(true)
	m.ReservationSettled(false)
	m.RestockReplayed()
	m.RecoverySwept(time.Millisecond, nil)
	m.RecoverySwept(time.Millisecond, errors.New("down"))
	for name, c := range map[string]prometheus.Counter{
		"placed": m.ordersPlaced, "replays": m.replays, "released": m.released,
		"committed by the sweep": m.committedBySweep, "restocks replayed": m.restocksReplayed,
	} {
		if got := testutil.ToFloat64(c); got != 1 {
			t.Errorf("%s = %v, want 1", name, got)
		}
	}
	if got := testutil.ToFloat64(m.ordersRefused.WithLabelValues("out_of_stock")); got != 1 {
		t.Errorf("out_of_stock %v", got)
	}
	if got := testutil.ToFloat64(m.ordersRefused.WithLabelValues("product_not_found")); got != 1 {
		t.Errorf("product_not_found %v", got)
	}
	if got := testutil.ToFloat64(m.sweeps.WithLabelValues("error")); got != 1 {
		t.Errorf("failed sweeps %v", got)
	}
	if got := testutil.ToFloat64(m.sweepLastSuccess); got < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success %v", got)
	}
}

func BenchmarkRequestFinished(b *testing.B) {
	m := NewMetrics(Build{})
	b.ReportAllocs()
	for b.Loop() {
		m.RequestStarted()
		m.RequestFinished("/orders/:id", "GET", 200, 300*time.Microsecond, 0, 512)
	}
}

type fakeConnector struct{}

func (fakeConnector) Connect(context.Context) (driver.Conn, error) { return fakeConn{}, nil }
func (fakeConnector) Driver() driver.Driver                        { return nil }

type fakeConn struct{}

func (fakeConn) Prepare(q string) (driver.Stmt, error) { return fakeStmt{}, nil }
func (fakeConn) PrepareContext(_ context.Context, q string) (driver.Stmt, error) {
	return fakeStmt{}, nil
}
func (fakeConn) Close() error              { return nil }
func (fakeConn) Begin() (driver.Tx, error) { return nil, errors.New("no") }
func (fakeConn) QueryContext(_ context.Context, q string, _ []driver.NamedValue) (driver.Rows, error) {
	return nil, nil
}
func (fakeConn) ExecContext(_ context.Context, q string, _ []driver.NamedValue) (driver.Result, error) {
	if strings.HasPrefix(q, "SKIP") {
		return nil, driver.ErrSkip
	}
	return nil, errors.New("failed")
}

type fakeStmt struct{}

func (fakeStmt) Close() error                               { return nil }
func (fakeStmt) NumInput() int                              { return -1 }
func (fakeStmt) Exec([]driver.Value) (driver.Result, error) { return nil, nil }
func (fakeStmt) Query([]driver.Value) (driver.Rows, error)  { return nil, nil }
func (fakeStmt) QueryContext(context.Context, []driver.NamedValue) (driver.Rows, error) {
	return nil, nil
}

type failingBacklog struct{}

func (failingBacklog) Backlog(context.Context) (int, time.Duration, error) {
	return 0, 0, errors.New("database unreachable")
}

// TestMetricsServedWhenTheOutboxCannotBeRead: while the database is down
// the scrape still answers with every other series; only the outbox's are
// missing.
func TestMetricsServedWhenTheOutboxCannotBeRead(t *testing.T) {
	m := NewMetrics(Build{Version: "test"})
	if err := m.Register(NewOutboxCollector(failingBacklog{})); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, "airship_build_info") {
		t.Fatalf("scrape answered %d without airship_build_info:\n%.300s", rec.Code, body)
	}
	if strings.Contains(body, "airship_events_outbox_pending ") {
		t.Fatalf("the outbox's series served though it could not be read:\n%s", body)
	}
}
