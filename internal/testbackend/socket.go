package testbackend

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// PostgresSocketDir is the directory of the PostgreSQL server's Unix
// socket (.s.PGSQL.5432) that the socket tests connect through:
// AIRSHIP_TEST_POSTGRES_SOCKET_DIR, by default /var/run/postgresql, where
// Debian's and the official image's servers put it.
func PostgresSocketDir() string {
	if d := os.Getenv("AIRSHIP_TEST_POSTGRES_SOCKET_DIR"); d != "" {
		return d
	}
	return "/var/run/postgresql"
}

// PostgresSocketURLs creates a fresh, migrated database and returns it as
// the two connection strings of a connection over the server's Unix
// socket: a postgres:// URL with host=DIR and the key=value string with
// host=DIR. The database is dropped when the test ends.
func PostgresSocketURLs(t testing.TB) (asURL, asKV string) {
	t.Helper()
	tcp := PostgresURL(t)
	dir := PostgresSocketDir()
	if _, err := os.Stat(filepath.Join(dir, ".s.PGSQL.5432")); err != nil {
		t.Fatalf("PostgreSQL's Unix socket is not there (%v): %s; it listens on /var/run/postgresql by default "+
			"(unix_socket_directories), else point AIRSHIP_TEST_POSTGRES_SOCKET_DIR at its socket's directory", err, startPostgres)
	}
	u, _ := url.Parse(tcp)
	user := u.User.Username()
	db := u.Path[1:]
	asURL = "postgres:///" + db + "?host=" + url.QueryEscape(dir) + "&user=" + url.QueryEscape(user) + "&sslmode=disable"
	asKV = "host=" + dir + " dbname=" + db + " user=" + user + " sslmode=disable"
	return asURL, asKV
}

// RedisSocketURL starts a Redis server of the test's own that listens on
// a Unix socket only (no TCP port) and returns its unix:// URL; the server
// stops when the test ends.
func RedisSocketURL(t testing.TB) string {
	t.Helper()
	skipInShortMode(t, "a Redis server of its own (redis-server)")
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("this test starts its own Redis server on a Unix socket and needs redis-server: %s", installRedis)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command("redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v; %s", err, installRedis)
	}
	t.Cleanup((&RedisCluster{procs: []*exec.Cmd{cmd}}).stop)
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: sock})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for rdb.Ping(ctx).Err() != nil {
		select {
		case <-ctx.Done():
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server on %s did not answer: %s", sock, log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return "unix://" + sock
}
