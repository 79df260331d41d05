package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/airshipltd/airship/db/migrations"
	"github.com/airshipltd/airship/events"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/sqlite"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/redisstore"
	"github.com/airshipltd/airship/products/sqlitestore"
)

// backends are the stores a process runs on, with what it takes to check
// and close them. A process of one module opens only that module's
// backend: products has no database, orders has no Redis.
type backends struct {
	*database
	products products.BulkStore
	orders   orders.Store
	// tx, when not nil, runs orders and stock changes in one transaction.
	tx orders.Transactor
	// outbox is the orders store's outbox of order events.
	outbox events.Outbox
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
func openDatabase(ctx context.Context, cfg config.Config, st startup, log *slog.Logger, in instruments) (*database, error) {
	d := &database{}
	if embedded(cfg) {
		path := filepath.Join(cfg.DataDir, embeddedFile)
		sdb, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("open embedded store %s: %w", path, err)
		}
		d.db, d.dialect, d.embedded, d.pingError = sdb, migrations.SQLite, true, sqlite.ErrUnavailable
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

// up adopts the old shop's schema if the database holds it, then applies
// every pending migration.
func (d *database) up(ctx context.Context, log *slog.Logger) error {
	if err := migrations.Up(ctx, d.db.DB, d.dialect, d.migrator, log); err != nil {
		return fmt.Errorf("migrate %s up: %w", d.dialect, err)
	}
	return nil
}

// embeddedFile is the embedded store's file in data_dir.
const embeddedFile = "airship.db"

func (d *database) ping(ctx context.Context) error {
	if err := d.db.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %s: %w", d.pingError, d.dialect, err)
	}
	return nil
}

// openBackends opens the backends of cfg's modules, waiting for them up
// to cfg.StartupTimeout, and migrates the database.
func openBackends(ctx context.Context, cfg config.Config, log *slog.Logger, in instruments) (*backends, error) {
	st := startupOf(cfg)
	b := &backends{ready: func(context.Context) error { return nil }, close: func() error { return nil }}
	if cfg.Modules == ModulesAll || cfg.Modules == ModuleOrders {
		d, err := openDatabase(ctx, cfg, st, log, in)
		if err != nil {
			return nil, err
		}
		if err := d.up(ctx, log); err != nil {
			d.db.Close()
			return nil, err
		}
		schema := func(ctx context.Context) error {
			if err := migrations.Check(ctx, d.migrator); err != nil {
				return fmt.Errorf("%w: %w", d.pingError, err)
			}
			return nil
		}
		b.database = d
		b.ready = func(ctx context.Context) error { return errors.Join(d.ping(ctx), schema(ctx)) }
		b.close = d.db.Close
		var opts []orders.StoreOption
		if cfg.Events() {
			opts = append(opts, orders.WithEvents())
		}
		if d.embedded {
			log.Info("using the embedded store", "path", filepath.Join(cfg.DataDir, embeddedFile))
			store := orders.NewSQLStore(d.db, opts...)
			b.products = sqlitestore.New(d.db)
			b.orders, b.outbox = store, store
			b.tx = orders.NewSQLTransactor(d.db, store)
			return b, nil
		}
		store := orders.NewPGStore(d.db, opts...)
		b.orders, b.outbox = store, store
	}
	if cfg.Modules == ModulesAll || cfg.Modules == ModuleProducts {
		rdb, pingRedis, err := connectRedis(ctx, cfg, st, log, in)
		if err != nil {
			b.close()
			return nil, err
		}
		closeDB, readyDB := b.close, b.ready
		b.close = func() error { return errors.Join(rdb.Close(), closeDB()) }
		b.ready = func(ctx context.Context) error { return errors.Join(readyDB(ctx), pingRedis(ctx)) }
		ps := redisstore.New(rdb, cfg.RedisPrefix)
		if err := ps.Upgrade(ctx); err != nil {
			b.close()
			return nil, err
		}
		b.products = ps
	}
	return b, nil
}

// connectRedis opens the Redis client of cfg, in the mode cfg.RedisMode
// says or, for auto, the server says, once it answers.
func connectRedis(ctx context.Context, cfg config.Config, st startup, log *slog.Logger, in instruments) (redis.UniversalClient, func(context.Context) error, error) {
	redis.SetLogger(redisLogger{log})
	mode := cfg.RedisMode
	if mode == "auto" {
		detect := func(ctx context.Context) error {
			m, err := DetectRedisMode(ctx, cfg)
			if err != nil {
				return fmt.Errorf("%w: redis: %w", products.ErrUnavailable, err)
			}
			mode = m
			return nil
		}
		if err := waitFor(ctx, "redis", detect, st, log); err != nil {
			return nil, nil, err
		}
		log.Info("redis mode detected", "redis_mode", mode)
	}
	if mode == "sentinel" {
		if err := waitFor(ctx, "redis", func(ctx context.Context) error { return askSentinels(ctx, cfg) }, st, log); err != nil {
			return nil, nil, err
		}
	}
	rdb, err := OpenRedis(cfg, mode)
	if err != nil {
		return nil, nil, err
	}
	if err := in.instrumentRedis(rdb, cfg.RedisPoolSize); err != nil {
		rdb.Close()
		return nil, nil, err
	}
	ping := func(ctx context.Context) error {
		if err := pingAll(ctx, rdb); err != nil {
			return fmt.Errorf("%w: redis: %w", products.ErrUnavailable, err)
		}
		return nil
	}
	if err := waitFor(ctx, "redis", ping, st, log); err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return rdb, ping, nil
}

// pingAll pings the server, or every master of a cluster: each holds a
// share of the products.
func pingAll(ctx context.Context, rdb redis.UniversalClient) error {
	if c, ok := rdb.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return node.Ping(ctx).Err()
		})
	}
	return rdb.Ping(ctx).Err()
}

