// Package orders is the orders module: the Order type, its domain errors,
// the Store interface its store implements (orders/sqlstore), and the
// Service that places, changes and deletes orders while keeping stock
// right.
package orders

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/airshipltd/airship/internal/errs"
	"github.com/airshipltd/airship/products"
)

// Line is one line of an order.
type Line struct {
	ID        int64
	ProductID string
	Price     decimal.Decimal
	Quantity  int64
	// Incarnation is the incarnation of the product the line took its
	// stock from (see products.Product); stock goes back only to it.
	Incarnation string
}

// Order is a placed order with its lines, in line id order.
type Order struct {
	ID    int64
	Lines []Line
}

// NewLine is a line of an order being placed.
type NewLine struct {
	ProductID string
	Price     decimal.Decimal
	Quantity  int64
	// Incarnation is set by the Service from the reservation: the
	// incarnation of the product the line's stock was taken from.
	Incarnation string
}

// LineUpdate changes the price and/or quantity of an existing line.
type LineUpdate struct {
	ID       int64
	Price    *decimal.Decimal
	Quantity *int64
}

// Change is what Store.Update and Store.Delete commit in one transaction
// besides the order itself.
type Change struct {
	// ReservationID, when set, is claimed with the change: the stock the
	// change takes was reserved under it (see products.Reservation).
	ReservationID string
	// Expect holds the lines as the change was computed from; the store
	// refuses with ErrConflict if they changed meanwhile.
	Expect []Line
	// RestockID and Restock record stock to give back once the change has
	// committed (a pending restock, replayed by the recovery sweep).
	RestockID string
	Restock   []products.Line
}

// PendingRestock is stock to give back, recorded with an order change.
type PendingRestock struct {
	ID    string
	Lines []products.Line
}

// Store keeps orders. Implementation: orders/sqlstore, on PostgreSQL or
// the embedded database.
type Store interface {
	// Create writes an order and claims its reservation in one transaction.
	// It fails with ErrReservationVoid if the reservation was settled as void.
	Create(ctx context.Context, reservationID string, lines []NewLine) (Order, error)
	// Get returns an order with its lines, in one query.
	Get(ctx context.Context, id int64) (Order, error)
	// List returns up to limit orders with id > after, oldest first.
	List(ctx context.Context, after int64, limit int) ([]Order, error)
	// Update applies line updates and the change in one transaction.
	Update(ctx context.Context, id int64, updates []LineUpdate, c Change) (Order, error)
	// Delete removes an order and records the change in one transaction.
	Delete(ctx context.Context, id int64, c Change) error
	// Settle decides a reservation: if an order claimed it, it returns that
	// order's id and true; otherwise it marks it void, so that no order can
	// claim it any more, and returns false. Repeated calls agree.
	Settle(ctx context.Context, reservationID string) (orderID int64, committed bool, err error)
	// PendingRestocks returns restocks recorded before the given time.
	PendingRestocks(ctx context.Context, before time.Time, limit int) ([]PendingRestock, error)
	// RestockDone forgets a pending restock once it was applied.
	RestockDone(ctx context.Context, id string) error
	// KeyStore keeps the records of idempotency keys in the same database.
	KeyStore
}

var (
	// ErrNotFound means no order has the id.
	ErrNotFound = errors.New("order not found")
	// ErrLineNotFound means an update names a line the order does not have.
	ErrLineNotFound = errors.New("order line not found")
	// ErrConflict means the order changed while a change was being made.
	ErrConflict = errs.New(errs.Conflict, "order changed concurrently")
	// ErrReservationVoid means the recovery sweep voided the reservation
	// before the order could commit.
	ErrReservationVoid = errs.New(errs.Conflict, "stock reservation expired before the order committed")
	// ErrUnavailable means PostgreSQL could not be reached.
	ErrUnavailable = errs.New(errs.Unavailable, "order store unavailable")
	// ErrIDsExhausted means the store has handed out its last order or
	// line id (MaxID): no order can be placed.
	ErrIDsExhausted = errs.New(errs.Exhausted, "no order can be placed: the store has handed out its last order or line id (2147483647)")
)

