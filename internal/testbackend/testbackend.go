// Package testbackend gives tests their own real backends: a fresh
// PostgreSQL database (migrated, or empty), a private Redis key space, a
// RabbitMQ vhost and a temporary embedded database, each removed when the
// test ends. A backend that is not running fails the test with how to
// start it. In -short mode (make test-short) the tests that need
// PostgreSQL, Redis or RabbitMQ are skipped, so that the unit tests run
// with no services at all.
package testbackend

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // PostgreSQL driver
	"github.com/redis/go-redis/v9"

	"github.com/airshipltd/airship/db/migrations"
	"github.com/airshipltd/airship/internal/sqlite"
)

const (
	startPostgres = "start PostgreSQL with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, " +
		"or point AIRSHIP_TEST_POSTGRES_URL at a server where the user may CREATE DATABASE"
	startRedis = "start Redis with `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no`, " +
		"or point AIRSHIP_TEST_REDIS_URL at a server"
)

// PostgresAdminURL is the server tests create their databases on.
func PostgresAdminURL() string {
	if u := os.Getenv("AIRSHIP_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisURL is the Redis server tests use.
func RedisURL() string {
	if u := os.Getenv("AIRSHIP_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Name returns a random name with the given prefix.
func Name(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// skipInShortMode skips t in -short mode: it needs a service.
func skipInShortMode(t testing.TB, service string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs %s: not run in -short mode", service)
	}
}

// PostgresURL creates a fresh, migrated database and returns its URL; the
// database is dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := EmptyPostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pg, err := sqlx.Open("postgres", u)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	defer pg.Close()
	if err := migrate(ctx, pg.DB, migrations.Postgres); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	return u
}

// EmptyPostgresURL creates a fresh database without migrating it and
// returns its URL; the database is dropped when the test ends.
func EmptyPostgresURL(t testing.TB) string {
	t.Helper()
	skipInShortMode(t, "PostgreSQL")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := sqlx.Open("postgres", PostgresAdminURL())
	if err != nil {
		t.Fatalf("PostgreSQL: %v; %s", err, startPostgres)
	}
	defer admin.Close()
	if err := admin.PingContext(ctx); err != nil {
		t.Fatalf("PostgreSQL at %s is not reachable: %v; %s", redactURL(PostgresAdminURL()), err, startPostgres)
	}
	name := Name("airship_test_")
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sqlx.Open("postgres", PostgresAdminURL())
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer a.Close()
		if _, err := a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, _ := url.Parse(PostgresAdminURL())
	u.Path = "/" + name
	return u.String()
}

// Postgres returns a pool on a fresh, migrated database.
func Postgres(t testing.TB) *sqlx.DB {
	t.Helper()
	pg, err := sqlx.Open("postgres", PostgresURL(t))
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	pg.SetMaxOpenConns(16)
	t.Cleanup(func() { pg.Close() })
	return pg
}

// RedisPrefix returns a fresh key prefix; every key under it is deleted
// when the test ends.
func RedisPrefix(t testing.TB) string {
	t.Helper()
	skipInShortMode(t, "Redis")
	opts, err := redis.ParseURL(RedisURL())
	if err != nil {
		t.Fatalf("AIRSHIP_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		t.Fatalf("Redis at %s is not reachable: %v; %s", redactURL(RedisURL()), err, startRedis)
	}
	prefix := Name("airship-test:") + ":"
	t.Cleanup(func() {
		defer rdb.Close()
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean Redis prefix %s: %v", prefix, err)
			return
		}
		for len(keys) > 0 {
			n := min(len(keys), 1000)
			if err := rdb.Unlink(ctx, keys[:n]...).Err(); err != nil {
				t.Errorf("clean Redis prefix %s: %v", prefix, err)
				return
			}
			keys = keys[n:]
		}
	})
	return prefix
}

// Redis returns a client and a fresh key prefix, cleaned up at the end.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	prefix := RedisPrefix(t)
	opts, _ := redis.ParseURL(RedisURL())
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb, prefix
}

// SQLite returns a migrated embedded database in a temporary directory.
func SQLite(t testing.TB) *sqlx.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "airship.db")
	sdb, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open embedded database: %v", err)
	}
	t.Cleanup(func() { sdb.Close() })
	if err := migrate(context.Background(), sdb.DB, migrations.SQLite); err != nil {
		t.Fatalf("migrate embedded database: %v", err)
	}
	return sdb
}

