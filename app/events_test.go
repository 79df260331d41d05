package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/airshipltd/airship/events/eventstest"
	"github.com/airshipltd/airship/internal/config"
	"github.com/airshipltd/airship/internal/testbackend"
)

// These tests run airship with events on against the real RabbitMQ, each
// in a vhost of its own, and consume the events as the old system's
// consumers did.

// arrival bounds how long an event may take to reach a consumer: generous,
// for a loaded machine; it checks delivery, not speed.
const arrival = 60 * time.Second

// withEvents turns events on, publishing to the broker at amqpURL, with a
// short poll interval.
func withEvents(cfg config.Config, amqpURL string) config.Config {
	eventsOn(amqpURL)(&cfg)
	return cfg
}

// eventsOn is the configuration option that turns events on: for a
// backend's config, so that in split mode the orders module publishes.
func eventsOn(amqpURL string) func(*config.Config) {
	return func(c *config.Config) {
		c.AMQPURL = amqpURL
		c.EventsInterval = 200 * time.Millisecond
	}
}

// allEvents binds a queue to every event of the exchange.
func allEvents(t *testing.T, amqpURL string) *eventstest.Consumer {
	return eventstest.Bind(t, amqpURL, "orders.events", "all-order-events", "#")
}

// orderID reads the order id of an event's body.
func orderID(t *testing.T, m eventstest.Message) int64 {
	t.Helper()
	var b struct {
		Order struct {
			ID int64 `json:"id"`
		} `json:"order"`
	}
	if err := json.Unmarshal(m.Body, &b); err != nil || b.Order.ID == 0 {
		t.Fatalf("event body %s: %v", m.Body, err)
	}
	return b.Order.ID
}

// TestOldConsumerGetsOrderCreated: the queue the old products service
// declared for its handler of order_created receives airship's event
// after POST /orders, with the old body, and the payload reads as the old
// handler read it. A retry with the same Idempotency-Key places no order
// and sends no event.
func TestOldConsumerGetsOrderCreated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		amqpURL := testbackend.AMQPURL(t)
		products := eventstest.NamekoHandler(t, amqpURL, "orders", "order_created", "products", "handle_order_created")
		if products.Queue != "evt-orders-order_created--products.handle_order_created" {
			t.Fatalf("queue %s", products.Queue)
		}
		s := startWith(t, b.config(t, eventsOn(amqpURL)))
		s.expect(s.do("POST", "/products", odyssey), 200, "")
		s.expect(s.do("POST", "/orders", orderOfOne), 200, `{"id": 1}`)
		s.expect(s.do("POST", "/orders", orderOfOne, "Idempotency-Key", "k"), 200, `{"id": 2}`)
		s.expect(s.do("POST", "/orders", orderOfOne, "Idempotency-Key", "k"), 200, `{"id": 2}`)
		s.expect(s.do("POST", "/orders", `{"order_details": [{"product_id": "the_odyssey", "price": 7, "quantity": 2}]}`), 200, `{"id": 3}`)

		got := products.AwaitCount(t, 3, arrival)
		if len(got) != 3 {
			var bodies []string
			for _, m := range got {
				bodies = append(bodies, string(m.Body))
			}
			t.Fatalf("%d events; want exactly 3 (the retry sends none):\n  %s", len(got), strings.Join(bodies, "\n  "))
		}
		want := []string{
			`{"order":{"id":1,"order_details":[{"id":1,"product_id":"the_odyssey","price":"100000.99","quantity":1}]}}`,
			`{"order":{"id":2,"order_details":[{"id":2,"product_id":"the_odyssey","price":"100000.99","quantity":1}]}}`,
			`{"order":{"id":3,"order_details":[{"id":3,"product_id":"the_odyssey","price":"7.00","quantity":2}]}}`,
		}
		// The old handler: for product in payload['order']['order_details']:
		//     decrement_stock(product['product_id'], product['quantity'])
		decremented := map[string]int64{}
		for i, m := range got {
			if string(m.Body) != want[i] {
				t.Errorf("event %d body\n  %s\nwant\n  %s", i, m.Body, want[i])
			}
			if m.RoutingKey != "order_created" || m.ContentType != "application/json" || m.DeliveryMode != 2 || m.MessageID == "" {
				t.Errorf("event %d: routing key %q, content type %q, delivery mode %d, message id %q",
					i, m.RoutingKey, m.ContentType, m.DeliveryMode, m.MessageID)
			}
			payload, err := m.Payload()
			if err != nil {
				t.Fatal(err)
			}
			for _, product := range payload["order"].(map[string]any)["order_details"].([]any) {
				detail := product.(map[string]any)
				q, err := detail["quantity"].(json.Number).Int64()
				if err != nil {
					t.Fatalf("quantity %v: %v", detail["quantity"], err)
				}
				decremented[detail["product_id"].(string)] += q
			}
		}
		if decremented["the_odyssey"] != 4 || len(decremented) != 1 {
			t.Fatalf("the old handler would decrement %v; want the_odyssey by 4", decremented)
		}
		s.expect(s.do("GET", "/products/the_odyssey", ""), 200, strings.Replace(odyssey, ": 10}", ": 6}", 1))
	})
}

