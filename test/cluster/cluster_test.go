// Package cluster_test proves the products store on the Redis topologies
// airship supports besides one server, each started by the test on
// loopback ports: a Redis Cluster of three masters and three replicas (the
// products and orders contract suites, keys spread over every master,
// listing while writing, the upgrade of every master's keys, and a
// failover in the middle of a storm of orders), and a primary found
// through a Sentinel.
package cluster_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/airshipltd/airship/internal/backend"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/errs"
	"github.com/airshipltd/airship/internal/testbackend"
	"github.com/airshipltd/airship/orders/orderstest"
	"github.com/airshipltd/airship/orders/sqlstore"
	"github.com/airshipltd/airship/products"
	"github.com/airshipltd/airship/products/productstest"
	"github.com/airshipltd/airship/products/redisstore"
)

// TestMain fails the package if a test leaves goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// open returns a client of the cluster opened as airship opens it
// (backend.Redis in cluster mode, production timeouts).
func open(t *testing.T, c *testbackend.RedisCluster) redis.UniversalClient {
	t.Helper()
	cfg := config.Defaults()
	cfg.RedisURL, cfg.RedisMode = c.URL(), "cluster"
	rdb, err := backend.Redis(cfg, "cluster")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// TestRedisCluster runs every case on one cluster; the failover runs last.
func TestRedisCluster(t *testing.T) {
	c := testbackend.NewRedisCluster(t)
	rdb := open(t, c)
	newStore := func(t *testing.T) *redisstore.Store {
		return redisstore.New(rdb, testbackend.Name("airship-cluster:")+":")
	}

	t.Run("Detected", func(t *testing.T) {
		cfg := config.Defaults()
		cfg.RedisURL = c.URL()
		if mode, err := backend.DetectRedisMode(t.Context(), cfg); err != nil || mode != "cluster" {
			t.Fatalf("DetectRedisMode = %q, %v; want cluster", mode, err)
		}
	})
	t.Run("ProductsContract", func(t *testing.T) {
		productstest.Run(t, func(t *testing.T) products.Store { return newStore(t) })
		productstest.RunBulk(t, func(t *testing.T) products.BulkStore { return newStore(t) })
	})
	t.Run("OrdersContract", func(t *testing.T) {
		orderstest.Run(t, func(t *testing.T) orderstest.Stores {
			return orderstest.Stores{Orders: sqlstore.NewPostgres(testbackend.Postgres(t)), Products: newStore(t)}
		})
	})
	t.Run("EveryMasterListedWhileWriting", func(t *testing.T) { testListAcrossMasters(t, c, newStore(t)) })
	t.Run("UpgradeEveryMaster", func(t *testing.T) { testUpgrade(t, rdb) })
	t.Run("ImportLegacyFromEveryMaster", func(t *testing.T) { testImportLegacy(t, rdb, c.URL()) })
	t.Run("FailoverMidStorm", func(t *testing.T) { testFailover(t, c, newStore(t)) })
}

// walk follows a listing from the first page to the last and counts how
// often each product is listed.
func walk(t *testing.T, s products.Store, limit int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for cursor := ""; ; {
		page, err := s.List(t.Context(), cursor, limit)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, p := range page.Products {
			seen[p.ID]++
		}
		if cursor = page.Next; cursor == "" {
			return seen
		}
	}
}

// testListAcrossMasters: products live on all three masters, and a walk
// of the listing while other products are created and deleted lists every
// product that exists throughout exactly once, and nothing twice.
func testListAcrossMasters(t *testing.T, c *testbackend.RedisCluster, s *redisstore.Store) {
	ctx := t.Context()
	const n = 600
	for i := range n {
		if err := s.Create(ctx, products.Product{ID: fmt.Sprintf("stay-%04d", i), Title: "Stay", InStock: 1}); err != nil {
			t.Fatal(err)
		}
	}
	masters := c.Masters(t)
	perMaster := map[string]int{}
	for _, m := range masters {
		node := redis.NewClient(&redis.Options{Addr: m})
		keys, err := node.Keys(ctx, "*product:{stay-*").Result() // a test cluster of a few thousand keys
		node.Close()
		if err != nil {
			t.Fatal(err)
		}
		perMaster[m] = len(keys)
	}
	total := 0
	for _, m := range masters {
		if perMaster[m] == 0 {
			t.Fatalf("no product on master %s: %v", m, perMaster)
		}
		total += perMaster[m]
	}
	if total != n {
		t.Fatalf("the masters hold %d products; want %d (%v)", total, n, perMaster)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("churn-%d-%d", w, i%50)
				if err := s.Create(ctx, products.Product{ID: id, Title: "Churn", InStock: 1}); err != nil && !errors.Is(err, products.ErrExists) {
					t.Errorf("Create: %v", err)
				}
				if err := s.Delete(ctx, fmt.Sprintf("churn-%d-%d", w, (i+25)%50)); err != nil && !errors.Is(err, products.ErrNotFound) {
					t.Errorf("Delete: %v", err)
				}
			}
		})
	}
	for round := range 3 {
		seen := walk(t, s, 7+round*20)
		for i := range n {
			if id := fmt.Sprintf("stay-%04d", i); seen[id] != 1 {
				t.Errorf("round %d: %s listed %d times; want once", round, id, seen[id])
			}
		}
		for id, k := range seen {
			if k > 1 {
				t.Errorf("round %d: %s listed %d times", round, id, k)
			}
		}
	}
	close(stop)
	wg.Wait()
	// Quiet again: the index holds exactly the products that exist.
	seen := walk(t, s, 100)
	for id := range seen {
		if ok, err := s.Exists(ctx, id); err != nil || !ok {
			t.Errorf("listed %s, which does not exist (%v)", id, err)
		}
	}
	for w := range 4 {
		for i := range 50 {
			id := fmt.Sprintf("churn-%d-%d", w, i)
			if ok, _ := s.Exists(ctx, id); ok && seen[id] != 1 {
				t.Errorf("%s exists but is listed %d times", id, seen[id])
			}
		}
	}
}

