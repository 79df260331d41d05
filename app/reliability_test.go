package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airshipltd/airship/app"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/testbackend"
)

const orderOfOne = `{"order_details": [{"product_id": "the_odyssey", "price": "100000.99", "quantity": 1}]}`

func TestIdempotentOrders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := start(t, b)
		s.expect(s.do("POST", "/products", odyssey), 200, "")

		first := s.do("POST", "/orders", orderOfOne, "Idempotency-Key", "k-1")
		s.expect(first, 200, `{"id": 1}`)
		again := s.do("POST", "/orders", orderOfOne, "Idempotency-Key", "k-1")
		s.expect(again, 200, `{"id": 1}`)
		if again.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replayed response lacks Idempotent-Replayed: %v", again.header)
		}
		// The same request in other words is the same request.
		s.expect(s.do("POST", "/orders", `{"order_details":[{"quantity":1,"price":100000.99,"product_id":"the_odyssey"}]}`,
			"Idempotency-Key", "k-1"), 200, `{"id": 1}`)
		s.expectError(s.do("POST", "/orders", strings.Replace(orderOfOne, `"quantity": 1`, `"quantity": 2`, 1),
			"Idempotency-Key", "k-1"), 422, "IDEMPOTENCY_KEY_REUSED", "k-1")
		s.expectError(s.do("POST", "/orders", orderOfOne, "Idempotency-Key", "has space"), 400, "BAD_REQUEST", "Idempotency-Key")

		// Concurrent requests with one key create one order.
		var wg sync.WaitGroup
		bodies := make([]string, 20)
		for i := range bodies {
			wg.Go(func() {
				r := s.do("POST", "/orders", orderOfOne, "Idempotency-Key", "k-2")
				if r.status != 200 {
					t.Errorf("concurrent duplicate: %d %s", r.status, r.body)
				}
				bodies[i] = string(r.body)
			})
		}
		wg.Wait()
		for _, body := range bodies {
			if body != bodies[0] {
				t.Fatalf("concurrent duplicates got different responses: %q and %q", bodies[0], body)
			}
		}
		s.expect(s.do("GET", "/products/the_odyssey", ""), 200, strings.Replace(odyssey, ": 10}", ": 8}", 1))
		var list []any
		json.Unmarshal(s.do("GET", "/orders", "").body, &list)
		if len(list) != 2 {
			t.Fatalf("%d orders; want 2 (one per key)", len(list))
		}

		// A refusal is an answer too: the retry gets it again.
		big := strings.Replace(orderOfOne, `"quantity": 1`, `"quantity": 100`, 1)
		s.expectError(s.do("POST", "/orders", big, "Idempotency-Key", "k-3"), 409, "OUT_OF_STOCK")
		s.expect(s.do("PATCH", "/products/the_odyssey", `{"in_stock": 1000}`), 200, "")
		s.expectError(s.do("POST", "/orders", big, "Idempotency-Key", "k-3"), 409, "OUT_OF_STOCK")
	})
}

func TestAPIKeys(t *testing.T) {
	const one, two = "key-one-0123456789abcdef", "key-two-0123456789abcdef"
	cfg := backends[1].config(t) // access control does not depend on the store
	cfg.APIKeys = []string{one, two}
	s := startWith(t, cfg)
	s.expectError(s.do("POST", "/products", odyssey), 401, "UNAUTHORIZED")
	r := s.do("POST", "/products", odyssey, "Authorization", "Bearer wrong")
	s.expectError(r, 401, "UNAUTHORIZED")
	if r.header.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without WWW-Authenticate")
	}
	for _, h := range []string{"Basic a2V5LW9uZQ==", "Bearer", "Bearer ", "Bearer " + one + " extra", one, "Bearer" + one} {
		s.expectError(s.do("POST", "/products", odyssey, "Authorization", h), 401, "UNAUTHORIZED")
	}
	s.expect(s.do("POST", "/products", odyssey, "Authorization", "Bearer "+two), 200, `{"id": "the_odyssey"}`)
	s.expect(s.do("GET", "/products/the_odyssey", ""), 200, odyssey) // reads stay public
	s.expectError(s.do("DELETE", "/products/the_odyssey", ""), 401, "UNAUTHORIZED")
	s.expect(s.do("GET", "/products/the_odyssey", ""), 200, odyssey)
	// The scheme is case-insensitive (RFC 9110 11.1).
	s.expect(s.do("PATCH", "/products/the_odyssey", `{"in_stock": 11}`, "Authorization", "bearer "+one), 200, "")
	s.expect(s.do("PATCH", "/products/the_odyssey", `{"in_stock": 12}`, "Authorization", "BEARER  "+one), 200, "")
	if r := s.do("DELETE", "/products/the_odyssey", "", "Authorization", "Bearer "+one); r.status != 204 {
		t.Fatalf("authorized DELETE = %d %s", r.status, r.body)
	}
}