// TestNoEventForRefusedChanges: requests refused before anything is
// written, and a PUT that changes nothing, send no event; the changes
// that commit send theirs, each order's in order. (A write that rolls back after the event was written
// in its transaction: orders TestOutbox/*/NoEventWithoutCommit.)
func TestNoEventForRefusedChanges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		amqpURL := testbackend.AMQPURL(t)
		c := allEvents(t, amqpURL)
		s := startWith(t, b.config(t, eventsOn(amqpURL)))
		s.expect(s.do("POST", "/products", odyssey), 200, "")
		s.expectError(s.do("POST", "/orders", strings.Replace(orderOfOne, "the_odyssey", "missing", 1)), 404, "PRODUCT_NOT_FOUND")
		s.expectError(s.do("POST", "/orders", strings.Replace(orderOfOne, `"quantity": 1`, `"quantity": 11`, 1)), 409, "OUT_OF_STOCK")
		s.expectError(s.do("POST", "/orders", strings.Replace(orderOfOne, `"quantity": 1`, `"quantity": 0`, 1)), 400, "VALIDATION_ERROR")
		s.expect(s.do("POST", "/orders", orderOfOne, "Idempotency-Key", "k"), 200, `{"id": 1}`)
		s.expectError(s.do("POST", "/orders", strings.Replace(orderOfOne, `"quantity": 1`, `"quantity": 2`, 1),
			"Idempotency-Key", "k"), 422, "IDEMPOTENCY_KEY_REUSED")
		s.expectError(s.do("PUT", "/orders/1", `{"order_details": [{"id": 1, "quantity": 50}]}`), 409, "OUT_OF_STOCK")
		s.expectError(s.do("PUT", "/orders/1", `{"order_details": [{"id": 9, "quantity": 2}]}`), 400, "VALIDATION_ERROR")
		s.expectError(s.do("DELETE", "/orders/7", ""), 404, "ORDER_NOT_FOUND")
		put := s.do("PUT", "/orders/1", `{"order_details": [{"id": 1, "price": "5", "quantity": 2}]}`)
		s.expect(put, 200, "")
		// A PUT that changes nothing answers the order as it is and sends
		// no event.
		s.expect(s.do("PUT", "/orders/1", `{"order_details": [{"id": 1, "price": "5.00", "quantity": 2}]}`), 200, string(put.body))
		if r := s.do("DELETE", "/orders/1", ""); r.status != 204 {
			t.Fatalf("DELETE /orders/1 = %d %s", r.status, r.body)
		}
		// A last order marks the end; once the outbox is empty every event
		// is in the queue.
		s.expect(s.do("POST", "/orders", orderOfOne), 200, `{"id": 2}`)
		c.Await(t, arrival, "the last order's event", func(m []eventstest.Message) bool {
			return len(m) > 0 && orderID(t, m[len(m)-1]) == 2
		})
		awaitEmptyOutbox(t, s)
		want := []string{"order_created 1", "order_updated 1", "order_deleted 1", "order_created 2"}
		c.AwaitCount(t, len(want), arrival)
		time.Sleep(500 * time.Millisecond) // an event too many would arrive meanwhile
		got := c.Messages()
		var seq []string
		for _, m := range got {
			seq = append(seq, fmt.Sprintf("%s %d", m.RoutingKey, orderID(t, m)))
		}
		if len(seq) != len(want) {
			t.Fatalf("events %v; want %v", seq, want)
		}
		// Each order's events in order; orders may interleave (a relay
		// pass takes the first pending event of every order, so with all
		// four pending it publishes both order_created first).
		perOrder := map[int64][]string{}
		for _, m := range got {
			perOrder[orderID(t, m)] = append(perOrder[orderID(t, m)], m.RoutingKey)
		}
		if fmt.Sprint(perOrder[1]) != "[order_created order_updated order_deleted]" || fmt.Sprint(perOrder[2]) != "[order_created]" {
			t.Fatalf("events %v; want %v, each order's events in this order", seq, want)
		}
		const updated = `{"order":{"id":1,"order_details":[{"id":1,"product_id":"the_odyssey","price":"5.00","quantity":2}]}}`
		for _, m := range got {
			if orderID(t, m) == 1 && m.RoutingKey != "order_created" && string(m.Body) != updated {
				t.Fatalf("%s body %s; want %s", m.RoutingKey, m.Body, updated)
			}
		}
	})
}

