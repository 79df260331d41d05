package app_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airshipltd/airship/app"
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
	cfg := backends[1].config(t) // access control does not depend on the store
	cfg.APIKeys = []string{"key-one", "key-two"}
	s := startWith(t, cfg)
	s.expectError(s.do("POST", "/products", odyssey), 401, "UNAUTHORIZED")
	r := s.do("POST", "/products", odyssey, "Authorization", "Bearer wrong")
	s.expectError(r, 401, "UNAUTHORIZED")
	if r.header.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without WWW-Authenticate")
	}
	s.expectError(s.do("POST", "/products", odyssey, "Authorization", "Basic a2V5LW9uZQ=="), 401, "UNAUTHORIZED")
	s.expect(s.do("POST", "/products", odyssey, "Authorization", "Bearer key-two"), 200, `{"id": "the_odyssey"}`)
	s.expect(s.do("GET", "/products/the_odyssey", ""), 200, odyssey) // reads stay public
	s.expectError(s.do("DELETE", "/products/the_odyssey", ""), 401, "UNAUTHORIZED")
	s.expect(s.do("GET", "/products/the_odyssey", ""), 200, odyssey)
	if r := s.do("DELETE", "/products/the_odyssey", "", "Authorization", "Bearer key-one"); r.status != 204 {
		t.Fatalf("authorized DELETE = %d %s", r.status, r.body)
	}
}

// outageConfig points airship at PostgreSQL and Redis through proxies that
// the test can cut, with production-like timeouts and a fast sweep.
func outageConfig(t *testing.T) (app.Config, *testbackend.Proxy, *testbackend.Proxy) {
	pgURL, _ := url.Parse(testbackend.PostgresURL(t))
	pg := testbackend.NewProxy(t, pgURL.Host)
	pgURL.Host = pg.Addr()
	redisURL, _ := url.Parse(testbackend.RedisURL())
	rp := testbackend.NewProxy(t, redisURL.Host)
	redisURL.Host = rp.Addr()

	c := app.Defaults()
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

func TestStartupWaitsForBackends(t *testing.T) {
	cfg, pg, _ := outageConfig(t)
	pg.Stop()
	cfg.StartupTimeout = time.Second
	_, err := app.New(context.Background(), cfg, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "postgres is unreachable") {
		t.Fatalf("start with PostgreSQL down: %v; want an error saying postgres is unreachable", err)
	}
	cfg.StartupTimeout = 30 * time.Second
	time.AfterFunc(time.Second, pg.Start)
	a, err := app.New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("start with PostgreSQL back after 1s: %v", err)
	}
	a.Close()
}
