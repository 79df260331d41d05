package telemetry

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"time"
	"unicode"
)

// SQLConnector wraps a database/sql connector so that every statement,
// prepare, transaction end and ping is timed into the backend metrics,
// labelled with backend and the statement's name: names maps a
// statement's text to its name; other statements (migrations, ad hoc
// queries) are labelled by their first keyword ("select", "insert", …) or
// "other".
func SQLConnector(c driver.Connector, m *Metrics, backend string, names map[string]string) driver.Connector {
	return &sqlConnector{Connector: c, m: &sqlMetrics{m: m, backend: backend, name: StatementNamer(names)}}
}

type sqlMetrics struct {
	m       *Metrics
	backend string
	name    func(query string) string
}

func (s *sqlMetrics) observe(op string, began time.Time, err error) {
	s.m.observeBackend(s.backend, op, time.Since(began), err != nil && !errors.Is(err, driver.ErrSkip))
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
	m *sqlMetrics
}

func (c *sqlConnector) Connect(ctx context.Context) (driver.Conn, error) {
	began := time.Now()
	conn, err := c.Connector.Connect(ctx)
	c.m.observe("connect", began, err)
	if err != nil {
		return nil, err
	}
	return &sqlConn{Conn: conn, m: c.m}, nil
}

// sqlConn wraps a driver connection; every optional interface of
// database/sql is implemented and passed on, or answered as database/sql
// would answer for a driver without it.
type sqlConn struct {
	driver.Conn
	m *sqlMetrics
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

func (c *sqlConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	began := time.Now()
	var (
		st  driver.Stmt
		err error
	)
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, query)
	} else {
		st, err = c.Conn.Prepare(query)
	}
	c.m.observe("prepare", began, err)
	if err != nil {
		return nil, err
	}
	return &sqlStmt{Stmt: st, conn: c, m: c.m, op: c.m.name(query)}, nil
}

func (c *sqlConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *sqlConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	began := time.Now()
	var (
		tx  driver.Tx
		err error
	)
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		tx, err = b.BeginTx(ctx, opts)
	} else {
		tx, err = c.Conn.Begin() //nolint:staticcheck // the fallback database/sql itself uses
	}
	c.m.observe("begin", began, err)
	if err != nil {
		return nil, err
	}
	return &sqlTx{Tx: tx, m: c.m}, nil
}

func (c *sqlConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	began := time.Now()
	res, err := e.ExecContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		c.m.observe(c.m.name(query), began, err)
	}
	return res, err
}

func (c *sqlConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	began := time.Now()
	rows, err := q.QueryContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		c.m.observe(c.m.name(query), began, err)
	}
	return rows, err
}

func (c *sqlConn) Ping(ctx context.Context) error {
	p, ok := c.Conn.(driver.Pinger)
	if !ok {
		return nil
	}
	began := time.Now()
	err := p.Ping(ctx)
	c.m.observe("ping", began, err)
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

type sqlTx struct {
	driver.Tx
	m *sqlMetrics
}

func (t *sqlTx) Commit() error {
	began := time.Now()
	err := t.Tx.Commit()
	t.m.observe("commit", began, err)
	return err
}

func (t *sqlTx) Rollback() error {
	began := time.Now()
	err := t.Tx.Rollback()
	t.m.observe("rollback", began, err)
	return err
}

// sqlStmt is a prepared statement that knows its name.
type sqlStmt struct {
	driver.Stmt
	conn *sqlConn
	m    *sqlMetrics
	op   string
}

var (
	_ driver.StmtExecContext   = (*sqlStmt)(nil)
	_ driver.StmtQueryContext  = (*sqlStmt)(nil)
	_ driver.NamedValueChecker = (*sqlStmt)(nil)
)

func (s *sqlStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	began := time.Now()
	var (
		res driver.Result
		err error
	)
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		res, err = e.ExecContext(ctx, args)
	} else {
		var vals []driver.Value
		if vals, err = values(args); err == nil {
			res, err = s.Stmt.Exec(vals) //nolint:staticcheck // drivers without StmtExecContext
		}
	}
	s.m.observe(s.op, began, err)
	return res, err
}

func (s *sqlStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	began := time.Now()
	var (
		rows driver.Rows
		err  error
	)
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		rows, err = q.QueryContext(ctx, args)
	} else {
		var vals []driver.Value
		if vals, err = values(args); err == nil {
			rows, err = s.Stmt.Query(vals) //nolint:staticcheck // drivers without StmtQueryContext
		}
	}
	s.m.observe(s.op, began, err)
	return rows, err
}

func (s *sqlStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return s.conn.CheckNamedValue(nv) // as database/sql asks the connection
}

// values turns named arguments into positional ones, as database/sql does
// for drivers that take no names.
func values(named []driver.NamedValue) ([]driver.Value, error) {
	out := make([]driver.Value, len(named))
	for i, nv := range named {
		if nv.Name != "" {
			return nil, errors.New("sql: driver does not support named arguments")
		}
		out[i] = nv.Value
	}
	return out, nil
}
