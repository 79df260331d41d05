package orders

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// The order events, named as the routing keys they are published with
// (docs/events.md). order_created is the event the old orders service
// dispatched, with the same body.
const (
	EventCreated = "order_created"
	EventUpdated = "order_updated"
	EventDeleted = "order_deleted"
)

// EventSchemaVersion is the version of the events' body schema, stored
// with each event and sent in its schema_version header. It changes only
// when a body changes in a way an existing consumer could notice.
const EventSchemaVersion = 1

// OutboxEvent is an event in the outbox: written with the order change it
// reports, published by the event relay.
type OutboxEvent struct {
	ID int64
	// MessageID is unique per event and the same on every attempt to
	// publish it: consumers de-duplicate on it.
	MessageID     string
	OrderID       int64
	Type          string
	SchemaVersion int
	// Body is the message body, JSON.
	Body      []byte
	CreatedAt time.Time
}

// StoreOption configures an orders store.
type StoreOption func(*storeOptions)

type storeOptions struct{ events bool }

// WithEvents makes a store write an event to the outbox with every order
// change (created, updated, deleted), in the transaction of the change.
// Without it no event is written.
func WithEvents() StoreOption { return func(o *storeOptions) { o.events = true } }

func applyOptions(opts []StoreOption) storeOptions {
	var o storeOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// eventBody is the body of every order event: the order as
// {"order": {"id", "order_details": [{"id", "product_id", "price",
// "quantity"}]}}, the fields of GET /orders/{id} without image and
// product, in this order. PGStore builds the same body in SQL for
// order_created (createOrderEvent); a test holds the two to one form.
type eventBody struct {
	Order eventOrder `json:"order"`
}

type eventOrder struct {
	ID           int64       `json:"id"`
	OrderDetails []eventLine `json:"order_details"`
}

type eventLine struct {
	ID        int64  `json:"id"`
	ProductID string `json:"product_id"`
	Price     string `json:"price"`
	Quantity  int64  `json:"quantity"`
}

// EventBody returns the body of an event about o.
func EventBody(o Order) ([]byte, error) {
	b := eventBody{Order: eventOrder{ID: o.ID, OrderDetails: make([]eventLine, len(o.Lines))}}
	for i, l := range o.Lines {
		b.Order.OrderDetails[i] = eventLine{ID: l.ID, ProductID: l.ProductID, Price: l.Price.StringFixed(2), Quantity: l.Quantity}
	}
	return json.Marshal(b)
}

// insertEvent writes an event to the outbox; both dialects run it.
const insertEvent = `INSERT INTO outbox (message_id, order_id, event_type, schema_version, body)
VALUES ($1, $2, $3, $4, $5)`

// writeEvent writes an event of the given type about o to the outbox,
// with q: the transaction of the change.
func writeEvent(ctx context.Context, q sqlx.ExecerContext, eventType string, o Order) error {
	body, err := EventBody(o)
	if err != nil {
		return fmt.Errorf("%s event of order %d: %w", eventType, o.ID, err)
	}
	what := fmt.Sprintf("%s event of order %d", eventType, o.ID)
	res, err := q.ExecContext(ctx, insertEvent, uuid.NewString(), o.ID, eventType, EventSchemaVersion, string(body))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return expectRows(res, 1, what)
}

// DispatchFunc publishes events in the order given and returns how many
// of them, from the first, the broker confirmed; it may confirm a prefix
// and return an error for the rest.
type DispatchFunc func(ctx context.Context, events []OutboxEvent) (int, error)

// pendingEvents selects, in id order, up to $1 pending events that are
// the first pending event of their order: an event is published only
// after every earlier event of its order was, whatever the number of
// relays. The dialects add their locking.
const pendingEvents = `SELECT e.id, e.message_id, e.order_id, e.event_type, e.schema_version, e.body, e.created_at
FROM outbox e
WHERE e.published_at IS NULL
  AND NOT EXISTS (
    SELECT 1 FROM outbox p
    WHERE p.published_at IS NULL AND p.order_id = e.order_id AND p.id < e.id)
ORDER BY e.id
LIMIT $1`

// publishThenMark publishes events and marks the ones the broker
// confirmed with mark; it returns how many it marked.
func publishThenMark(ctx context.Context, events []OutboxEvent, publish DispatchFunc, mark func(ids []int64) error) (int, error) {
	n, perr := publish(ctx, events)
	if n == 0 {
		return 0, perr
	}
	ids := make([]int64, n)
	for i := range n {
		ids[i] = events[i].ID
	}
	if err := mark(ids); err != nil {
		return 0, fmt.Errorf("mark events published: %w", err)
	}
	return n, perr
}

// purgeBatch bounds the rows one purge statement deletes.
const purgeBatch = 5000
