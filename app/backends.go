package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"

	"github.com/airshipltd/airship/db/migrations"
	"github.com/airshipltd/airship/events"
	"github.com/airshipltd/airship/internal/backend"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/sqlite"
	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/orders/sqlstore"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/redisstore"
	"github.com/airshipltd/airship/products/sqlitestore"
	"github.com/airshipltd/airship/transfer"
)

// backends are the stores a process runs on, with what it takes to check
// and close them. A process of one module opens only that module's
// backend: products has no database, orders has no Redis.
type backends struct {
	*database
	products products.BulkStore
	orders   *sqlstore.Store
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
func openDatabase(ctx context.Context, p plan, st backend.Startup, log *slog.Logger, in instruments) (*database, error) {
	cfg := p.cfg
	d := &database{}
	if p.embedded {
		path := filepath.Join(cfg.DataDir, embeddedFile)
		sdb, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("open embedded store %s: %w", path, err)
		}
		d.db, d.dialect, d.embedded, d.pingError = sdb, migrations.SQLite, true, sqlite.ErrUnavailable
	} else {
		pg, err := backend.Postgres(cfg, in.SQLConnector("postgres", sqlstore.StatementNames()))
		if err != nil {
			return nil, err
		}
		d.db, d.dialect, d.pingError = pg, migrations.Postgres, orders.ErrUnavailable
		if err := backend.Wait(ctx, "postgres", d.ping, st, log); err != nil {
			pg.Close()
			return nil, err
		}
	}
	in.RegisterPool(d.db.DB, string(d.dialect))
	var err error
	if d.migrator, err = migrations.Provider(d.db.DB, d.dialect, log); err != nil {
		d.db.Close()
		return nil, err
	}
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

// check reports whether the schema is the one this binary needs.
func (d *database) check(ctx context.Context) error {
	if err := migrations.Check(ctx, d.migrator); err != nil {
		return fmt.Errorf("%w: %w", d.pingError, err)
	}
	return nil
}

// openBackends opens the backends the process's modules keep their data
// in, waiting for them up to startup_timeout, and migrates the database
// and upgrades the products' layout in Redis; with readOnly it changes
// nothing, and the schema must be current.
func openBackends(ctx context.Context, p plan, log *slog.Logger, in instruments, readOnly bool) (*backends, error) {
	cfg := p.cfg
	st := backend.StartupOf(cfg)
	b := &backends{ready: func(context.Context) error { return nil }, close: func() error { return nil }}
	if p.uses(postgresBackend) {
		d, err := openDatabase(ctx, p, st, log, in)
		if err != nil {
			return nil, err
		}
		if readOnly {
			err = d.check(ctx)
		} else {
			err = d.up(ctx, log)
		}
		if err != nil {
			d.db.Close()
			return nil, err
		}
		b.database = d
		b.ready = func(ctx context.Context) error { return errors.Join(d.ping(ctx), d.check(ctx)) }
		b.close = d.db.Close
		var opts []sqlstore.Option
		if cfg.Events() {
			opts = append(opts, sqlstore.WithEvents())
		}
		if d.embedded {
			log.Info("using the embedded store", "path", filepath.Join(cfg.DataDir, embeddedFile))
			// Reads outside a transaction run on a read pool beside the
			// one writer connection, so they do not wait for its commits.
			reads, err := sqlite.OpenReads(ctx, d.db)
			if err != nil {
				d.db.Close()
				return nil, err
			}
			if reads != nil {
				in.RegisterPool(reads.DB, string(d.dialect)+"_reads")
				b.close = func() error { return errors.Join(reads.Close(), d.db.Close()) }
			}
			store := sqlstore.NewSQLite(d.db, append(opts, sqlstore.WithReads(reads))...)
			b.products = sqlitestore.New(d.db, sqlitestore.WithReads(reads))
			b.orders, b.outbox = store, store
			b.tx = store.Transactor(func(tx *sqlx.Tx) orders.Stock { return sqlitestore.New(d.db).WithTx(tx) })
			return b, nil
		}
		store := sqlstore.NewPostgres(d.db, opts...)
		b.orders, b.outbox = store, store
	}
	if p.uses(redisBackend) {
		rdb, pingRedis, err := backend.ConnectRedis(ctx, cfg, st, log, products.ErrUnavailable, in.Redis(cfg.RedisPoolSize, redisstore.ScriptNames()))
		if err != nil {
			b.close()
			return nil, err
		}
		closeDB, readyDB := b.close, b.ready
		b.close = func() error { return errors.Join(rdb.Close(), closeDB()) }
		b.ready = func(ctx context.Context) error { return errors.Join(readyDB(ctx), pingRedis(ctx)) }
		ps := redisstore.New(rdb, cfg.RedisPrefix)
		if !readOnly {
			if err := ps.Upgrade(ctx); err != nil {
				b.close()
				return nil, err
			}
		}
		b.products = ps
	}
	return b, nil
}

// OpenStores opens the backends of cfg's modules for a command that works
// on the stores (export, import, seed): the configuration checked as
// serve checks it, no metrics and no traces.
func OpenStores(ctx context.Context, cfg config.Config, log *slog.Logger) (*transfer.Stores, error) {
	return openStores(ctx, cfg, log, false, false)
}

// OpenProducts opens the product store alone, for import-legacy: Redis, or
// the embedded database. With dryRun it changes nothing: it neither
// migrates the database (its schema must be current) nor upgrades the
// products' layout in Redis.
func OpenProducts(ctx context.Context, cfg config.Config, log *slog.Logger, dryRun bool) (*transfer.Stores, error) {
	return openStores(ctx, cfg, log, true, dryRun)
}

func openStores(ctx context.Context, cfg config.Config, log *slog.Logger, productsOnly, readOnly bool) (*transfer.Stores, error) {
	p, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	if productsOnly {
		p = p.productsOnly()
	}
	b, err := openBackends(ctx, p, log, instruments{}, readOnly)
	if err != nil {
		return nil, err
	}
	s := &transfer.Stores{Products: b.products, Close: b.close}
	if b.database != nil {
		s.Orders, s.DB, s.Embedded = b.orders, b.db, b.embedded
	}
	return s, nil
}
