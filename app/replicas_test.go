package app_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestReplicasHoldTheLedger: three airship processes on one PostgreSQL
// and one Redis behave as one. Orders with idempotency keys go to any
// replica and every one is retried on another; one replica is killed
// with SIGKILL in the middle of the storm, and the requests it had in
// flight are retried on the others. Afterwards every key has exactly one
// outcome, whichever replica answered; no stock is oversold; and once the
// surviving replicas' recovery sweeps have settled what the dead one held,
// stock + ordered = initial for every product, exactly.
func TestReplicasHoldTheLedger(t *testing.T) {
	env := append(processBackends["postgres+redis"](t),
		"AIRSHIP_REQUEST_TIMEOUT=2s", "AIRSHIP_RESERVATION_TIMEOUT=3s", "AIRSHIP_RECOVERY_INTERVAL=300ms")
	replicas := []*process{startProcess(t, env...), startProcess(t, env...), startProcess(t, env...)}
	var dead atomic.Int32 // 1 + the index of the killed replica
	alive := func(rng *rand.Rand, not int) int {
		for {
			i := rng.IntN(len(replicas))
			if i != not && int(dead.Load()) != i+1 {
				return i
			}
		}
	}

	// r3 is scarce: however slowly the machine serves the storm, it runs
	// out, so that refusals race with orders on every replica.
	ids := []string{"r0", "r1", "r2", "r3"}
	initial := map[string]int64{"r0": 600, "r1": 600, "r2": 600, "r3": 40}
	for _, id := range ids {
		replicas[0].must("POST", "/products", fmt.Sprintf(
			`{"id": %q, "title": "Replica", "passenger_capacity": 1, "maximum_speed": 1, "in_stock": %d}`, id, initial[id]), 200)
	}
	// No replica serves stock from a cache: a change made through one is
	// what the others read at once.
	replicas[1].must("PATCH", "/products/r0", `{"in_stock": 601}`, 200)
	for _, r := range replicas {
		assertJSON(t, r.must("GET", "/products/r0", "", 200),
			`{"id": "r0", "title": "Replica", "passenger_capacity": 1, "maximum_speed": 1, "in_stock": 601}`)
	}
	replicas[2].must("PATCH", "/products/r0", `{"in_stock": 600}`, 200)

	type outcome struct {
		status int
		body   string
	}
	var (
		mu       sync.Mutex
		outcomes = map[string]outcome{} // idempotency key -> its one outcome
		stop     atomic.Bool
		wg       sync.WaitGroup
		sent     atomic.Int64
	)
	// place sends the order under key to replica first, then to any live
	// replica until it gets an outcome (200 or 409 OUT_OF_STOCK);
	// unavailable, in-use and dead replicas are retried.
	place := func(rng *rand.Rand, key, body string, first int) outcome {
		r := first
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			req, _ := http.NewRequest("POST", replicas[r].url+"/orders", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", key)
			sent.Add(1)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				var b strings.Builder
				buf := make([]byte, 512)
				for {
					n, rerr := resp.Body.Read(buf)
					b.Write(buf[:n])
					if rerr != nil {
						break
					}
				}
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200, resp.StatusCode == 409 && strings.Contains(b.String(), "OUT_OF_STOCK"):
					return outcome{resp.StatusCode, b.String()}
				case resp.StatusCode == 503, resp.StatusCode == 409 && strings.Contains(b.String(), "IDEMPOTENCY_KEY_IN_USE"):
				default:
					t.Errorf("POST /orders (key %s) on replica %d: %d %s", key, r, resp.StatusCode, b.String())
					return outcome{resp.StatusCode, b.String()}
				}
			}
			time.Sleep(20 * time.Millisecond)
			r = alive(rng, -1)
		}
		t.Errorf("key %s: no outcome in 60 s", key)
		return outcome{}
	}
	for w := range 12 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for i := 0; !stop.Load(); i++ {
				key := fmt.Sprintf("w%d-%d", w, i)
				var lines []string
				for range 1 + rng.IntN(2) {
					lines = append(lines, fmt.Sprintf(`{"product_id": %q, "price": "10.00", "quantity": %d}`,
						ids[rng.IntN(len(ids))], 1+rng.IntN(3)))
				}
				body := `{"order_details": [` + strings.Join(lines, ", ") + `]}`
				first := place(rng, key, body, alive(rng, -1))
				// The client retries anyway, on another replica: it gets the
				// same outcome.
				again := place(rng, key, body, alive(rng, -1))
				if again != first {
					t.Errorf("key %s: %v, then %v on a retry", key, first, again)
				}
				mu.Lock()
				outcomes[key] = first
				mu.Unlock()
			}
		})
	}
	// Should the test end early (t.Fatal), the workers end with it, before
	// the replicas stop.
	t.Cleanup(func() {
		stop.Store(true)
		wg.Wait()
	})
	time.Sleep(1500 * time.Millisecond)
	dead.Store(3)
	if err := replicas[2].stop(syscall.SIGKILL); err == nil {
		t.Fatal("kill -9 reported a clean exit")
	}
	time.Sleep(1500 * time.Millisecond)
	// The storm goes on until it has both placed and refused orders (r3 has
	// run out), however slowly the machine serves it.
	const exhaust = 60 * time.Second
	both := func() bool {
		mu.Lock()
		defer mu.Unlock()
		var ok, refused bool
		for _, o := range outcomes {
			ok = ok || o.status == 200
			refused = refused || o.status == 409
		}
		return ok && refused
	}
	for deadline := time.Now().Add(exhaust); !both() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	placed := map[int64]string{}
	refused := 0
	for key, o := range outcomes {
		if o.status != 200 {
			refused++
			continue
		}
		var got struct{ ID int64 }
		json.Unmarshal([]byte(o.body), &got)
		if other, dup := placed[got.ID]; dup {
			t.Errorf("keys %s and %s both got order %d", key, other, got.ID)
		}
		placed[got.ID] = key
	}
	t.Logf("%d keys: %d orders, %d out of stock; %d requests sent", len(outcomes), len(placed), refused, sent.Load())
	if len(placed) == 0 || refused == 0 {
		t.Fatalf("%d orders placed and %d refused (storm of up to %s after the kill); the storm should do both", len(placed), refused, exhaust)
	}

	// The reservations of the killed replica's requests are settled by the
	// survivors' sweeps after reservation_timeout: wait for the ledger to
	// balance, then check it exactly.
	r := replicas[0]
	var ordered map[string]int64
	var nOrders int
	balanced := func() (string, bool) {
		ordered, nOrders = map[string]int64{}, 0
		for after := int64(0); ; {
			var page []struct {
				ID    int64
				Lines []struct {
					ProductID string `json:"product_id"`
					Quantity  int64
				} `json:"order_details"`
			}
			json.Unmarshal(r.must("GET", fmt.Sprintf("/orders?limit=1000&after=%d", after), "", 200), &page)
			for _, o := range page {
				nOrders++
				for _, l := range o.Lines {
					ordered[l.ProductID] += l.Quantity
				}
			}
			if len(page) < 1000 {
				break
			}
			after = page[len(page)-1].ID
		}
		var problems []string
		for _, id := range ids {
			var p struct {
				InStock int64 `json:"in_stock"`
			}
			json.Unmarshal(r.must("GET", "/products/"+id, "", 200), &p)
			if p.InStock < 0 || p.InStock+ordered[id] != initial[id] {
				problems = append(problems, fmt.Sprintf("%s: stock %d + ordered %d != %d", id, p.InStock, ordered[id], initial[id]))
			}
		}
		return strings.Join(problems, "; "), len(problems) == 0
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		problems, ok := balanced()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ledger does not balance 30 s after the storm: %s", problems)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if nOrders != len(placed) {
		t.Fatalf("%d orders exist; want %d, one per key that was placed", nOrders, len(placed))
	}
	for id := range placed {
		r.must("GET", fmt.Sprintf("/orders/%d", id), "", 200)
	}
}
