//go:build upgrade

package upgrade

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// consumer is an old-style consumer of the order events: a durable queue
// bound to the exchange with every event's routing key, declared as nameko
// declares its handlers' queues, reading each body as the release that
// introduced the events documented it (strictly: a field it does not know
// is an error, as the schema's additionalProperties: false allows).
type consumer struct {
	mu   sync.Mutex
	msgs []delivery
	bad  []string
}

type delivery struct {
	Type      string
	MessageID string
	OrderID   int64
	Lines     []line
}

var eventTypes = []string{"order_created", "order_updated", "order_deleted"}

// bindConsumer binds the consumer before any release starts, so that no
// event is published while no queue is bound (RabbitMQ drops those).
func bindConsumer(t *testing.T, amqpURL string) *consumer {
	t.Helper()
	const exchange, queue = "orders.events", "evt-orders-order_events--audit.handle_order_event"
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatalf("consumer: connect to RabbitMQ: %v", err)
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.ExchangeDeclare(exchange, amqp.ExchangeTopic, true, false, false, false, nil)
	}
	if err == nil {
		_, err = ch.QueueDeclare(queue, true, false, false, false, nil)
	}
	for _, key := range eventTypes {
		if err == nil {
			err = ch.QueueBind(queue, key, exchange, false, nil)
		}
	}
	var deliveries <-chan amqp.Delivery
	if err == nil {
		deliveries, err = ch.Consume(queue, "", false, false, false, false, nil)
	}
	if err != nil {
		conn.Close()
		t.Fatalf("consumer: declare and consume %s: %v", queue, err)
	}
	c := &consumer{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for d := range deliveries {
			c.receive(d)
			_ = d.Ack(false)
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return c
}

// receive reads one delivery as the old consumer does.
func (c *consumer) receive(d amqp.Delivery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var body struct {
		Order struct {
			ID      int64 `json:"id"`
			Details []struct {
				ID        int64  `json:"id"`
				ProductID string `json:"product_id"`
				Price     string `json:"price"`
				Quantity  int    `json:"quantity"`
			} `json:"order_details"`
		} `json:"order"`
	}
	dec := json.NewDecoder(bytes.NewReader(d.Body))
	dec.DisallowUnknownFields()
	err := dec.Decode(&body)
	version, _ := d.Headers["schema_version"]
	switch {
	case err != nil:
		c.bad = append(c.bad, fmt.Sprintf("%s %s: the body does not read as schema version %d: %v: %s", d.RoutingKey, d.MessageId, eventsSchemaVersion, err, short(d.Body)))
		return
	case fmt.Sprint(version) != fmt.Sprint(eventsSchemaVersion):
		c.bad = append(c.bad, fmt.Sprintf("%s %s: schema_version %v, the consumer reads %d", d.RoutingKey, d.MessageId, version, eventsSchemaVersion))
	case d.MessageId == "" || d.Type != d.RoutingKey || d.ContentType != "application/json":
		c.bad = append(c.bad, fmt.Sprintf("%s: message id %q, type %q, content type %q", d.RoutingKey, d.MessageId, d.Type, d.ContentType))
	}
	m := delivery{Type: d.RoutingKey, MessageID: d.MessageId, OrderID: body.Order.ID}
	for _, l := range body.Order.Details {
		m.Lines = append(m.Lines, line{ID: l.ID, ProductID: l.ProductID, Price: l.Price, Quantity: l.Quantity})
	}
	c.msgs = append(c.msgs, m)
}

// byOrder returns each order's events, a message id's repeats (at least
// once delivery) dropped, in the order they arrived.
func (c *consumer) byOrder() map[int64][]delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	out := map[int64][]delivery{}
	for _, m := range c.msgs {
		if seen[m.MessageID] {
			continue
		}
		seen[m.MessageID] = true
		out[m.OrderID] = append(out[m.OrderID], m)
	}
	return out
}

// checkEvents waits until the consumer has an event for every order change
// made through a release that publishes events, then checks each order's
// events: every change once, in the order the changes were made.
func (tr *traffic) checkEvents(c *consumer) {
	tr.pause()
	tr.mu.Lock()
	want := map[int64][]event{}
	total := 0
	for id, o := range tr.orders {
		if len(o.Events) > 0 {
			want[id] = o.Events
			total += len(o.Events)
		}
	}
	tr.phase = "events"
	tr.mu.Unlock()

	complete := func(got map[int64][]delivery) bool {
		for id, evs := range want {
			if len(got[id]) < len(evs) {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(2 * time.Minute)
	got := c.byOrder()
	for !complete(got) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		got = c.byOrder()
	}

	var missing, wrong []string
	ids := make([]int64, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		evs, seen := want[id], got[id]
		if len(seen) < len(evs) {
			missing = append(missing, fmt.Sprintf("order %d (placed on %s): %d of %s", id, tr.orders[id].By, len(seen), eventsString(evs)))
			continue
		}
		for i, e := range evs {
			if seen[i].Type != e.Type || !sameLines(seen[i].Lines, e.Lines) {
				wrong = append(wrong, fmt.Sprintf("order %d: event %d is %s %s, want %s %s (all: %s)",
					id, i+1, seen[i].Type, linesString(seen[i].Lines), e.Type, linesString(e.Lines), deliveriesString(seen)))
				break
			}
		}
		if len(seen) > len(evs) {
			wrong = append(wrong, fmt.Sprintf("order %d: %d events for %d changes: %s", id, len(seen), len(evs), deliveriesString(seen)))
		}
	}
	for id, seen := range got {
		if _, ok := want[id]; !ok && tr.orders[id] == nil {
			wrong = append(wrong, fmt.Sprintf("order %d, which no client was told was placed: %s", id, deliveriesString(seen)))
		}
	}
	if len(missing) > 0 {
		tr.report("events", "%d orders' changes not all seen by the consumer within 2 minutes: %s", len(missing), clip(missing))
	}
	if len(wrong) > 0 {
		tr.report("events", "%d orders' events out of order, wrong or extra: %s", len(wrong), clip(wrong))
	}
	c.mu.Lock()
	bad := c.bad
	c.mu.Unlock()
	if len(bad) > 0 {
		tr.report("events", "%d messages the old-style consumer cannot read: %s", len(bad), clip(bad))
	}
	tr.t.Logf("events: %d changes of %d orders expected, %d orders seen", total, len(want), len(got))
}

func eventsString(evs []event) string {
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = e.Type
	}
	return strings.Join(parts, ", ")
}

func deliveriesString(ds []delivery) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Type + " " + linesString(d.Lines)
	}
	return strings.Join(parts, ", ")
}
