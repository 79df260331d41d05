// Package products is the catalogue module's domain: the Product type,
// its rules and errors, reservations of stock, listing cursors, and the
// interfaces its stores implement. The stores live in sub-packages
// (products/redisstore, products/sqlitestore), the Connect adapter in
// products/productsrpc, their contract suite in products/productstest;
// this package imports none of them, nor any database driver.
//
// Every store answers for exactly the products a call names: no operation
// other than List ever looks at more products than it was given.
package products

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/airshipltd/airship/internal/errs"
)

// Product is one airship on sale.
type Product struct {
	ID                string `json:"id" db:"id"`
	Title             string `json:"title" db:"title"`
	PassengerCapacity int64  `json:"passenger_capacity" db:"passenger_capacity"`
	MaximumSpeed      int64  `json:"maximum_speed" db:"maximum_speed"`
	InStock           int64  `json:"in_stock" db:"in_stock"`
	// Incarnation tells apart the products that ever had this id: a
	// product deleted and created again under the same id is another
	// incarnation. Stores give one to every product they create (Create
	// keeps one already set). Stock taken for an order line goes back only
	// to the incarnation it was taken from. It is not part of the API.
	Incarnation string `json:"-" db:"incarnation"`
}

// NewIncarnation returns a fresh incarnation: 16 random hex digits.
func NewIncarnation() string {
	return fmt.Sprintf("%016x", rand.Uint64())
}

// Patch holds the fields of a partial update; nil fields stay as they are.
type Patch struct {
	Title             *string
	PassengerCapacity *int64
	MaximumSpeed      *int64
	InStock           *int64
}

// Page is one page of a product listing.
type Page struct {
	Products []Product
	// Next is the cursor of the next page, empty on the last page.
	Next string
}

// Store keeps products and their stock. Implementations: redisstore.Store
// (one hash per product, products/redisstore) and sqlitestore.Store (a
// table in the embedded database, products/sqlitestore); productsrpc.Client
// calls one in another process.
type Store interface {
	// Get returns one product or ErrNotFound.
	Get(ctx context.Context, id string) (Product, error)
	// GetMany returns the products that exist among ids, in one round trip.
	GetMany(ctx context.Context, ids []string) (map[string]Product, error)
	// Exists reports whether a product exists.
	Exists(ctx context.Context, id string) (bool, error)
	// Create adds a product, or fails with ErrExists. It gives the product
	// a new incarnation unless p has one.
	Create(ctx context.Context, p Product) error
	// Update applies a patch and returns the updated product.
	Update(ctx context.Context, id string, patch Patch) (Product, error)
	// Delete removes a product, or fails with ErrNotFound.
	Delete(ctx context.Context, id string) error
	// List returns up to limit products after cursor ("" for the first
	// page), in id order. Following Next from the first page to the last
	// lists every product that exists throughout, exactly once, whatever
	// is written meanwhile.
	List(ctx context.Context, cursor string, limit int) (Page, error)

	// Reserve takes stock for every line, all or nothing, and returns the
	// incarnation of each product it took from. It fails with a
	// *NotFoundError or an *OutOfStockError naming the first line that
	// cannot be served; then no stock is taken. In_stock never goes below
	// zero, whatever the concurrency.
	Reserve(ctx context.Context, r Reservation) (Taken, error)
	// Commit forgets a reservation whose order committed; the stock stays taken.
	Commit(ctx context.Context, r Reservation) error
	// Release gives a reservation's stock back to the products that still
	// exist and forgets it.
	Release(ctx context.Context, r Reservation) error
	// Expired returns up to limit reservations whose deadline is before now.
	Expired(ctx context.Context, now time.Time, limit int) ([]Reservation, error)
	// Restock gives stock back (an order deleted or reduced) to the
	// products that still exist, each line to its own incarnation only;
	// id makes the call idempotent.
	Restock(ctx context.Context, id string, lines []Line) error
}

var (
	// ErrNotFound means no product has the id.
	ErrNotFound = errors.New("product not found")
	// ErrExists means a product with the id already exists.
	ErrExists = errors.New("product already exists")
	// ErrOutOfStock means a line asks for more than the product has.
	ErrOutOfStock = errors.New("out of stock")
	// ErrBadCursor means a listing cursor could not be parsed.
	ErrBadCursor = errs.New(errs.Invalid, "cursor: not a cursor returned by this API")
	// ErrUnavailable means Redis could not be reached.
	ErrUnavailable = errs.New(errs.Unavailable, "product store unavailable")
)

// NotFoundError names the product that does not exist.
type NotFoundError struct{ ID string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("Product ID %s does not exist", e.ID) }

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Kind is errs.ProductNotFound.
func (e *NotFoundError) Kind() errs.Kind { return errs.ProductNotFound }

// Fields are the error's portable fields.
func (e *NotFoundError) Fields() map[string]string { return map[string]string{"id": e.ID} }

// ExistsError names the product id that is taken.
type ExistsError struct{ ID string }

func (e *ExistsError) Error() string { return fmt.Sprintf("Product ID %s already exists", e.ID) }

// Is makes errors.Is(err, ErrExists) true.
func (e *ExistsError) Is(target error) bool { return target == ErrExists }

// Kind is errs.ProductExists.
func (e *ExistsError) Kind() errs.Kind { return errs.ProductExists }

// Fields are the error's portable fields.
func (e *ExistsError) Fields() map[string]string { return map[string]string{"id": e.ID} }

// OutOfStockError names the product that cannot serve a line.
type OutOfStockError struct {
	ID        string
	Requested int64
	Available int64
}

func (e *OutOfStockError) Error() string {
	return fmt.Sprintf("Product ID %s is out of stock: %d requested, %d available", e.ID, e.Requested, e.Available)
}

// Is makes errors.Is(err, ErrOutOfStock) true.
func (e *OutOfStockError) Is(target error) bool { return target == ErrOutOfStock }

// Kind is errs.OutOfStock.
func (e *OutOfStockError) Kind() errs.Kind { return errs.OutOfStock }

// Fields are the error's portable fields.
func (e *OutOfStockError) Fields() map[string]string {
	return map[string]string{"id": e.ID, "requested": strconv.FormatInt(e.Requested, 10), "available": strconv.FormatInt(e.Available, 10)}
}

func init() {
	errs.Register(errs.ProductNotFound, func(p errs.Portable) error { return &NotFoundError{ID: p.Fields["id"]} })
	errs.Register(errs.ProductExists, func(p errs.Portable) error { return &ExistsError{ID: p.Fields["id"]} })
	errs.Register(errs.OutOfStock, func(p errs.Portable) error {
		return &OutOfStockError{ID: p.Fields["id"], Requested: p.Int64("requested"), Available: p.Int64("available")}
	})
}

// MaxIDLength is the longest product id.
const MaxIDLength = 128

// ValidID reports whether id is 1 to 128 characters of [A-Za-z0-9._~-],
// other than "." and ".." (which clients and proxies normalise out of a
// URL path, so that such a product could never be read or deleted).
// Stores rely on it: such an id can never form a Redis glob, a hash tag or
// a path.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLength || id == "." || id == ".." {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == '~', c == '-':
		default:
			return false
		}
	}
	return true
}
