// Package rabbitmq is the events' publisher to RabbitMQ: the exchange and
// the messages as the old orders service's dispatcher declared and sent
// them, with publisher confirms.
package rabbitmq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/airshipltd/airship/events"
)

// DefaultExchange is the exchange the old orders service dispatched its
// events to (nameko: "<service name>.events").
const DefaultExchange = "orders.events"

// The exchange as nameko 3.0's event dispatcher declares it: a durable
// topic exchange, not auto-deleted (AUTO_DELETE_EVENT_EXCHANGES unset),
// not internal, no arguments. A declaration with any other flags would
// fail with PRECONDITION_FAILED wherever the other side declared it first.
const (
	exchangeKind       = amqp.ExchangeTopic
	exchangeDurable    = true
	exchangeAutoDelete = false
)

// SchemaVersionHeader is the message header that carries the version of
// the body's schema (SchemaVersion when it was written).
const SchemaVersionHeader = "schema_version"

// Publisher publishes events to a RabbitMQ exchange with publisher confirms.
// It connects on first use and again after any failure; a broker or
// network that stops answering is cut off after the timeout.
type Publisher struct {
	url, exchange string
	timeout       time.Duration

	mu   sync.Mutex
	conn *amqp.Connection
	ch   *amqp.Channel
	raw  net.Conn // the connection's socket, closed to end any wait on it
}

// New returns a publisher to the exchange on the broker at url
// (amqp:// or amqps://). timeout bounds the connection handshake and the
// wait for the confirms of one batch.
func New(url, exchange string, timeout time.Duration) *Publisher {
	return &Publisher{url: url, exchange: exchange, timeout: timeout}
}

// ParseURL checks an AMQP URL.
func ParseURL(url string) error {
	_, err := amqp.ParseURI(url)
	return err
}

// Publish publishes the events, in order, as persistent messages with the
// event type as routing key, and waits for the broker's confirms; it
// returns how many events, from the first, were confirmed. Messages no
// queue is bound for are dropped by the broker (and confirmed), as the
// old system's were.
func (a *Publisher) Publish(ctx context.Context, events []events.Event) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.connect(); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	raw := a.raw
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()

	pending := make([]*amqp.DeferredConfirmation, 0, len(events))
	var err error
	for _, e := range events {
		var dc *amqp.DeferredConfirmation
		if dc, err = a.ch.PublishWithDeferredConfirm(a.exchange, e.Type, false, false, message(e)); err != nil {
			err = fmt.Errorf("publish event %s: %w", e.MessageID, err)
			break
		}
		pending = append(pending, dc)
	}
	confirmed := 0
	for _, dc := range pending {
		acked, werr := dc.WaitContext(ctx)
		if werr != nil || !acked {
			if werr == nil {
				werr = errors.New("the broker refused it (nack)")
			}
			err = errors.Join(err, fmt.Errorf("confirm of event %s: %w", events[confirmed].MessageID, werr))
			break
		}
		confirmed++
	}
	if confirmed < len(events) {
		a.drop() // start the next attempt on a new connection
		if err == nil {
			err = errors.New("not every event was confirmed")
		}
		return confirmed, fmt.Errorf("rabbitmq: %d of %d events confirmed: %w", confirmed, len(events), err)
	}
	return confirmed, nil
}

// message is the AMQP message of an event.
func message(e events.Event) amqp.Publishing {
	body := e.Body
	var compact bytes.Buffer
	if json.Compact(&compact, e.Body) == nil {
		body = compact.Bytes()
	}
	return amqp.Publishing{
		ContentType:     "application/json",
		ContentEncoding: "utf-8",
		DeliveryMode:    amqp.Persistent,
		MessageId:       e.MessageID,
		Timestamp:       e.CreatedAt,
		Type:            e.Type,
		AppId:           "airship",
		Headers:         amqp.Table{SchemaVersionHeader: int32(e.SchemaVersion)},
		Body:            body,
	}
}

// connect opens the connection and its confirming channel, and declares
// the exchange, unless they are open.
func (a *Publisher) connect() error {
	if a.conn != nil && !a.conn.IsClosed() && a.ch != nil && !a.ch.IsClosed() {
		return nil
	}
	a.drop()
	dial := amqp.DefaultDial(a.timeout) // bounds the TCP, TLS and AMQP handshakes
	var raw net.Conn
	conn, err := amqp.DialConfig(a.url, amqp.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Properties: amqp.Table{"connection_name": "airship event relay"},
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := dial(network, addr)
			raw = c
			return c, err
		},
	})
	if err != nil {
		if raw != nil {
			raw.Close()
		}
		return fmt.Errorf("rabbitmq: connect: %w", err)
	}
	a.conn, a.raw = conn, raw
	ch, err := conn.Channel()
	if err == nil {
		a.ch = ch
		err = ch.Confirm(false)
	}
	if err == nil {
		err = ch.ExchangeDeclare(a.exchange, exchangeKind, exchangeDurable, exchangeAutoDelete, false, false, nil)
	}
	if err != nil {
		a.drop()
		return fmt.Errorf("rabbitmq: declare exchange %s: %w", a.exchange, err)
	}
	return nil
}

// drop closes the connection, waiting at most a second for the broker.
func (a *Publisher) drop() {
	if a.conn != nil {
		_ = a.conn.CloseDeadline(time.Now().Add(time.Second))
	}
	if a.raw != nil {
		a.raw.Close()
	}
	a.conn, a.ch, a.raw = nil, nil, nil
}

// Close closes the connection.
func (a *Publisher) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.drop()
	return nil
}