// OpenPostgres returns a bounded connection pool on cfg.PostgresURL; it
// does not connect yet.
func OpenPostgres(cfg config.Config) (*sqlx.DB, error) { return openPostgres(cfg, instruments{}) }

// openPostgres is OpenPostgres with its statements timed and traced as in
// says (see instruments.openSQL).
func openPostgres(cfg config.Config, in instruments) (*sqlx.DB, error) {
	dsn, err := config.PostgresDSN(cfg.PostgresURL, cfg.BackendTimeout)
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

// OpenRedis returns a bounded Redis client on cfg.RedisURL in mode
// (single, cluster or sentinel), whose every dial, read and write is
// bounded by cfg.BackendTimeout; it does not connect yet. The URL forms:
//
//	single    redis://[[USER]:PASSWORD@]HOST:PORT[/DB], rediss://…, unix:///path.sock?db=N
//	cluster   redis://[[USER]:PASSWORD@]HOST:PORT?addr=HOST:PORT&addr=HOST:PORT (seed nodes)
//	sentinel  redis://[[USER]:SENTINEL_PASSWORD@]HOST:26379[/DB]?master_name=NAME&addr=HOST:26379[&password=PASSWORD]
func OpenRedis(cfg config.Config, mode string) (redis.UniversalClient, error) {
	if p := config.RedisModeProblem(cfg.RedisURL, mode); p != "" {
		return nil, errors.New("redis_url " + p)
	}
	t, size := cfg.BackendTimeout, cfg.RedisPoolSize
	switch mode {
	case "cluster":
		o, _ := redis.ParseClusterURL(cfg.RedisURL) // checked above
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.PoolSize = t, t, t, t, size
		// A command that meets a failover follows MOVED and ASK, and is
		// tried again on TRYAGAIN and CLUSTERDOWN, up to MaxRedirects
		// (go-redis' default, 3) times.
		o.ContextTimeoutEnabled, o.MaxRetries = true, 1
		return redis.NewClusterClient(o), nil
	case "sentinel":
		o, _ := redis.ParseFailoverURL(cfg.RedisURL)
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.PoolSize = t, t, t, t, size
		o.ContextTimeoutEnabled, o.MaxRetries = true, 1
		return redis.NewFailoverClient(o), nil
	default:
		o, _ := redis.ParseURL(cfg.RedisURL)
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.PoolSize = t, t, t, t, size
		o.ContextTimeoutEnabled, o.MaxRetries = true, 1
		return redis.NewClient(o), nil
	}
}

// DetectRedisMode asks the first server of cfg.RedisURL whether it is a
// member of a cluster (INFO cluster): "cluster" or "single". A Sentinel
// is refused: its URL needs redis_mode sentinel and a master_name.
func DetectRedisMode(ctx context.Context, cfg config.Config) (string, error) {
	o, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		co, cerr := redis.ParseClusterURL(cfg.RedisURL)
		if cerr != nil {
			return "", errors.New("redis_url " + config.RedisModeProblem(cfg.RedisURL, "auto"))
		}
		o = &redis.Options{Addr: co.Addrs[0], Username: co.Username, Password: co.Password, TLSConfig: co.TLSConfig}
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = cfg.BackendTimeout, cfg.BackendTimeout, cfg.BackendTimeout
	o.PoolSize, o.MaxRetries = 1, -1
	c := redis.NewClient(o)
	defer c.Close()
	info, err := c.Info(ctx, "server", "cluster").Result()
	if err != nil {
		return "", err
	}
	switch {
	case strings.Contains(info, "redis_mode:sentinel"):
		return "", permanentError{errSentinelURL}
	case strings.Contains(info, "cluster_enabled:1"):
		return "cluster", nil
	}
	return "single", nil
}

// askSentinels asks each Sentinel of cfg.RedisURL for the address of the
// master named by master_name: nil as soon as one knows it. When every
// Sentinel answers and none monitors a master of that name, the error is
// permanent and names the masters they do monitor; go-redis would call
// such Sentinels unreachable.
func askSentinels(ctx context.Context, cfg config.Config) error {
	o, err := redis.ParseFailoverURL(cfg.RedisURL)
	if err != nil {
		return errors.New("redis_url " + config.RedisModeProblem(cfg.RedisURL, "sentinel"))
	}
	var unreachable []error
	var answered, monitored []string
	for _, addr := range o.SentinelAddrs {
		c := redis.NewSentinelClient(&redis.Options{
			Addr: addr, Username: o.SentinelUsername, Password: o.SentinelPassword, TLSConfig: o.TLSConfig,
			DialTimeout: cfg.BackendTimeout, ReadTimeout: cfg.BackendTimeout, WriteTimeout: cfg.BackendTimeout,
			// One command, one dial: a pool of 2 never has every
			// connection fail, which would start go-redis' background
			// redialling that outlives Close by a second.
			PoolSize: 2, MaxRetries: -1,
		})
		_, err := c.GetMasterAddrByName(ctx, o.MasterName).Result()
		if errors.Is(err, redis.Nil) {
			answered = append(answered, addr)
			monitored = append(monitored, masterNames(c.Masters(ctx).Val())...)
		}
		c.Close()
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, redis.Nil):
			unreachable = append(unreachable, fmt.Errorf("sentinel %s: %w", addr, err))
		}
	}
	if len(answered) == 0 {
		return errors.Join(unreachable...)
	}
	slices.Sort(monitored)
	names := "none"
	if monitored = slices.Compact(monitored); len(monitored) > 0 {
		names = `"` + strings.Join(monitored, `", "`) + `"`
	}
	unknown := fmt.Errorf("the Sentinels at %s answer but monitor no master named %q (they monitor %s): set master_name in redis_url to the name in their sentinel monitor line",
		strings.Join(answered, ", "), o.MasterName, names)
	if len(unreachable) > 0 {
		// One of those that did not answer may know it.
		return errors.Join(append([]error{unknown}, unreachable...)...)
	}
	return permanentError{unknown}
}

// masterNames returns the names in a SENTINEL MASTERS reply: a list of
// field-value lists (RESP2) or of maps (RESP3).
func masterNames(reply []any) []string {
	var names []string
	for _, m := range reply {
		switch m := m.(type) {
		case []any:
			for i := 0; i+1 < len(m); i += 2 {
				if m[i] == "name" {
					names = append(names, fmt.Sprint(m[i+1]))
				}
			}
		case map[any]any:
			if n, ok := m["name"]; ok {
				names = append(names, fmt.Sprint(n))
			}
		}
	}
	return names
}

// errSentinelURL is DetectRedisMode's answer for a Sentinel.
var errSentinelURL = errors.New("redis_url names a Sentinel: set redis_mode sentinel and master_name")

// permanentError is a start-up failure that waiting cannot mend.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// startup is the time a process gives its backends to answer: it began
// at began and ends at deadline (began + startup_timeout).
type startup struct{ began, deadline time.Time }

func startupOf(cfg config.Config) startup {
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
	var perm permanentError
	if errors.As(err, &perm) {
		return true
	}
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
