// Package backend opens the backends airship runs on: PostgreSQL's
// connection pool, the Redis client in each of its modes (one server, a
// cluster, Sentinels), and waits for them at start-up, telling a backend
// that is not there yet from one that refuses airship's settings. The
// embedded store's file is opened by internal/sqlite. It is the one
// place that knows the drivers' connection settings.
package backend

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/airshipltd/airship/internal/config"
)

// Postgres returns a bounded connection pool on cfg.PostgresURL, with
// airship's connection defaults (config.PostgresDSN); it does not connect
// yet. wrap, if not nil, wraps the driver's connector (the SQL
// instrumentation of internal/telemetry).
func Postgres(cfg config.Config, wrap func(driver.Connector) driver.Connector) (*sqlx.DB, error) {
	dsn, err := config.PostgresDSN(cfg.PostgresURL, cfg.BackendTimeout)
	if err != nil {
		return nil, err
	}
	var conn driver.Connector
	if conn, err = pq.NewConnector(dsn); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if wrap != nil {
		conn = wrap(conn)
	}
	pg := sqlx.NewDb(sql.OpenDB(conn), "postgres")
	pg.SetMaxOpenConns(cfg.PostgresMaxConns)
	pg.SetMaxIdleConns(cfg.PostgresMaxConns)
	pg.SetConnMaxIdleTime(5 * time.Minute)
	return pg, nil
}
