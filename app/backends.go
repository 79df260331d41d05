package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/airshipltd/airship/db/migrations"
	"github.com/airshipltd/airship/internal/sqlite"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// backends are the stores airship runs on, with what it takes to check and
// close them.
type backends struct {
	*database
	products products.Store
	orders   orders.Store
	// tx, when not nil, runs orders and stock changes in one transaction.
	tx orders.Transactor
	// ready reports whether every backend answers and the schema is the
	// one this binary needs.
	ready func(context.Context) error
	close func() error
}

// database is the SQL database of the configured mode: PostgreSQL, or
// the embedded SQLite file that also holds the products.
type database struct {
	db        *sqlx.DB
	dialect   migrations.Dialect
	migrator  *goose.Provider
	embedded  bool
	pingError error // what an unreachable database is reported as
}

// openDatabase opens the configured SQL database, waiting up to
// cfg.StartupTimeout for it to answer. It does not migrate it.
func openDatabase(ctx context.Context, cfg Config, st startup, log *slog.Logger, in instruments) (*database, error) {
	d := &database{}
	if cfg.Embedded() {
		path := filepath.Join(cfg.DataDir, embeddedFile)
		sdb, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("open embedded store %s: %w", path, err)
		}
		d.db, d.dialect, d.embedded, d.pingError = sdb, migrations.SQLite, true, products.ErrUnavailable
		if in.metrics != nil {
			_ = in.metrics.Register(collectors.NewDBStatsCollector(sdb.DB, "sqlite"))
		}
	} else {
		pg, err := openPostgres(cfg, in)
		if err != nil {
			return nil, err
		}
		d.db, d.dialect, d.pingError = pg, migrations.Postgres, orders.ErrUnavailable
		if err := waitFor(ctx, "postgres", d.ping, st, log); err != nil {
			pg.Close()
			return nil, err
		}
	}
	p, err := migrations.Provider(d.db.DB, d.dialect, log)
	if err != nil {
		d.db.Close()
		return nil, err
	}
	d.migrator = p
	return d, nil
}

// embeddedFile is the embedded store's file in data_dir.
const embeddedFile = "airship.db"

func (d *database) ping(ctx context.Context) error {
	if err := d.db.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %s: %w", d.pingError, d.dialect, err)
	}
	return nil
}

// openBackends opens the configured backends, waiting for them up to
// cfg.StartupTimeout, and migrates the database.
func openBackends(ctx context.Context, cfg Config, log *slog.Logger, in instruments) (*backends, error) {
	st := startupOf(cfg)
	d, err := openDatabase(ctx, cfg, st, log, in)
	if err != nil {
		return nil, err
	}
	if _, err := d.migrator.Up(ctx); err != nil {
		d.db.Close()
		return nil, fmt.Errorf("migrate %s up: %w", d.dialect, err)
	}
	schema := func(ctx context.Context) error {
		if err := migrations.Check(ctx, d.migrator); err != nil {
			return fmt.Errorf("%w: %w", d.pingError, err)
		}
		return nil
	}
	if d.embedded {
		log.Info("using the embedded store", "path", filepath.Join(cfg.DataDir, embeddedFile))
		return &backends{
			database: d,
			products: products.NewSQLStore(d.db),
			orders:   orders.NewSQLStore(d.db),
			tx:       orders.NewSQLTransactor(d.db),
			ready:    func(ctx context.Context) error { return errors.Join(d.ping(ctx), schema(ctx)) },
			close:    d.db.Close,
		}, nil
	}

	rdb, err := OpenRedis(cfg)
	if err != nil {
		d.db.Close()
		return nil, err
	}
	if err := in.instrumentRedis(rdb, cfg.RedisPoolSize); err != nil {
		rdb.Close()
		d.db.Close()
		return nil, err
	}
	redis.SetLogger(redisLogger{log})
	closeAll := func() error { return errors.Join(rdb.Close(), d.db.Close()) }
	pingRedis := func(ctx context.Context) error {
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("%w: redis: %w", products.ErrUnavailable, err)
		}
		return nil
	}
	if err := waitFor(ctx, "redis", pingRedis, st, log); err != nil {
		closeAll()
		return nil, err
	}
	ps := products.NewRedisStore(rdb, cfg.RedisPrefix)
	if err := ps.Upgrade(ctx); err != nil {
		closeAll()
		return nil, err
	}
	return &backends{
		database: d,
		products: ps,
		orders:   orders.NewPGStore(d.db),
		ready: func(ctx context.Context) error {
			return errors.Join(d.ping(ctx), pingRedis(ctx), schema(ctx))
		},
		close: closeAll,
	}, nil
}

