package products

// Loading products in bulk from outside the API: the old shop's Redis
// hashes (airship import-legacy), airship dumps (airship import) and
// generated data (airship seed).

import "context"

// BulkStore is a Store that also loads products in bulk from outside the
// API, and unloads them again: what airship import, import-legacy and
// seed write with (export reads with List). Both stores implement it
// (products/redisstore, products/sqlitestore); the Connect adapter does
// not, since the commands open the store themselves.
type BulkStore interface {
	Store
	// Load writes the products of a batch that are not there, each whole
	// or not at all, and reports what it did with each, in the batch's
	// order (see Loaded and LoadMode). A product without an incarnation
	// gets a new one when created; an overwritten product keeps its own.
	// The products must be valid (Product.Problems) and their ids
	// distinct.
	Load(ctx context.Context, ps []Product, mode LoadMode) ([]Loaded, error)
	// Unload deletes the products of ps that are still as Load created
	// them (Matches) and hold no stock for an order in flight, and reports
	// what it did with each, in ps's order (see Unloaded): what airship
	// import undoes when a load fails. A product that a client changed or
	// ordered since, or deleted and created again, stays.
	Unload(ctx context.Context, ps []Product) ([]Unloaded, error)
}

// Loaded is what Load did with one product.
type Loaded int

const (
	// Created: the product was not there and was written.
	Created Loaded = iota + 1
	// Equal: a product with the same fields is there; nothing changed.
	Equal
	// Conflicting: a product with other fields is there and was left as
	// it is.
	Conflicting
	// Overwritten: a product with other fields was there; its fields were
	// replaced and it kept its incarnation.
	Overwritten
)

// LoadMode says what Load may write.
type LoadMode struct {
	// Overwrite replaces the fields of a conflicting product.
	Overwrite bool
	// DryRun writes nothing and reports what Load would do.
	DryRun bool
}

// Matches reports whether there, a product a store holds, is p as Load
// and Unload compare them: the same title, passenger capacity, maximum
// speed and stock, and the same incarnation when p has one.
func (p Product) Matches(there Product) bool {
	return there.Title == p.Title && there.PassengerCapacity == p.PassengerCapacity &&
		there.MaximumSpeed == p.MaximumSpeed && there.InStock == p.InStock &&
		(p.Incarnation == "" || there.Incarnation == p.Incarnation)
}

// IncarnationOrNew returns p's incarnation, or a new one when it has none:
// the incarnation Load gives a product it creates.
func (p Product) IncarnationOrNew() string {
	if p.Incarnation != "" {
		return p.Incarnation
	}
	return NewIncarnation()
}

// Unloaded is what Unload did with one product.
type Unloaded int

const (
	// Removed: the product was as loaded and was deleted.
	Removed Unloaded = iota + 1
	// Absent: no product has the id.
	Absent
	// Kept: the product changed since it was loaded (its fields, its
	// stock, its incarnation) or holds stock for an order in flight, and
	// was left as it is.
	Kept
)
