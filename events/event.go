package events

import (
	"context"
	"encoding/json"
	"time"

	"github.com/shopspring/decimal"
)

// The order events, named as the routing keys they are published with
// (docs/events.md). order_created is the event the old orders service
// dispatched, with the same body.
const (
	OrderCreated = "order_created"
	OrderUpdated = "order_updated"
	OrderDeleted = "order_deleted"
)

// SchemaVersion is the version of the events' body schema, stored with
// each event and sent in its schema_version header. It changes only when
// a body changes in a way an existing consumer could notice.
const SchemaVersion = 1

// Event is an event in the outbox: written with the order change it
// reports, published by the relay.
type Event struct {
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

// DispatchFunc publishes events in the order given and returns how many
// of them, from the first, the broker confirmed; it may confirm a prefix
// and return an error for the rest.
type DispatchFunc func(ctx context.Context, events []Event) (int, error)

// Order is what an order event tells of the order: its id and lines.
type Order struct {
	ID    int64
	Lines []OrderLine
}

// OrderLine is a line of an Order.
type OrderLine struct {
	ID        int64
	ProductID string
	Price     decimal.Decimal
	Quantity  int64
}

// body is the body of every order event: the order as {"order": {"id",
// "order_details": [{"id", "product_id", "price", "quantity"}]}}, the
// fields of GET /orders/{id} without image and product, in this order.
// The PostgreSQL order store builds the same body in SQL for
// order_created; a test holds the two to one form.
type body struct {
	Order bodyOrder `json:"order"`
}

type bodyOrder struct {
	ID           int64      `json:"id"`
	OrderDetails []bodyLine `json:"order_details"`
}

type bodyLine struct {
	ID        int64  `json:"id"`
	ProductID string `json:"product_id"`
	Price     string `json:"price"`
	Quantity  int64  `json:"quantity"`
}

// Body returns the body of an event about o.
func Body(o Order) ([]byte, error) {
	b := body{Order: bodyOrder{ID: o.ID, OrderDetails: make([]bodyLine, len(o.Lines))}}
	for i, l := range o.Lines {
		b.Order.OrderDetails[i] = bodyLine{ID: l.ID, ProductID: l.ProductID, Price: l.Price.StringFixed(2), Quantity: l.Quantity}
	}
	return json.Marshal(b)
}
