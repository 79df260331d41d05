package telemetry

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.24.0"
	"go.opentelemetry.io/otel/trace"
)

// SQLConnector wraps a database/sql connector so that every statement,
// prepare, transaction end and ping is timed into the backend metrics
// (when m is not nil) and traced as a client span, child of the
// request's, named "BACKEND NAME" (when tracer is not nil), labelled with
// backend and the statement's name: names maps a statement's text to its
// name; other statements (migrations, ad hoc queries) are named by their
// first keyword ("select", "insert", …) or "other". It is airship's one
// layer of SQL instrumentation.
//
// The driver must implement database/sql's context interfaces
// (ConnPrepareContext, ConnBeginTx, ExecerContext, QueryerContext and,
// for statements, StmtExecContext and StmtQueryContext), as lib/pq and
// modernc.org/sqlite do.
func SQLConnector(c driver.Connector, m *Metrics, tracer trace.Tracer, backend string, names map[string]string) driver.Connector {
	return &sqlConnector{Connector: c, in: &sqlInstruments{
		m: m, tracer: tracer, backend: backend, name: StatementNamer(names),
		system: semconv.DBSystemKey.String(dbSystem(backend)),
	}}
}

// dbSystem is the OpenTelemetry db.system of a backend.
func dbSystem(backend string) string {
	if backend == "postgres" {
		return "postgresql"
	}
	return backend
}

type sqlInstruments struct {
	m       *Metrics
	tracer  trace.Tracer
	backend string
	name    func(query string) string
	system  attribute.KeyValue
}

// call is one instrumented call: begun by start, ended by end.
type call struct {
	in    *sqlInstruments
	op    string
	began time.Time
	span  trace.Span
}

// start begins a call of operation op (a metric label); its span is
// named after the backend, op and, when not empty, the statement's name
// (a prepare's), and the context returned carries it.
func (in *sqlInstruments) start(ctx context.Context, op, statement string) (context.Context, call) {
	c := call{in: in, op: op, began: time.Now()}
	if in.tracer != nil {
		name, operation := in.backend+" "+op, op
		if statement != "" {
			name, operation = name+" "+statement, statement
		}
		ctx, c.span = in.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(in.system, semconv.DBOperation(operation)))
	}
	return ctx, c
}

// end records the call's outcome. database/sql's ErrSkip (the driver
// asks for the generic path) is no call.
func (c call) end(err error) {
	skipped := errors.Is(err, driver.ErrSkip)
	if c.in.m != nil && !skipped {
		c.in.m.observeBackend(c.in.backend, c.op, time.Since(c.began), err != nil)
	}
	if c.span != nil {
		if err != nil && !skipped {
			c.span.RecordError(err)
			c.span.SetStatus(codes.Error, err.Error())
		}
		c.span.End()
	}
}

// StatementNamer returns the function that names a statement for metrics
// and traces: its name in names (text → name), or else its first keyword
// ("select", "insert", …), or "other". The names are as few as the
// program's statements, whatever the statements' arguments.
func StatementNamer(names map[string]string) func(query string) string {
	return func(query string) string {
		if n, ok := names[query]; ok {
			return n
		}
		q := strings.TrimSpace(query)
		verb := q
		if end := strings.IndexFunc(q, unicode.IsSpace); end >= 0 {
			verb = q[:end]
		}
		switch v := strings.ToLower(verb); v {
		case "select", "insert", "update", "delete", "with", "create", "alter", "drop", "begin", "commit", "rollback":
			return v
		}
		return "other"
	}
}

type sqlConnector struct {
	driver.Connector
	in *sqlInstruments
}

func (c *sqlConnector) Connect(ctx context.Context) (driver.Conn, error) {
	ctx, call := c.in.start(ctx, "connect", "")
	conn, err := c.Connector.Connect(ctx)
	call.end(err)
	if err != nil {
		return nil, err
	}
	return &sqlConn{Conn: conn, in: c.in}, nil
}

// sqlConn wraps a driver connection; every optional interface of
// database/sql is implemented and passed on, or answered as database/sql
// would answer for a driver without it.
type sqlConn struct {
	driver.Conn
	in *sqlInstruments
}

