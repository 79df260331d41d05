package rabbitmq_test

import (
	"errors"
	"net/url"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/airshipltd/airship/events"
	"github.com/airshipltd/airship/events/eventstest"
	"github.com/airshipltd/airship/events/rabbitmq"
	"github.com/airshipltd/airship/internal/testbackend"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func event(id, orderID int64, typ string) events.Event {
	return events.Event{
		ID: id, MessageID: testbackend.Name("msg-"), OrderID: orderID, Type: typ,
		SchemaVersion: events.SchemaVersion, CreatedAt: time.Unix(1_700_000_000, 0),
		Body: []byte(`{"order" : {"id" : 3, "order_details" : [{"id" : 5, "product_id" : "the_odyssey", "price" : "100000.99", "quantity" : 1}]}}`),
	}
}

// TestExchangeAsNamekoDeclaresIt: the publisher declares orders.events
// exactly as nameko 3.0's dispatcher and kombu's consumers do (topic,
// durable, not auto-deleted), so either side may declare it first; a
// declaration with other flags is refused by the broker, which shows the
// comparison is real.
func TestExchangeAsNamekoDeclaresIt(t *testing.T) {
	for _, namekoFirst := range []bool{true, false} {
		// One closure per case, so that its deferred closes run when the
		// case ends, also when it fails.
		func() {
			amqpURL := testbackend.AMQPURL(t)
			var c *eventstest.Consumer
			if namekoFirst {
				c = eventstest.NamekoHandler(t, amqpURL, "orders", "order_created", "products", "handle_order_created")
			}
			pub := rabbitmq.New(amqpURL, rabbitmq.DefaultExchange, 10*time.Second)
			defer pub.Close()
			if n, err := pub.Publish(t.Context(), []events.Event{event(1, 3, events.OrderCreated)}); err != nil || n != 1 {
				t.Fatalf("publish (nameko declared first: %v) = %d, %v", namekoFirst, n, err)
			}
			if !namekoFirst {
				c = eventstest.NamekoHandler(t, amqpURL, "orders", "order_created", "products", "handle_order_created")
				if _, err := pub.Publish(t.Context(), []events.Event{event(2, 3, events.OrderCreated)}); err != nil {
					t.Fatal(err)
				}
			}
			c.AwaitCount(t, 1, 30*time.Second)
			pub.Close()

			conn, err := amqp.Dial(amqpURL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ch, err := conn.Channel()
			if err != nil {
				t.Fatalf("open a channel: %v", err)
			}
			err = ch.ExchangeDeclare(rabbitmq.DefaultExchange, amqp.ExchangeTopic, true, true, false, false, nil)
			var aerr *amqp.Error
			if !errors.As(err, &aerr) || aerr.Code != amqp.PreconditionFailed {
				t.Fatalf("declaring orders.events auto-deleted = %v; want PRECONDITION_FAILED", err)
			}
		}()
	}
}

// TestMessageAsTheOldDispatcherSentIt: content type, encoding, persistent
// delivery, the event type as routing key, a message id, a timestamp, the
// schema version header, and the body compacted.
func TestMessageAsTheOldDispatcherSentIt(t *testing.T) {
	amqpURL := testbackend.AMQPURL(t)
	c := eventstest.Bind(t, amqpURL, rabbitmq.DefaultExchange, "all", "#")
	pub := rabbitmq.New(amqpURL, rabbitmq.DefaultExchange, 10*time.Second)
	defer pub.Close()
	sent := []events.Event{event(1, 3, events.OrderCreated), event(2, 3, events.OrderUpdated), event(3, 3, events.OrderDeleted)}
	if n, err := pub.Publish(t.Context(), sent); err != nil || n != 3 {
		t.Fatalf("publish = %d, %v", n, err)
	}
	got := c.AwaitCount(t, 3, 30*time.Second)
	for i, m := range got {
		e := sent[i]
		if m.RoutingKey != e.Type || m.Type != e.Type || m.MessageID != e.MessageID {
			t.Errorf("message %d: routing key %q, type %q, id %q; want %s and %s", i, m.RoutingKey, m.Type, m.MessageID, e.Type, e.MessageID)
		}
		if m.ContentType != "application/json" || m.ContentEncoding != "utf-8" || m.DeliveryMode != amqp.Persistent {
			t.Errorf("message %d: content type %q, encoding %q, delivery mode %d", i, m.ContentType, m.ContentEncoding, m.DeliveryMode)
		}
		if !m.Timestamp.Equal(e.CreatedAt) || m.AppID != "airship" {
			t.Errorf("message %d: timestamp %s, app id %q", i, m.Timestamp, m.AppID)
		}
		if v, ok := m.Headers[rabbitmq.SchemaVersionHeader].(int32); !ok || int(v) != events.SchemaVersion {
			t.Errorf("message %d: headers %v; want %s = %d", i, m.Headers, rabbitmq.SchemaVersionHeader, events.SchemaVersion)
		}
		const want = `{"order":{"id":3,"order_details":[{"id":5,"product_id":"the_odyssey","price":"100000.99","quantity":1}]}}`
		if string(m.Body) != want {
			t.Errorf("message %d: body %s; want %s", i, m.Body, want)
		}
	}
}

// TestPublisherSurvivesBrokerOutages: with RabbitMQ refusing or hanging,
// Publish fails within its timeout (a hanging broker is cut off), and
// publishes again once the broker is back, on a new connection.
func TestPublisherSurvivesBrokerOutages(t *testing.T) {
	amqpURL := testbackend.AMQPURL(t)
	c := eventstest.Bind(t, amqpURL, rabbitmq.DefaultExchange, "all", "#")
	u, _ := url.Parse(amqpURL)
	proxy := testbackend.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	const timeout = 2 * time.Second
	pub := rabbitmq.New(u.String(), rabbitmq.DefaultExchange, timeout)
	defer pub.Close()
	ctx := t.Context()
	id := int64(0)
	publish := func() (int, error) {
		id++
		return pub.Publish(ctx, []events.Event{event(id, id, events.OrderCreated)})
	}
	if _, err := publish(); err != nil {
		t.Fatal(err)
	}
	for _, cut := range []struct {
		name string
		do   func()
	}{{"refuses", proxy.Stop}, {"hangs", proxy.Blackhole}} {
		cut.do()
		began := time.Now()
		if n, err := publish(); err == nil || n != 0 {
			t.Fatalf("broker %s: publish = %d, %v; want an error", cut.name, n, err)
		}
		if took := time.Since(began); took > timeout+10*time.Second {
			t.Fatalf("broker %s: publish took %s to fail", cut.name, took)
		}
		proxy.Start()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := publish(); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("broker back after it %s: publish still fails: %v", cut.name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	c.Await(t, 30*time.Second, "the events published while the broker was up", func(m []eventstest.Message) bool {
		return len(m) >= 3
	})
}
