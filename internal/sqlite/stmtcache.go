package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
)

// The driver parses a statement's SQL every time it runs one that was not
// prepared, and parsing took a fifth of the embedded store's CPU time
// under the load scenario. So every connection keeps the statements it
// has run, prepared, and runs a statement of the same text again without
// parsing it: airship's statements are constants, so a connection keeps
// a few dozen. This is what database/sql's prepared statements do, for
// every statement, in a transaction or not, without the stores preparing
// them.

// maxStatements bounds the statements one connection keeps; past it, a
// new statement runs as the driver runs it, parsed each time.
const maxStatements = 256

// connector opens connections that keep their prepared statements.
type connector struct{ driver.Connector }

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	inner, ok := dc.(driverConn)
	if !ok {
		_ = dc.Close()
		return nil, errors.New("sqlite: the driver's connection lacks the context methods")
	}
	return &conn{driverConn: inner, stmts: map[string]*stmt{}}, nil
}

// driverConn is what conn needs of the driver's connection.
type driverConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// conn is a driver connection with its prepared statements, by their SQL
// text. database/sql uses a connection from one goroutine at a time, so
// it needs no lock.
type conn struct {
	driverConn
	stmts map[string]*stmt
}

// stmt is a kept statement; busy while rows it returned are open (a
// second run of the same text meanwhile is parsed anew, so that it does
// not reset the first's rows).
type stmt struct {
	driver.Stmt
	busy bool
}

// kept returns the kept statement of query, preparing and keeping it if
// there is room; nil if it is busy or there is no room.
func (c *conn) kept(ctx context.Context, query string) (*stmt, error) {
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			return nil, nil
		}
		return s, nil
	}
	if len(c.stmts) >= maxStatements {
		return nil, nil
	}
	ds, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s := &stmt{Stmt: ds}
	c.stmts[query] = s
	return s, nil
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.kept(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.driverConn.ExecContext(ctx, query, args)
	}
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.kept(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.driverConn.QueryContext(ctx, query, args)
	}
	rs, err := s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	s.busy = true
	return &rows{Rows: rs, stmt: s}, nil
}

// Close closes the kept statements, then the connection.
func (c *conn) Close() error {
	var errs []error
	for _, s := range c.stmts {
		errs = append(errs, s.Close())
	}
	clear(c.stmts)
	return errors.Join(append(errs, c.driverConn.Close())...)
}

// rows are the rows of a kept statement, which they free when closed.
type rows struct {
	driver.Rows
	stmt *stmt
}

func (r *rows) Close() error {
	err := r.Rows.Close()
	r.stmt.busy = false
	return err
}
