package backend

import (
	"log/slog"
	"testing"

	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/testbackend"
)

// PostgreSQL and Redis on the same host are reached over their Unix
// sockets: postgres_url as a URL or a key=value string with
// host=/var/run/postgresql, redis_url as a unix:// URL. The configuration
// accepts them and the connections really go through the sockets.
func TestLocalBackendsOverUnixSockets(t *testing.T) {
	asURL, asKV := testbackend.PostgresSocketURLs(t)
	redisURL := testbackend.RedisSocketURL(t) // a server without a TCP port
	log := slog.New(slog.DiscardHandler)
	for _, pg := range []string{asURL, asKV} {
		cfg := config.Defaults()
		cfg.PostgresURL, cfg.RedisURL, cfg.RedisMode = pg, redisURL, "auto"
		if err := cfg.Validate(); err != nil {
			t.Fatalf("postgres_url %q, redis_url %q: %v", pg, redisURL, err)
		}
		db, err := Postgres(cfg, nil)
		if err != nil {
			t.Fatalf("postgres_url %q: %v", pg, err)
		}
		// inet_server_addr is null for a connection over a Unix socket.
		var overSocket bool
		if err := db.QueryRowContext(t.Context(), "SELECT inet_server_addr() IS NULL").Scan(&overSocket); err != nil {
			t.Fatalf("postgres_url %q: %v", pg, err)
		}
		if !overSocket {
			t.Errorf("postgres_url %q connected over TCP", pg)
		}
		db.Close()
	}

	cfg := config.Defaults()
	cfg.RedisURL, cfg.RedisMode = redisURL, "auto"
	rdb, ping, err := ConnectRedis(t.Context(), cfg, StartupOf(cfg), log, errUnavailable, nil)
	if err != nil {
		t.Fatalf("redis_url %s: %v", redisURL, err)
	}
	defer rdb.Close()
	if err := ping(t.Context()); err != nil {
		t.Fatalf("redis_url %s: %v", redisURL, err)
	}
	if err := rdb.Set(t.Context(), "k", "v", 0).Err(); err != nil || rdb.Get(t.Context(), "k").Val() != "v" {
		t.Errorf("set and get over %s: %v", redisURL, err)
	}
}
