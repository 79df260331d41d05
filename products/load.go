package products

// Loading products in bulk from outside the API: the old shop's Redis
// hashes (airship import-legacy), airship dumps (airship import) and
// generated data (airship seed).

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