// OpenPostgres returns a bounded connection pool on cfg.PostgresURL; it
// does not connect yet.
func OpenPostgres(cfg Config) (*sqlx.DB, error) { return openPostgres(cfg, instruments{}) }

// openPostgres is OpenPostgres with its statements timed and traced as in
// says (see instruments.openSQL).
func openPostgres(cfg Config, in instruments) (*sqlx.DB, error) {
	dsn, err := postgresDSN(cfg.PostgresURL, cfg.BackendTimeout)
	if err != nil {
		return nil, err
	}
	conn, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pg := in.openSQL(conn, "postgres", "postgres", orders.StatementNames())
	pg.SetMaxOpenConns(cfg.PostgresMaxConns)
	pg.SetMaxIdleConns(cfg.PostgresMaxConns)
	pg.SetConnMaxIdleTime(5 * time.Minute)
	return pg, nil
}

// postgresDSN adds connect_timeout and jit=off to a PostgreSQL URL or
// key=value connection string, unless it sets them.
//
// airship's queries are short index lookups; JIT compilation, which
// PostgreSQL may start when table statistics are stale, only adds tens of
// milliseconds to them.
func postgresDSN(raw string, timeout time.Duration) (string, error) {
	if p := postgresURLProblem(raw); p != "" {
		return "", fmt.Errorf("postgres_url %s", p)
	}
	connectTimeout := fmt.Sprint(max(1, int(timeout.Seconds())))
	if strings.Contains(raw, "://") {
		u, _ := url.Parse(raw) // checked above
		q := u.Query()
		if !q.Has("connect_timeout") {
			q.Set("connect_timeout", connectTimeout)
		}
		if !q.Has("jit") {
			q.Set("jit", "off")
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	settings, _ := parseKV(raw) // checked above
	has := map[string]bool{}
	for _, s := range settings {
		has[s.key] = true
	}
	if !has["connect_timeout"] {
		raw += " connect_timeout=" + connectTimeout
	}
	if !has["jit"] {
		raw += " jit=off"
	}
	return raw, nil
}

// OpenRedis returns a bounded Redis client on cfg.RedisURL whose every
// dial, read and write is bounded by cfg.BackendTimeout.
func OpenRedis(cfg Config) (*redis.Client, error) {
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, errors.New("redis_url must be a redis:// URL")
	}
	opts.DialTimeout = cfg.BackendTimeout
	opts.ReadTimeout = cfg.BackendTimeout
	opts.WriteTimeout = cfg.BackendTimeout
	opts.PoolTimeout = cfg.BackendTimeout
	opts.PoolSize = cfg.RedisPoolSize
	opts.MaxRetries = 1
	opts.ContextTimeoutEnabled = true
	return redis.NewClient(opts), nil
}

// startup is the time a process gives its backends to answer: it began
// at began and ends at deadline (began + startup_timeout).
type startup struct{ began, deadline time.Time }

func startupOf(cfg Config) startup {
	now := time.Now()
	return startup{began: now, deadline: now.Add(cfg.StartupTimeout)}
}

// waitFor pings a backend until it answers or the deadline passes,
// retrying with exponential backoff (100 ms doubling, at most 2 s) right up
// to the deadline, with one last try at it. An answer that says the
// configuration is wrong (a permanent error: wrong password, unknown
// database, bad database index) ends the wait at once with the server's
// own error.
func waitFor(ctx context.Context, name string, ping func(context.Context) error, st startup, log *slog.Logger) error {
	backoff := 100 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if permanent(err) {
			return fmt.Errorf("%s refuses airship's settings (not retried): %w", name, err)
		}
		left := time.Until(st.deadline)
		if left <= 0 || ctx.Err() != nil {
			return fmt.Errorf("%s is unreachable after %s: %w", name, time.Since(st.began).Round(10*time.Millisecond), err)
		}
		wait := min(backoff, left)
		log.Warn("backend unreachable, retrying", "backend", name, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// redisLogger sends go-redis's own messages (failed dials and the like)
// to airship's log at debug: they come once per attempt, and an outage is
// reported once by the gateway's outage log.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// permanent reports whether a backend's answer at start-up means its
// settings are wrong rather than that it is not there yet: PostgreSQL
// refusing the login, the database or the TLS setting, or Redis answering
// a command with an error other than the transient ones (loading, busy,
// failing over).
func permanent(err error) bool {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code.Class() {
		case "28", "3D", "42": // invalid authorization, invalid catalog name, access rule
			return true
		}
		return false
	}
	if errors.Is(err, pq.ErrSSLNotSupported) {
		return true
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		code, _, _ := strings.Cut(rerr.Error(), " ")
		switch code {
		case "LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN":
			return false
		}
		return true
	}
	return false
}