// SQLiteReads returns a read pool of the embedded database db (which
// SQLite returned), as airship serve opens one, closed at the end.
func SQLiteReads(t testing.TB, db *sqlx.DB) *sqlx.DB {
	t.Helper()
	reads, err := sqlite.OpenReads(context.Background(), db)
	if err != nil || reads == nil {
		t.Fatalf("open the embedded database's read pool: %v", err)
	}
	t.Cleanup(func() { reads.Close() })
	return reads
}

// migrate applies every migration of the dialect to db.
func migrate(ctx context.Context, db *sql.DB, d migrations.Dialect) error {
	p, err := migrations.Provider(db, d, nil)
	if err != nil {
		return err
	}
	return migrations.Up(ctx, db, d, p, nil)
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// LegacySchema is the old shop's orders schema as its alembic migration
// (revision dd33cb03d01f) created it, with alembic's version table.
const LegacySchema = `
CREATE TABLE orders (
    id SERIAL NOT NULL,
    created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY (id)
);
CREATE TABLE order_details (
    id SERIAL NOT NULL,
    order_id INTEGER NOT NULL,
    product_id VARCHAR NOT NULL,
    price NUMERIC(18, 2) NOT NULL,
    quantity INTEGER NOT NULL,
    created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT fk_order_details_orders FOREIGN KEY(order_id) REFERENCES orders (id)
);
CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version (version_num) VALUES ('dd33cb03d01f');
`

// LegacyOrders are orders as the old shop left them in LegacySchema:
// naive timestamps in UTC (one to the microsecond), a gap where order 3
// was deleted, a line of a product that may no longer exist, and the
// sequences where the old shop left them.
const LegacyOrders = `
INSERT INTO orders (id, created_at, updated_at) VALUES
    (1, '2019-05-01 10:00:00.123456', '2019-05-01 10:00:00.123456'),
    (2, '2019-05-02 11:30:00', '2019-05-03 09:15:00'),
    (4, '2020-01-01 00:00:00', '2020-01-01 00:00:00');
INSERT INTO order_details (id, order_id, product_id, price, quantity, created_at, updated_at) VALUES
    (1, 1, 'the_odyssey', 100000.99, 1, '2019-05-01 10:00:00.123456', '2019-05-01 10:00:00.123456'),
    (2, 2, 'the_odyssey', 5, 2, '2019-05-02 11:30:00', '2019-05-03 09:15:00'),
    (3, 2, 'the_enigma', 99.9, 1, '2019-05-02 11:30:00', '2019-05-02 11:30:00'),
    (5, 4, 'the_enigma', 0, 3, '2020-01-01 00:00:00', '2020-01-01 00:00:00');
SELECT setval('orders_id_seq', 4), setval('order_details_id_seq', 5);
`

// LegacyPostgresURL creates a fresh database holding LegacySchema, then
// runs each of the statements (rows of the old shop, changes to its
// schema) in it, and returns its URL; the database is dropped when the
// test ends.
func LegacyPostgresURL(t testing.TB, statements ...string) string {
	t.Helper()
	u := EmptyPostgresURL(t)
	pg, err := sql.Open("postgres", u)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	defer pg.Close()
	for _, s := range append([]string{LegacySchema}, statements...) {
		if _, err := pg.Exec(s); err != nil {
			t.Fatalf("build the old schema: %v\n%s", err, s)
		}
	}
	return u
}

// FreeAddr returns a loopback address with a port no one listens on now,
// for a process the test starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