// TestBlankAPIKeysRefused: a key list with a blank or short entry is a
// start-up error; it used to be logged as keys while writes stayed open.
func TestBlankAPIKeysRefused(t *testing.T) {
	for _, keys := range []string{",", " ", ", ,", "short", "key-one-0123456789abcdef,"} {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a server that starts is killed
		defer cancel()
		cmd := exec.CommandContext(ctx, binary(t), "serve")
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), "AIRSHIP_API_KEYS="+keys, "AIRSHIP_DATA_DIR="+t.TempDir(), "AIRSHIP_ADDR=127.0.0.1:0")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "api_keys: entry") {
			t.Fatalf("serve with AIRSHIP_API_KEYS=%q: %v\n%s\nwant a non-zero exit naming the bad entry", keys, err, out)
		}
		if strings.Contains(string(out), "starting airship") {
			t.Fatalf("AIRSHIP_API_KEYS=%q: the configuration was logged before it was refused:\n%s", keys, out)
		}
	}
}

// outageConfig points airship at PostgreSQL and Redis through proxies that
// the test can cut, with production-like timeouts and a fast sweep.
func outageConfig(t *testing.T) (config.Config, *testbackend.Proxy, *testbackend.Proxy) {
	pgURL, _ := url.Parse(testbackend.PostgresURL(t))
	pg := testbackend.NewProxy(t, pgURL.Host)
	pgURL.Host = pg.Addr()
	redisURL, _ := url.Parse(testbackend.RedisURL())
	rp := testbackend.NewProxy(t, redisURL.Host)
	redisURL.Host = rp.Addr()

	c := config.Defaults()
	c.MetricsAddr = "127.0.0.1:0"
	c.PostgresURL, c.RedisURL = pgURL.String(), redisURL.String()
	c.RedisPrefix = testbackend.RedisPrefix(t)
	c.RequestTimeout = 2 * time.Second
	c.BackendTimeout = 500 * time.Millisecond
	c.ReservationTimeout = 3 * time.Second
	c.RecoveryInterval = 300 * time.Millisecond
	return c, pg, rp
}

// expectUnavailable checks a request gets 503 within the request timeout
// plus a second of slack.
func (s *server) expectUnavailable(method, path, body string) {
	s.t.Helper()
	began := time.Now()
	r := s.do(method, path, body)
	s.expectError(r, 503, "SERVICE_UNAVAILABLE")
	if took, bound := time.Since(began), s.cfg.RequestTimeout+time.Second; took > bound {
		s.t.Fatalf("%s %s took %s to fail; bound %s", method, path, took, bound)
	}
}