// awaitEmptyOutbox waits until the server's relay has published every
// event.
func awaitEmptyOutbox(t *testing.T, s *server) {
	t.Helper()
	deadline := time.Now().Add(arrival)
	for {
		n, _, err := s.ordersApp().Events().Backlog(t.Context())
		if err == nil && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox backlog %d, %v after %s", n, err, arrival)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEventsOffWritesNoOutboxRows: without amqp_url no event is written.
func TestEventsOffWritesNoOutboxRows(t *testing.T) {
	cfg := backends[0].config(t)
	s := startWith(t, cfg)
	s.expect(s.do("POST", "/products", odyssey), 200, "")
	s.expect(s.do("POST", "/orders", orderOfOne), 200, "")
	s.expect(s.do("PUT", "/orders/1", `{"order_details": [{"id": 1, "quantity": 2}]}`), 200, "")
	if s.app.Events() != nil {
		t.Fatal("an event relay runs with events off")
	}
	db, err := sqlx.Open("postgres", cfg.PostgresURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.Get(&n, "SELECT count(*) FROM outbox"); err != nil || n != 0 {
		t.Fatalf("%d outbox rows, %v; want none with events off", n, err)
	}
}

// post sends a JSON POST with a plain client, for use from goroutines.
func post(base, path, body string) (int, []byte, error) {
	resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// scarceOrder orders the product "scarce", of which there are few.
const scarceOrder = `{"order_details": [{"product_id": "scarce", "price": "1", "quantity": 1}]}`

// storm places orders of one from workers goroutines, every fourth of the
// scarce product, until stop is closed, counting in refused the orders
// refused with 409 as they are, and returns the ids of the orders answered
// 200.
func storm(t *testing.T, base string, workers int, stop <-chan struct{}, refused *atomic.Int64) (acked map[int64]bool) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	acked = map[int64]bool{}
	for w := range workers {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				order := orderOfOne
				if i%4 == 0 {
					order = scarceOrder
				}
				status, body, err := post(base, "/orders", order)
				switch {
				case err != nil:
					t.Errorf("POST /orders: %v", err)
					return
				case status == 200:
					var o struct{ ID int64 }
					json.Unmarshal(body, &o)
					mu.Lock()
					acked[o.ID] = true
					mu.Unlock()
				case status == 409:
					refused.Add(1)
				default:
					t.Errorf("POST /orders = %d %s", status, body)
					return
				}
			}
		})
	}
	wg.Wait()
	return acked
}

// checkExactlyCommitted checks that the created events name exactly the
// acknowledged orders, and that an order's event delivered twice carries
// the same message id both times.
func checkExactlyCommitted(t *testing.T, msgs []eventstest.Message, acked map[int64]bool) (duplicates int) {
	t.Helper()
	ids := map[int64]string{}
	for _, m := range msgs {
		id := orderID(t, m)
		if !acked[id] {
			t.Fatalf("event for order %d, which was never acknowledged", id)
		}
		if prev, ok := ids[id]; ok {
			if prev != m.MessageID {
				t.Fatalf("order %d: two events with message ids %s and %s", id, prev, m.MessageID)
			}
			duplicates++
		}
		ids[id] = m.MessageID
	}
	if len(ids) != len(acked) {
		t.Fatalf("%d orders have an event; %d were acknowledged", len(ids), len(acked))
	}
	return duplicates
}

// awaitOrders waits until every acknowledged order has its event.
func awaitOrders(t *testing.T, c *eventstest.Consumer, acked map[int64]bool) []eventstest.Message {
	t.Helper()
	return c.Await(t, arrival, fmt.Sprintf("events of the %d acknowledged orders", len(acked)), func(msgs []eventstest.Message) bool {
		have := map[int64]bool{}
		for _, m := range msgs {
			have[orderID(t, m)] = true
		}
		for id := range acked {
			if !have[id] {
				return false
			}
		}
		return true
	})
}