var (
	_ driver.ConnPrepareContext = (*sqlConn)(nil)
	_ driver.ConnBeginTx        = (*sqlConn)(nil)
	_ driver.ExecerContext      = (*sqlConn)(nil)
	_ driver.QueryerContext     = (*sqlConn)(nil)
	_ driver.Pinger             = (*sqlConn)(nil)
	_ driver.SessionResetter    = (*sqlConn)(nil)
	_ driver.Validator          = (*sqlConn)(nil)
	_ driver.NamedValueChecker  = (*sqlConn)(nil)
)

// errNoContext is the error of a driver without database/sql's context
// interfaces, which SQLConnector needs.
var errNoContext = errors.New("telemetry: the SQL driver lacks database/sql's context interfaces")

func (c *sqlConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	p, ok := c.Conn.(driver.ConnPrepareContext)
	if !ok {
		return nil, errNoContext
	}
	name := c.in.name(query)
	ctx, call := c.in.start(ctx, "prepare", name)
	st, err := p.PrepareContext(ctx, query)
	call.end(err)
	if err != nil {
		return nil, err
	}
	return &sqlStmt{Stmt: st, conn: c, op: name}, nil
}

func (c *sqlConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	b, ok := c.Conn.(driver.ConnBeginTx)
	if !ok {
		return nil, errNoContext
	}
	spanCtx, call := c.in.start(ctx, "begin", "")
	tx, err := b.BeginTx(spanCtx, opts)
	call.end(err)
	if err != nil {
		return nil, err
	}
	return &sqlTx{Tx: tx, in: c.in, ctx: ctx}, nil
}

func (c *sqlConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	ctx, call := c.in.start(ctx, c.in.name(query), "")
	res, err := e.ExecContext(ctx, query, args)
	call.end(err)
	return res, err
}

func (c *sqlConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	ctx, call := c.in.start(ctx, c.in.name(query), "")
	rows, err := q.QueryContext(ctx, query, args)
	call.end(err)
	return rows, err
}

func (c *sqlConn) Ping(ctx context.Context) error {
	p, ok := c.Conn.(driver.Pinger)
	if !ok {
		return nil
	}
	ctx, call := c.in.start(ctx, "ping", "")
	err := p.Ping(ctx)
	call.end(err)
	return err
}

func (c *sqlConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *sqlConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *sqlConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// sqlTx times the end of a transaction; ctx is the context it began in,
// whose span (the request's) its commit or rollback is a child of.
type sqlTx struct {
	driver.Tx
	in  *sqlInstruments
	ctx context.Context
}

func (t *sqlTx) Commit() error {
	_, call := t.in.start(t.ctx, "commit", "")
	err := t.Tx.Commit()
	call.end(err)
	return err
}

func (t *sqlTx) Rollback() error {
	_, call := t.in.start(t.ctx, "rollback", "")
	err := t.Tx.Rollback()
	call.end(err)
	return err
}

// sqlStmt is a prepared statement that knows its name.
type sqlStmt struct {
	driver.Stmt
	conn *sqlConn
	op   string
}

var (
	_ driver.StmtExecContext   = (*sqlStmt)(nil)
	_ driver.StmtQueryContext  = (*sqlStmt)(nil)
	_ driver.NamedValueChecker = (*sqlStmt)(nil)
)

func (s *sqlStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	e, ok := s.Stmt.(driver.StmtExecContext)
	if !ok {
		return nil, errNoContext
	}
	ctx, call := s.conn.in.start(ctx, s.op, "")
	res, err := e.ExecContext(ctx, args)
	call.end(err)
	return res, err
}

func (s *sqlStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := s.Stmt.(driver.StmtQueryContext)
	if !ok {
		return nil, errNoContext
	}
	ctx, call := s.conn.in.start(ctx, s.op, "")
	rows, err := q.QueryContext(ctx, args)
	call.end(err)
	return rows, err
}

func (s *sqlStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return s.conn.CheckNamedValue(nv) // as database/sql asks the connection
}