// eventually polls a request until it gets the status.
func (s *server) eventually(method, path string, status int) response {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := s.do(method, path, "")
		if r.status == status {
			return r
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s %s still %d %s after 20s; want %d", method, path, r.status, r.body, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestOutages(t *testing.T) {
	cfg, pg, rdb := outageConfig(t)
	s := startWith(t, cfg)
	s.expect(s.do("POST", "/products", odyssey), 200, "")
	s.expect(s.do("POST", "/orders", orderOfOne), 200, `{"id": 1}`)

	t.Run("redis refuses", func(t *testing.T) {
		s := s.on(t)
		rdb.Stop()
		s.expectUnavailable("GET", "/products/the_odyssey", "")
		s.expectUnavailable("POST", "/orders", orderOfOne)
		s.expectUnavailable("GET", "/orders/1", "")
		s.expectUnavailable("GET", "/readyz", "")
		s.expect(s.do("GET", "/orders", ""), 200, "") // needs PostgreSQL only
		rdb.Start()
		s.eventually("GET", "/products/the_odyssey", 200)
		s.eventually("GET", "/readyz", 200)
	})
	t.Run("redis hangs", func(t *testing.T) {
		s := s.on(t)
		rdb.Blackhole()
		s.expectUnavailable("GET", "/products/the_odyssey", "")
		s.expectUnavailable("POST", "/orders", orderOfOne)
		rdb.Start()
		s.eventually("GET", "/products/the_odyssey", 200)
	})
	t.Run("postgres refuses", func(t *testing.T) {
		s := s.on(t)
		pg.Stop()
		s.expectUnavailable("GET", "/orders", "")
		s.expectUnavailable("GET", "/orders/1", "")
		// The stock taken for this order goes back once the recovery sweep
		// can settle its reservation.
		s.expectUnavailable("POST", "/orders", orderOfOne)
		s.expect(s.do("GET", "/products/the_odyssey", ""), 200, "") // needs Redis only
		pg.Start()
		s.eventually("GET", "/orders", 200)
		deadline := time.Now().Add(20 * time.Second)
		for {
			r := s.do("GET", "/products/the_odyssey", "")
			if strings.Contains(string(r.body), `"in_stock":9`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stock never came back after the failed order: %s", r.body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	t.Run("postgres hangs", func(t *testing.T) {
		s := s.on(t)
		pg.Blackhole()
		s.expectUnavailable("GET", "/orders", "")
		pg.Start()
		s.eventually("GET", "/orders", 200)
	})
	var list []any
	json.Unmarshal(s.do("GET", "/orders", "").body, &list)
	if len(list) != 1 {
		t.Fatalf("%d orders after the outages; want 1", len(list))
	}
}

// TestStartupWaitsForBackends: unreachable backends are retried for the
// whole startup_timeout (not until the next backoff would pass it), a
// backend that comes up before the deadline is used, and the error says
// how long airship waited.
func TestStartupWaitsForBackends(t *testing.T) {
	cfg, pg, _ := outageConfig(t)
	pg.Stop()
	cfg.StartupTimeout = 3 * time.Second
	began := time.Now()
	_, err := app.New(t.Context(), cfg, testLogger(t))
	waited := time.Since(began)
	if err == nil || !strings.Contains(err.Error(), "postgres is unreachable after 3") {
		t.Fatalf("start with PostgreSQL down: %v; want an error saying postgres is unreachable after 3s", err)
	}
	if waited < cfg.StartupTimeout {
		t.Fatalf("gave up after %s; startup_timeout is %s", waited, cfg.StartupTimeout)
	}

	// Up 2 s into a 3 s timeout: still seen (backoff steps of 0.1, 0.2,
	// 0.4, 0.8 s put the next try past the deadline; it must be clamped).
	time.AfterFunc(2*time.Second, pg.Start)
	a, err := app.New(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("start with PostgreSQL back 2s into a 3s timeout: %v", err)
	}
	a.Close()
}

// TestStartupFailsFastOnWrongSettings: a backend that answers but refuses
// the settings (no such database, a bad Redis database index or password)
// is not retried: airship exits at once with the server's own error.
func TestStartupFailsFastOnWrongSettings(t *testing.T) {
	admin, _ := url.Parse(testbackend.PostgresAdminURL())
	missingDB := *admin
	missingDB.Path = "/" + testbackend.Name("airship_missing_")
	redisURL, _ := url.Parse(testbackend.RedisURL())
	badIndex := *redisURL
	badIndex.Path = "/99"
	badPassword := *redisURL
	badPassword.User = url.UserPassword("airship-no-such-user", "not-the-password")
	cases := []struct {
		name, pg, redis, want string
	}{
		{"missing database", missingDB.String(), testbackend.RedisURL(), "does not exist"},
		{"redis database index", testbackend.PostgresURL(t), badIndex.String(), "DB index is out of range"},
		{"redis user and password", testbackend.PostgresURL(t), badPassword.String(), "WRONGPASS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Defaults()
			cfg.PostgresURL, cfg.RedisURL = c.pg, c.redis
			cfg.StartupTimeout = time.Minute
			began := time.Now()
			_, err := app.New(t.Context(), cfg, testLogger(t))
			if err == nil || !strings.Contains(err.Error(), "not retried") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("start: %v; want a permanent error mentioning %q", err, c.want)
			}
			// Well under the minute it would have retried an outage for.
			if took := time.Since(began); took > 20*time.Second {
				t.Fatalf("gave up after %s: the wrong setting was retried like an outage", took)
			}
		})
	}
}

// records keeps the log records of a test.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.list = append(r.list, rec)
	r.mu.Unlock()
	return nil
}

// count returns how many records at level or above have a message
// containing msg ("" for any).
func (r *records) count(level slog.Level, msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.list {
		if rec.Level >= level && strings.Contains(rec.Message, msg) {
			n++
		}
	}
	return n
}

func (r *records) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rec := range r.list {
		fmt.Fprintf(&b, "%s %s\n", rec.Level, rec.Message)
	}
	return b.String()
}

// TestOutageLoggedOnce: a backend outage is logged when it starts and when
// it ends, not once per refused request (which logged an ERROR and a WARN
// line for every 503).
func TestOutageLoggedOnce(t *testing.T) {
	cfg, _, rdb := outageConfig(t)
	cfg.RecoveryInterval = time.Hour // only the requests log
	var rec records
	s := startLogged(t, cfg, slog.New(&rec))
	s.expect(s.do("POST", "/products", odyssey), 200, "")
	for round := 1; round <= 2; round++ {
		rdb.Stop()
		for range 40 {
			s.expectError(s.do("GET", "/products/the_odyssey", ""), 503, "SERVICE_UNAVAILABLE")
		}
		if n := rec.count(slog.LevelWarn, "backend unavailable"); n != round {
			t.Fatalf("round %d: %d 'backend unavailable' warnings after %d refused requests; want %d\n%s", round, n, 40*round, round, rec.dump())
		}
		if n := rec.count(slog.LevelError, ""); n != 0 {
			t.Fatalf("%d error lines during an outage\n%s", n, rec.dump())
		}
		if n := rec.count(slog.LevelDebug, "request refused"); n < 40*round {
			t.Fatalf("%d debug lines for %d refused requests", n, 40*round)
		}
		rdb.Start()
		deadline := time.Now().Add(20 * time.Second)
		for rec.count(slog.LevelInfo, "backends available again") < round {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the end of the outage was not logged\n%s", round, rec.dump())
			}
			time.Sleep(50 * time.Millisecond)
		}
		s.eventually("GET", "/products/the_odyssey", 200)
	}
	if n := rec.count(slog.LevelWarn, ""); n > 2*3 {
		t.Fatalf("%d warnings for two short outages; want a few\n%s", n, rec.dump())
	}
}