// TestEventsSurviveBrokerOutage: RabbitMQ, reached through a proxy, goes
// away during a storm of orders (some refused for lack of stock) and comes
// back: /readyz stays 200, the backlog shows the waiting events, and
// afterwards every acknowledged order's event arrives, none for a refused
// one, a repeated one only with its message id. (It reads the backlog of
// the process it started, so it runs where that process keeps the orders;
// split, the orders module publishes as this process does.)
func TestEventsSurviveBrokerOutage(t *testing.T) {
	forEachStoreBackend(t, func(t *testing.T, b backend) {
		amqpURL := testbackend.AMQPURL(t)
		c := eventstest.NamekoHandler(t, amqpURL, "orders", "order_created", "products", "handle_order_created")
		u, _ := url.Parse(amqpURL)
		broker := testbackend.NewProxy(t, u.Host)
		u.Host = broker.Addr()
		s := startWith(t, b.config(t, eventsOn(u.String())))
		s.expect(s.do("POST", "/products", strings.Replace(odyssey, ": 10}", ": 1000000}", 1)), 200, "")
		s.expect(s.do("POST", "/products", `{"id": "scarce", "title": "Scarce", "passenger_capacity": 1, "maximum_speed": 1, "in_stock": 20}`), 200, "")

		var (
			stop     = make(chan struct{})
			stopOnce sync.Once
			acked    map[int64]bool
			refusals atomic.Int64
			done     = make(chan struct{})
		)
		halt := func() { stopOnce.Do(func() { close(stop) }) }
		go func() {
			defer close(done)
			acked = storm(t, s.url, 8, stop, &refusals)
		}()
		// Should the test end early (t.Fatal), the storm ends with it.
		t.Cleanup(func() {
			halt()
			<-done
		})
		time.Sleep(500 * time.Millisecond)
		broker.Stop()
		time.Sleep(time.Second)
		s.expect(s.do("GET", "/readyz", ""), 200, "")
		n, oldest, err := s.app.Events().Backlog(t.Context())
		if err != nil || n == 0 || oldest <= 0 {
			t.Errorf("backlog with the broker away = %d events, oldest %s, %v; want some waiting", n, oldest, err)
		}
		time.Sleep(time.Second)
		broker.Start()
		time.Sleep(500 * time.Millisecond)
		// The storm goes on until the scarce product has run out, however
		// slowly the machine serves it (or every worker has given up).
		const exhaust = 60 * time.Second
		deadline := time.After(exhaust)
	waitForRefusal:
		for refusals.Load() == 0 {
			select {
			case <-done:
				break waitForRefusal
			case <-deadline:
				break waitForRefusal
			case <-time.After(50 * time.Millisecond):
			}
		}
		halt()
		<-done
		refused := int(refusals.Load())
		if refused == 0 || len(acked) == 0 {
			t.Fatalf("%d orders acknowledged, %d refused (storm of up to %s); the storm should run out of stock", len(acked), refused, exhaust)
		}
		dups := checkExactlyCommitted(t, awaitOrders(t, c, acked), acked)
		t.Logf("%d orders acknowledged, %d refused, %d events delivered twice", len(acked), refused, dups)
		awaitEmptyOutbox(t, s)
	})
}