// MaxID is the highest order or line id, in every store: the API's range
// (1 to 2147483647, PostgreSQL's SERIAL). A store never hands out a
// higher one; it fails with ErrIDsExhausted instead.
const MaxID = math.MaxInt32

// NotFoundError names the order that does not exist.
type NotFoundError struct{ ID int64 }

func (e *NotFoundError) Error() string { return fmt.Sprintf("Order ID %d does not exist", e.ID) }

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Kind is errs.OrderNotFound.
func (e *NotFoundError) Kind() errs.Kind { return errs.OrderNotFound }

// Fields are the error's portable fields.
func (e *NotFoundError) Fields() map[string]string {
	return map[string]string{"id": strconv.FormatInt(e.ID, 10)}
}

// LineNotFoundError names the line an update refers to that the order
// lacks; Index is the update's position in the request.
type LineNotFoundError struct {
	OrderID int64
	LineID  int64
	Index   int
}

func (e *LineNotFoundError) Error() string {
	return fmt.Sprintf("order_details[%d].id: order %d has no line %d", e.Index, e.OrderID, e.LineID)
}

// Is makes errors.Is(err, ErrLineNotFound) true.
func (e *LineNotFoundError) Is(target error) bool { return target == ErrLineNotFound }

// Kind is errs.LineNotFound.
func (e *LineNotFoundError) Kind() errs.Kind { return errs.LineNotFound }

// Fields are the error's portable fields.
func (e *LineNotFoundError) Fields() map[string]string {
	return map[string]string{"order": strconv.FormatInt(e.OrderID, 10), "line": strconv.FormatInt(e.LineID, 10),
		"index": strconv.Itoa(e.Index)}
}

func init() {
	errs.Register(errs.OrderNotFound, func(p errs.Portable) error { return &NotFoundError{ID: p.Int64("id")} })
	errs.Register(errs.LineNotFound, func(p errs.Portable) error {
		return &LineNotFoundError{OrderID: p.Int64("order"), LineID: p.Int64("line"), Index: int(p.Int64("index"))}
	})
}

// stockLines turns order lines into the stock they take.
func stockLines(lines []NewLine) []products.Line {
	out := make([]products.Line, len(lines))
	for i, l := range lines {
		out[i] = products.Line{ProductID: l.ProductID, Quantity: l.Quantity, Incarnation: l.Incarnation}
	}
	return products.MergeLines(out)
}

// withIncarnations returns lines with the incarnation each product's stock
// was taken from.
func withIncarnations(lines []NewLine, taken products.Taken) []NewLine {
	out := make([]NewLine, len(lines))
	for i, l := range lines {
		l.Incarnation = taken[l.ProductID]
		out[i] = l
	}
	return out
}

// Holds reports whether lines still hold the quantities the change was
// computed from (Expect): a store refuses the change with ErrConflict
// otherwise.
func (c Change) Holds(lines []Line) bool {
	expect := c.Expect
	if len(lines) != len(expect) {
		return false
	}
	for i := range lines {
		if lines[i].ID != expect[i].ID || lines[i].Quantity != expect[i].Quantity {
			return false
		}
	}
	return true
}

// ApplyUpdates returns o with updates applied, or a *LineNotFoundError.
func ApplyUpdates(o Order, updates []LineUpdate) (Order, error) {
	out := Order{ID: o.ID, Lines: append([]Line(nil), o.Lines...)}
	for i, u := range updates {
		j := sort.Search(len(out.Lines), func(k int) bool { return out.Lines[k].ID >= u.ID })
		if j == len(out.Lines) || out.Lines[j].ID != u.ID {
			return Order{}, &LineNotFoundError{OrderID: o.ID, LineID: u.ID, Index: i}
		}
		if u.Price != nil {
			out.Lines[j].Price = *u.Price
		}
		if u.Quantity != nil {
			out.Lines[j].Quantity = *u.Quantity
		}
	}
	return out, nil
}
