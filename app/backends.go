package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // PostgreSQL driver
	"github.com/redis/go-redis/v9"

	"github.com/airshipltd/airship/db"
	"github.com/airshipltd/airship/db/migrations"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// backends are the stores airship runs on, with what it takes to check and
// close them.
type backends struct {
	products products.Store
	orders   orders.Store
	idem     *orders.IdempotencyStore
	ping     func(context.Context) error
	close    func() error
}

// openBackends connects to the configured backends, retrying with backoff
// for up to cfg.StartupTimeout, and migrates the database.
func openBackends(ctx context.Context, cfg Config, log *slog.Logger) (*backends, error) {
	if cfg.Embedded() {
		return openEmbedded(ctx, cfg, log)
	}
	return openProduction(ctx, cfg, log)
}

func openEmbedded(ctx context.Context, cfg Config, log *slog.Logger) (*backends, error) {
	path := filepath.Join(cfg.DataDir, "airship.db")
	sqlDB, err := db.OpenSQLite(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open embedded store %s: %w", path, err)
	}
	if err := migrations.Up(ctx, sqlDB.DB, migrations.SQLite, log); err != nil {
		sqlDB.Close()
		return nil, err
	}
	log.Info("using the embedded store", "path", path)
	return &backends{
		products: products.NewSQLStore(sqlDB),
		orders:   orders.NewSQLStore(sqlDB),
		idem:     orders.NewIdempotencyStore(sqlDB, cfg.IdempotencyTTL, cfg.RequestTimeout),
		ping:     sqlDB.PingContext,
		close:    sqlDB.Close,
	}, nil
}

func openProduction(ctx context.Context, cfg Config, log *slog.Logger) (*backends, error) {
	pg, err := OpenPostgres(cfg)
	if err != nil {
		return nil, err
	}
	rdb, err := OpenRedis(cfg)
	if err != nil {
		pg.Close()
		return nil, err
	}
	redis.SetLogger(redisLogger{log})
	closeAll := func() error { return errors.Join(rdb.Close(), pg.Close()) }
	pingPG := func(ctx context.Context) error {
		if err := pg.PingContext(ctx); err != nil {
			return fmt.Errorf("%w: postgres: %w", orders.ErrUnavailable, err)
		}
		return nil
	}
	pingRedis := func(ctx context.Context) error {
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("%w: redis: %w", products.ErrUnavailable, err)
		}
		return nil
	}
	for name, ping := range map[string]func(context.Context) error{"postgres": pingPG, "redis": pingRedis} {
		if err := waitFor(ctx, name, ping, cfg.StartupTimeout, log); err != nil {
			closeAll()
			return nil, err
		}
	}
	if err := migrations.Up(ctx, pg.DB, migrations.Postgres, log); err != nil {
		closeAll()
		return nil, err
	}
	ps := products.NewRedisStore(rdb, cfg.RedisPrefix)
	if err := ps.Upgrade(ctx); err != nil {
		closeAll()
		return nil, err
	}
	return &backends{
		products: ps,
		orders:   orders.NewPGStore(pg),
		idem:     orders.NewIdempotencyStore(pg, cfg.IdempotencyTTL, cfg.RequestTimeout),
		ping: func(ctx context.Context) error {
			return errors.Join(pingPG(ctx), pingRedis(ctx))
		},
		close: closeAll,
	}, nil
}

// OpenPostgres returns a bounded connection pool on cfg.PostgresURL; it
// does not connect yet.
func OpenPostgres(cfg Config) (*sqlx.DB, error) {
	dsn, err := withConnectTimeout(cfg.PostgresURL, cfg.BackendTimeout)
	if err != nil {
		return nil, err
	}
	pg, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pg.SetMaxOpenConns(cfg.PostgresMaxConns)
	pg.SetMaxIdleConns(cfg.PostgresMaxConns)
	pg.SetConnMaxIdleTime(5 * time.Minute)
	return pg, nil
}

// withConnectTimeout adds connect_timeout (and jit=off) to a PostgreSQL URL
// unless set.
func withConnectTimeout(raw string, d time.Duration) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("AIRSHIP_POSTGRES_URL must be a postgres:// URL")
	}
	q := u.Query()
	if !q.Has("connect_timeout") {
		q.Set("connect_timeout", fmt.Sprint(max(1, int(d.Seconds()))))
	}
	// airship's queries are short index lookups; JIT compilation, which
	// PostgreSQL may start when table statistics are stale, only adds
	// tens of milliseconds to them.
	if !q.Has("jit") {
		q.Set("jit", "off")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// OpenRedis returns a bounded Redis client on cfg.RedisURL whose every
// dial, read and write is bounded by cfg.BackendTimeout.
func OpenRedis(cfg Config) (*redis.Client, error) {
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, errors.New("AIRSHIP_REDIS_URL must be a redis:// URL")
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

// waitFor retries ping with exponential backoff until it succeeds or
// timeout passes.
func waitFor(ctx context.Context, name string, ping func(context.Context) error, timeout time.Duration, log *slog.Logger) error {
	deadline := time.Now().Add(timeout)
	backoff := 100 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().Add(backoff).After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s is unreachable after %s: %w", name, timeout, err)
		}
		log.Warn("backend unreachable, retrying", "backend", name, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// redisLogger sends go-redis's own messages (failed dials and the like)
// to airship's log.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