// TestThreeReplicasRelayOneOutbox: three servers on one PostgreSQL
// database each run a relay. Every event is published exactly once, each
// order's in order; when one replica stops mid-storm the others publish
// everything still.
func TestThreeReplicasRelayOneOutbox(t *testing.T) {
	amqpURL := testbackend.AMQPURL(t)
	c := allEvents(t, amqpURL)
	cfg := withEvents(backends[0].config(t), amqpURL)
	var replicas []*server
	var urls []string
	for range 3 {
		s := startWith(t, cfg)
		replicas = append(replicas, s)
		urls = append(urls, s.url)
	}
	replicas[0].expect(replicas[0].do("POST", "/products", strings.Replace(odyssey, ": 10}", ": 100000}", 1)), 200, "")

	// Each order is created on one replica, updated on the next, deleted
	// on the third, by workers at once.
	storm := func(urls []string, workers, perWorker int) int {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range perWorker {
					at := func(k int) string { return urls[(w+i+k)%len(urls)] }
					if err := createUpdateDelete(at(0), at(1), at(2)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return workers * perWorker * 3
	}
	total := storm(urls, 4, 15)
	// Replica 2 stops while the other two go on.
	halt := time.AfterFunc(200*time.Millisecond, replicas[2].stop)
	total += storm(urls[:2], 4, 15)
	halt.Stop()
	replicas[2].stop()
	if t.Failed() {
		t.FailNow()
	}
	c.AwaitCount(t, total, arrival)
	time.Sleep(time.Second) // a duplicate would arrive meanwhile
	msgs := c.Messages()
	if len(msgs) != total {
		t.Fatalf("%d events delivered; want exactly %d (each once)", len(msgs), total)
	}
	seen := map[string]bool{}
	next := map[int64]int{}
	sequence := []string{"order_created", "order_updated", "order_deleted"}
	for _, m := range msgs {
		if seen[m.MessageID] {
			t.Fatalf("message %s delivered twice", m.MessageID)
		}
		seen[m.MessageID] = true
		id := orderID(t, m)
		if i := next[id]; i >= 3 || m.RoutingKey != sequence[i] {
			t.Fatalf("order %d: %s arrived after %v", id, m.RoutingKey, sequence[:next[id]])
		}
		next[id]++
	}
}

// createUpdateDelete places an order of one on the server at create,
// doubles its quantity on the one at update and deletes it on the one at
// del.
func createUpdateDelete(create, update, del string) error {
	status, body, err := post(create, "/orders", orderOfOne)
	if err != nil || status != 200 {
		return fmt.Errorf("POST /orders = %d %s, %v", status, body, err)
	}
	var o struct{ ID int64 }
	json.Unmarshal(body, &o)
	resp, err := http.Get(fmt.Sprintf("%s/orders/%d", update, o.ID))
	if err != nil {
		return err
	}
	var got struct {
		OrderDetails []struct{ ID int64 } `json:"order_details"`
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || len(got.OrderDetails) != 1 {
		return fmt.Errorf("GET /orders/%d: %v %+v", o.ID, err, got)
	}
	for _, r := range []struct {
		method, url, body string
		status            int
	}{
		{"PUT", fmt.Sprintf("%s/orders/%d", update, o.ID), fmt.Sprintf(`{"order_details": [{"id": %d, "quantity": 2}]}`, got.OrderDetails[0].ID), 200},
		{"DELETE", fmt.Sprintf("%s/orders/%d", del, o.ID), "", 204},
	} {
		req, _ := http.NewRequest(r.method, r.url, strings.NewReader(r.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != r.status {
			return fmt.Errorf("%s %s = %d; want %d", r.method, r.url, resp.StatusCode, r.status)
		}
	}
	return nil
}

// TestEventPublishedAfterKill: airship killed with kill -9 after the
// commit and before the publish (the broker is unreachable meanwhile, so
// the events wait in the outbox) publishes them after its restart. While
// the broker is unreachable, /readyz stays 200.
func TestEventPublishedAfterKill(t *testing.T) {
	for name, backend := range processBackends {
		t.Run(name, func(t *testing.T) {
			amqpURL := testbackend.AMQPURL(t)
			c := eventstest.NamekoHandler(t, amqpURL, "orders", "order_created", "products", "handle_order_created")
			u, _ := url.Parse(amqpURL)
			broker := testbackend.NewProxy(t, u.Host)
			broker.Stop()
			u.Host = broker.Addr()
			env := append(backend(t), "AIRSHIP_EVENTS_INTERVAL=200ms")

			p := startProcess(t, append(env, "AIRSHIP_AMQP_URL="+u.String())...)
			p.must("POST", "/products", odyssey, 200)
			acked := map[int64]bool{}
			for range 3 {
				var o struct{ ID int64 }
				json.Unmarshal(p.must("POST", "/orders", orderOfOne, 200), &o)
				acked[o.ID] = true
			}
			p.must("GET", "/readyz", "", 200)
			if err := p.stop(syscall.SIGKILL); err == nil {
				t.Fatal("kill -9 reported a clean exit")
			}
			if n := len(c.Messages()); n != 0 {
				t.Fatalf("%d events arrived with the broker unreachable", n)
			}

			p = startProcess(t, append(env, "AIRSHIP_AMQP_URL="+amqpURL)...)
			checkExactlyCommitted(t, awaitOrders(t, c, acked), acked)
			p.stop(syscall.SIGTERM)
		})
	}
}
