package gateway

// The request documents of the API, decoded into domain values.

import (
	"fmt"

	"github.com/airshipltd/airship/orders"
	"github.com/airshipltd/airship/products"
)

// decodeProduct turns a create-product document into a Product.
func decodeProduct(o object) (products.Product, error) {
	var f fields
	f.only(o, "", "id", "title", "passenger_capacity", "maximum_speed", "in_stock")
	p := products.Product{ID: f.productID(o, "", "id")}
	p.Title, _ = f.title(o, "", true)
	p.PassengerCapacity, _ = f.count(o, "", "passenger_capacity", 0, true)
	p.MaximumSpeed, _ = f.count(o, "", "maximum_speed", 0, true)
	p.InStock, _ = f.count(o, "", "in_stock", 0, true)
	return p, f.err()
}

// decodePatch turns a PATCH document into a products.Patch.
func decodePatch(o object) (products.Patch, error) {
	var f fields
	f.only(o, "", "title", "passenger_capacity", "maximum_speed", "in_stock")
	var p products.Patch
	if t, ok := f.title(o, "", false); ok {
		p.Title = &t
	}
	for _, c := range []struct {
		name string
		dst  **int64
	}{
		{"passenger_capacity", &p.PassengerCapacity}, {"maximum_speed", &p.MaximumSpeed}, {"in_stock", &p.InStock},
	} {
		if n, ok := f.count(o, "", c.name, 0, false); ok {
			*c.dst = &n
		}
	}
	// With every field read, the patch's own rules: a patch of nulls only
	// would change nothing (null is not a value of any of these fields).
	if len(f.problems) == 0 {
		f.problems = p.Problems()
	}
	return p, f.err()
}

// decodeNewOrder turns a create-order document into order lines.
func decodeNewOrder(o object) ([]orders.NewLine, error) {
	var f fields
	f.only(o, "", "order_details")
	items, ok := f.array(o, "", "order_details", orders.LinesProblem)
	if !ok {
		return nil, f.err()
	}
	lines := make([]orders.NewLine, len(items))
	for i, item := range items {
		prefix := linePrefix(i)
		f.only(item, prefix, "product_id", "price", "quantity")
		lines[i].ProductID = f.productID(item, prefix, "product_id")
		lines[i].Price, _ = f.price(item, prefix, "price", true)
		lines[i].Quantity, _ = f.count(item, prefix, "quantity", 1, true)
	}
	return lines, f.err()
}

// linePrefixes are the paths of the first order lines' fields, made once.
var linePrefixes = func() []string {
	p := make([]string, orders.MaxLines)
	for i := range p {
		p[i] = fmt.Sprintf("order_details[%d].", i)
	}
	return p
}()

// linePrefix is the path of order line i's fields in error messages.
func linePrefix(i int) string {
	if i < len(linePrefixes) {
		return linePrefixes[i]
	}
	return fmt.Sprintf("order_details[%d].", i)
}

// decodeOrderUpdate turns a PUT document into line updates.
func decodeOrderUpdate(o object) ([]orders.LineUpdate, error) {
	var f fields
	f.only(o, "", "order_details")
	items, ok := f.array(o, "", "order_details", orders.LinesProblem)
	if !ok {
		return nil, f.err()
	}
	updates := make([]orders.LineUpdate, len(items))
	for i, item := range items {
		prefix := linePrefix(i)
		f.only(item, prefix, "id", "price", "quantity")
		updates[i].ID, _ = f.count(item, prefix, "id", 1, true)
		if p, ok := f.price(item, prefix, "price", false); ok {
			updates[i].Price = &p
		}
		if q, ok := f.count(item, prefix, "quantity", 1, false); ok {
			updates[i].Quantity = &q
		}
	}
	// With every field read, the rules of a change: each line named once,
	// and each given a price, a quantity or both (null sets neither).
	if len(f.problems) == 0 {
		f.problems = orders.UpdatesProblems(updates)
	}
	return updates, f.err()
}
