// Package eventstest consumes airship's events from a real RabbitMQ in
// tests, with queues declared the way the old system's consumers
// declared them.
package eventstest

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Message is a delivery a Consumer received.
type Message struct {
	RoutingKey      string
	MessageID       string
	ContentType     string
	ContentEncoding string
	Type            string
	AppID           string
	DeliveryMode    uint8
	Timestamp       time.Time
	Headers         amqp.Table
	Body            []byte
	Received        time.Time
}

// Payload decodes the body as the old consumers did: into plain maps and
// lists (a Python dict).
func (m Message) Payload() (map[string]any, error) {
	var p map[string]any
	d := json.NewDecoder(strings.NewReader(string(m.Body)))
	d.UseNumber()
	return p, d.Decode(&p)
}

// Consumer keeps every message delivered to its queue.
type Consumer struct {
	Queue string

	mu   sync.Mutex
	msgs []Message
	got  chan struct{}
}

// NamekoHandler declares and consumes the queue that a nameko 3.0 event
// handler declares: @event_handler(source, eventType) on the method
// method of the service service, with the default handler type
// (service pool) and reliable delivery. The old products service's
// handler of new orders was NamekoHandler(t, url, "orders", "order_created",
// "products", "handle_order_created"): the queue
// evt-orders-order_created--products.handle_order_created, durable, not
// auto-deleted, not exclusive, bound to the exchange orders.events with
// the routing key order_created; kombu declares the exchange first, as
// a durable topic exchange.
func NamekoHandler(t testing.TB, url, source, eventType, service, method string) *Consumer {
	t.Helper()
	queue := fmt.Sprintf("evt-%s-%s--%s.%s", source, eventType, service, method)
	return Bind(t, url, source+".events", queue, eventType)
}

// Bind declares the exchange (as nameko does) and a durable queue bound
// to it with the routing keys, and consumes the queue until the test
// ends, acknowledging each message once it is kept.
func Bind(t testing.TB, url, exchange, queue string, routingKeys ...string) *Consumer {
	t.Helper()
	conn, err := amqp.Dial(url)
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
	for _, key := range routingKeys {
		if err == nil {
			err = ch.QueueBind(queue, key, exchange, false, nil)
		}
	}
	if err == nil {
		err = ch.Qos(10, 0, false)
	}
	var deliveries <-chan amqp.Delivery
	if err == nil {
		deliveries, err = ch.Consume(queue, "", false, false, false, false, nil)
	}
	if err != nil {
		conn.Close()
		t.Fatalf("consumer: declare and consume %s: %v", queue, err)
	}
	c := &Consumer{Queue: queue, got: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for d := range deliveries {
			c.mu.Lock()
			c.msgs = append(c.msgs, Message{
				RoutingKey: d.RoutingKey, MessageID: d.MessageId, ContentType: d.ContentType,
				ContentEncoding: d.ContentEncoding, Type: d.Type, AppID: d.AppId, DeliveryMode: d.DeliveryMode,
				Timestamp: d.Timestamp, Headers: d.Headers, Body: d.Body, Received: time.Now(),
			})
			c.mu.Unlock()
			select {
			case c.got <- struct{}{}:
			default:
			}
			_ = d.Ack(false)
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return c
}

// Messages returns what was received so far, in order.
func (c *Consumer) Messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.msgs...)
}

// Await waits until done holds for the messages received, and returns
// them; it fails the test if that takes longer than within.
func (c *Consumer) Await(t testing.TB, within time.Duration, what string, done func([]Message) bool) []Message {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		msgs := c.Messages()
		if done(msgs) {
			return msgs
		}
		select {
		case <-c.got:
		case <-time.After(100 * time.Millisecond):
		case <-deadline.C:
			t.Fatalf("%s: not after %s; %d messages received", what, within, len(msgs))
		}
	}
}

// AwaitCount waits for at least n messages.
func (c *Consumer) AwaitCount(t testing.TB, n int, within time.Duration) []Message {
	t.Helper()
	return c.Await(t, within, fmt.Sprintf("%d messages on %s", n, c.Queue), func(m []Message) bool { return len(m) >= n })
}