// testUpgrade: products written before the id index existed, on every
// master, are all indexed by Upgrade.
func testUpgrade(t *testing.T, rdb redis.UniversalClient) {
	ctx := t.Context()
	prefix := testbackend.Name("airship-cluster:") + ":"
	const n = 900
	pipe := rdb.Pipeline()
	for i := range n {
		pipe.HSet(ctx, fmt.Sprintf("%sproduct:{old%04d}", prefix, i), "title", "Old", "passenger_capacity", "1",
			"maximum_speed", "2", "in_stock", "3")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	s := redisstore.New(rdb, prefix)
	if err := s.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	seen := walk(t, s, 250)
	if len(seen) != n {
		t.Fatalf("listed %d upgraded products; want %d", len(seen), n)
	}
	p, err := s.Get(ctx, "old0042")
	if err != nil || p.Incarnation == "" {
		t.Fatalf("upgraded product = %+v, %v; want an incarnation", p, err)
	}
}

// testFailover: a storm of reservations and product creations over every
// master; in its middle a replica takes over one master (CLUSTER
// FAILOVER). Every failure is Unavailable (503 at the gateway) or a
// refusal; every acknowledged write is there afterwards; once uncertain
// reservations are released, stock + committed = initial for every
// product: nothing oversold, nothing lost.
func testFailover(t *testing.T, c *testbackend.RedisCluster, s *redisstore.Store) {
	ctx := t.Context()
	const nProducts, initial = 24, 1_000_000
	ids := make([]string, nProducts)
	for i := range ids {
		ids[i] = fmt.Sprintf("storm-%02d", i)
		if err := s.Create(ctx, products.Product{ID: ids[i], Title: "Storm", InStock: initial}); err != nil {
			t.Fatal(err)
		}
	}

	var (
		mu          sync.Mutex
		committed   = map[string]int64{}
		uncommitted []products.Reservation
		uncertain   []products.Reservation
		created     []string
		unavailable atomic.Int64
		acked       atomic.Int64
		stop        atomic.Bool
		wg          sync.WaitGroup
	)
	allowed := func(op string, err error) bool {
		switch errs.Of(err) {
		case errs.Unavailable:
			unavailable.Add(1)
			return true
		case errs.OutOfStock, errs.ProductExists:
			return true
		}
		t.Errorf("%s failed with %v (kind %s); want only Unavailable or a refusal", op, err, errs.Of(err))
		return false
	}
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; !stop.Load(); i++ {
				if i%5 == 4 {
					id := fmt.Sprintf("new-%d-%d", w, i)
					if err := s.Create(ctx, products.Product{ID: id, Title: "New", InStock: 1}); err == nil {
						mu.Lock()
						created = append(created, id)
						mu.Unlock()
					} else {
						allowed("Create", err)
					}
					continue
				}
				a, b := ids[rng.IntN(nProducts)], ids[rng.IntN(nProducts)]
				r := products.Reservation{ID: fmt.Sprintf("r-%d-%d", w, i), Deadline: time.Now().Add(time.Hour),
					Lines: []products.Line{{ProductID: a, Quantity: 1}, {ProductID: b, Quantity: 1}}}
				if _, err := s.Reserve(ctx, r); err != nil {
					if allowed("Reserve", err) && errs.Of(err) == errs.Unavailable {
						mu.Lock()
						uncertain = append(uncertain, r)
						mu.Unlock()
					}
					continue
				}
				acked.Add(1)
				mu.Lock()
				for _, l := range products.MergeLines(r.Lines) {
					committed[l.ProductID] += l.Quantity
				}
				mu.Unlock()
				if err := s.Commit(ctx, r); err != nil {
					allowed("Commit", err)
					mu.Lock()
					uncommitted = append(uncommitted, r)
					mu.Unlock()
				}
			}
		})
	}
	// Should the test end early (t.Fatal), the workers end with it.
	t.Cleanup(func() {
		stop.Store(true)
		wg.Wait()
	})

	time.Sleep(time.Second)
	victim := masterOf(t, c, s, ids[0])
	before := acked.Load()
	promoted := c.Failover(t, victim)
	failedOver := time.Now()
	// The storm goes on for 1.5 s after the failover and until a
	// reservation is acknowledged after it, however slowly the machine
	// serves it.
	const recovery = 30 * time.Second
	for deadline := failedOver.Add(recovery); acked.Load() == before || time.Since(failedOver) < 1500*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatalf("no reservation acknowledged in %s after the failover of %s to %s (%d before; %d unavailable errors)",
				recovery, victim, promoted, before, unavailable.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	after := acked.Load()
	t.Logf("failover of %s to %s: %d reservations acknowledged before, %d after; %d unavailable errors",
		victim, promoted, before, after-before, unavailable.Load())
	if before == 0 || after == before {
		t.Fatalf("reservations acknowledged: %d before the failover, %d after; the storm exercised nothing", before, after-before)
	}
	c.WaitHealthy(t)

	for _, r := range uncommitted {
		if err := s.Commit(ctx, r); err != nil {
			t.Fatalf("Commit after the failover: %v", err)
		}
	}
	for _, r := range uncertain {
		if err := s.Release(ctx, r); err != nil {
			t.Fatalf("Release after the failover: %v", err)
		}
	}
	for _, id := range ids {
		p, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if p.InStock < 0 || p.InStock+committed[id] != initial {
			t.Errorf("%s: stock %d + committed %d = %d; want %d", id, p.InStock, committed[id], p.InStock+committed[id], initial)
		}
	}
	if left, err := s.Expired(ctx, time.Now().Add(2*time.Hour), 10); err != nil || len(left) != 0 {
		t.Errorf("reservations left: %+v, %v", left, err)
	}
	seen := walk(t, s, 100)
	for _, id := range append(created, ids...) {
		if ok, err := s.Exists(ctx, id); err != nil || !ok {
			t.Errorf("acknowledged product %s lost in the failover (%v)", id, err)
		}
		if seen[id] != 1 {
			t.Errorf("acknowledged product %s listed %d times; want once", id, seen[id])
		}
	}
	if len(created) == 0 {
		t.Error("no product creation was acknowledged")
	}
}

// masterOf returns the address of the master that holds product id.
func masterOf(t *testing.T, c *testbackend.RedisCluster, s *redisstore.Store, id string) string {
	t.Helper()
	ctx := t.Context()
	for _, m := range c.Masters(t) {
		node := redis.NewClient(&redis.Options{Addr: m})
		keys, err := node.Keys(ctx, "*product:{"+id+"}").Result()
		node.Close()
		if err == nil && len(keys) == 1 && strings.HasSuffix(keys[0], "{"+id+"}") {
			return m
		}
	}
	t.Fatalf("no master holds product %s", id)
	return ""
}
